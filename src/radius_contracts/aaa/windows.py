"""Plans' time windows: at each boundary, logins and online sessions get the window's speeds.

Every node runs this every minute (on the minute): its index follows the clock, so logins get
the speeds in force. The sessions that are online are moved by CoA once per boundary over all
nodes: the node that records the move in the plan's row (a conditional UPDATE of
``plans.window_applied``) sends it. The row also outlives restarts: a boundary passed while
every node was down is caught up by the first run after a start.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.aaa.quota import LiveChanges
from radius_contracts.db.writer import write_transaction
from radius_contracts.index import AuthIndex
from radius_contracts.store import plans as store

__all__ = ["PlanWindows"]

log = logging.getLogger("radius_contracts.aaa.windows")

NONE = "none"  # window_applied when no window is in force


def _key(window: int | None) -> str:
    return NONE if window is None else str(window)


def _window(key: str) -> int | None:
    return None if key == NONE or not key.isdigit() else int(key)


class PlanWindows:
    """The window job (see the module docstring). ``live`` may be set after construction."""

    def __init__(
        self,
        index: AuthIndex,
        sessions: async_sessionmaker[AsyncSession],
        *,
        live: LiveChanges | None = None,
        rate: float = 2000.0,
    ) -> None:
        self._index = index
        self._sessions = sessions
        self.live = live
        self.rate = rate

    async def run(self) -> dict[str, int]:
        """Follow the clock; move online sessions of plans whose window changed."""
        await self._index.apply_windows()
        async with self._sessions() as session:
            applied = await store.windows_applied(session)
        moved = 0
        for plan_id, old in applied.items():
            plan = self._index.plan(plan_id)
            if plan is None:
                continue
            current = self._index.window_of(plan_id)
            new = _key(current)
            if old == new:
                continue
            async with write_transaction(self._sessions) as session:
                won = await store.claim_window(session, plan_id, old, new)
            if not won or old is None:
                # Another node moves them; or the plan's windows are new (or were just
                # edited), and that change's own CoA moved its sessions.
                continue
            before = await self._index.as_in_window(plan_id, _window(old))
            if self.live is not None:
                self.live.contracts_changed(before, cause="window", rate=self.rate)
            moved += 1
            log.info(
                "plan %s: time window %s → %s; online sessions follow",
                plan.name,
                old,
                new,
            )
        return {"plans": moved}
