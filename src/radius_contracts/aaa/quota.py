"""Data quotas (fair-usage policy): where traffic counts, and what follows a change of state.

Accounting adds each contract's counted traffic to its current period's row in the same
transaction as the session deltas (store.accounting), so usage is what is stored, exactly
once, across all the contract's sessions and NAS. The transaction whose traffic reaches the
cap turns the row ``over``; the keeper then gives the contract its reduced snapshot in the
index and its live sessions a CoA (or Disconnect) through the same path as any contract edit,
and tells the other nodes. When the period ends, or a top-up or plan change lifts the cap,
the same path brings the sessions back to full speed without a new login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.db.writer import write_transaction
from radius_contracts.domain import ContractSnapshot
from radius_contracts.index import AuthIndex
from radius_contracts.plans import QuotaRule, QuotaState, quota_period
from radius_contracts.store import quota as store
from radius_contracts.store.accounting import Applied, QuotaTarget

__all__ = ["Announce", "LiveChanges", "QuotaKeeper"]

log = logging.getLogger("radius_contracts.aaa.quota")

Announce = Callable[[str, Sequence[int]], Coroutine[Any, Any, None]]
"""Tells the other nodes which contracts' quota state changed (the change feed)."""

_BATCH = 500  # ended periods dealt with per transaction


class LiveChanges(Protocol):
    """What the keeper asks of aaa.live.LiveSessions."""

    def contracts_changed(
        self,
        before: dict[int, ContractSnapshot | None],
        *,
        cause: str = ...,
        rate: float | None = ...,
    ) -> None: ...


class QuotaKeeper:
    """See the module docstring. ``live`` may be set after construction (CoA comes later)."""

    def __init__(
        self,
        index: AuthIndex,
        sessions: async_sessionmaker[AsyncSession],
        *,
        live: LiveChanges | None = None,
        announce: Announce | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._index = index
        self._sessions = sessions
        self.live = live
        self.announce = announce
        self._clock = clock
        # (UTC quarter hour) → local date, and (rule, billing day, local date) → the target:
        # a batch of accounting asks the same few questions thousands of times. The rule is
        # kept with its target, so an id reused by a later rule is never mistaken for it.
        self._local_days: dict[tuple[date, int, int], date] = {}
        self._targets: dict[tuple[int, int | None, date], tuple[QuotaRule, QuotaTarget]] = {}
        self.crossed = 0  # contracts pushed over their cap by this node's accounting
        self._tasks: set[asyncio.Task[None]] = set()  # announcements on their way

    @property
    def zone(self) -> tzinfo:
        """The ISP's time zone: periods begin at its midnight."""
        return self._index.zone

    def contract(self, contract_id: int) -> ContractSnapshot | None:
        return self._index.contract(contract_id)

    # -- the accounting hot path --------------------------------------------------------------

    def target(self, contract_id: int, at: datetime) -> QuotaTarget | None:
        """Where the contract's traffic at ``at`` counts, or None when it has no quota."""
        contract = self._index.contract(contract_id)
        if contract is None or contract.plan is None or contract.plan.quota is None:
            return None
        rule = contract.plan.quota
        key = (id(rule), contract.billing_day, self._local_day(at))
        found = self._targets.get(key)
        if found is None or found[0] is not rule:
            if len(self._targets) > 10_000:
                self._targets.clear()
            start, end = quota_period(rule.period, contract.billing_day, key[2])
            found = self._targets[key] = (
                rule,
                QuotaTarget(start, end, rule.counts, rule.cap_bytes),
            )
        return found[1]

    def _local_day(self, at: datetime) -> date:
        # Every zone's offset is a multiple of 15 minutes and changes on such a boundary, so
        # local midnight always falls on a UTC quarter hour: within one, the local date is
        # the same, and a batch of accounting asks this once.
        key = (at.date(), at.hour, at.minute // 15)
        day = self._local_days.get(key)
        if day is None:
            if len(self._local_days) > 1000:
                self._local_days.clear()
            day = self._local_days[key] = at.astimezone(self._index.zone).date()
        return day

    def targets(self, contract_ids: Iterable[int]) -> dict[int, QuotaTarget]:
        """Each contract's current period and cap, for those whose plan has a quota."""
        now = self._clock()
        found = {}
        for contract_id in contract_ids:
            target = self.target(contract_id, now)
            if target is not None:
                found[contract_id] = target
        return found

    # -- after changes ------------------------------------------------------------------------

    def applied(self, applied: Applied) -> None:
        """An accounting batch was committed: contracts it pushed over their cap follow."""
        if not applied.quota_over:
            return
        self.crossed += len(applied.quota_over)
        changes: dict[int, date | None] = dict(applied.quota_over)
        log.info(
            "%d contracts used up their data quota: %s",
            len(changes),
            ", ".join(str(i) for i in list(changes)[:10]),
        )
        self._follow(changes)

    async def evaluate(self, contract_ids: Iterable[int], *, follow: bool = True) -> list[int]:
        """Re-check the state of the contracts' current periods against their caps (after a
        top-up, a plan or billing-day change). With ``follow`` their sessions follow here;
        else the caller's own CoA (which compares with what it saw before) covers them.
        Returns the contracts whose state changed."""
        targets = self.targets(contract_ids)
        if not targets:
            return []
        async with write_transaction(self._sessions) as session:
            changed = await store.evaluate(session, targets, self._clock())
        changes: dict[int, date | None] = {
            contract_id: targets[contract_id].period_start if state is QuotaState.OVER else None
            for contract_id, state in changed.items()
        }
        self._follow(changes, coa=follow)
        return list(changes)

    async def end_periods(self) -> dict[str, int]:
        """The job: contracts whose over-quota period has ended get full speed back."""
        today = self._index.local_now().date()
        restored = 0
        while True:
            async with write_transaction(self._sessions) as session:
                ended = await store.ended_over(session, today, _BATCH)
                marked = await store.restore(session, ended, self._clock())
            if marked:
                restored += len(marked)
                self._follow(
                    {cid: None for cid, start in marked if self._index.over_since(cid) == start}
                )
            if len(ended) < _BATCH:
                break
        if restored:
            log.info("%d contracts got full speed back: their quota period ended", restored)
        return {"restored": restored}

    def _follow(self, changes: Mapping[int, date | None], *, coa: bool = True) -> None:
        """The index takes the new states; the other nodes and (``coa``) live sessions
        follow."""
        if not changes:
            return
        before = self._index.set_quota_over(changes)
        if coa and before and self.live is not None:
            self.live.contracts_changed(dict(before), cause="quota")
        if self.announce is not None:
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
                self.announce("quota", list(changes))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
