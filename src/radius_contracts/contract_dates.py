"""The contract-dates job: contracts that have ended lose their live sessions.

Authentication enforces contract dates already (aaa.authorize refuses a contract before its
start date and after its end date), but a session opened before the end date stays up until
the NAS is told otherwise. Once a day, just after midnight local time (the zone date.today()
and so aaa.authorize read dates in), this job asks for those sessions to be disconnected.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.store import contract_dates as store

log = logging.getLogger("radius_contracts.jobs")

__all__ = ["BATCH", "CONTRACT_DATES_AT", "ContractDates", "Disconnect"]

Disconnect = Callable[[list[int], str], Awaitable[int]]
"""Ask the NAS to end every open session of these contracts, giving this reason; returns how
many sessions it asked about (RFC 5176 Disconnect-Requests)."""

# A few seconds into the day: by then the Access-Request handler reads the new date (it looks
# at most once a second), so a disconnected subscriber cannot log in again.
CONTRACT_DATES_AT = time(0, 0, 5)
BATCH = 500  # contracts read, and handed to one disconnect call at most, at a time


class ContractDates:
    """Disconnect ended contracts' sessions; count the contracts that start today.

    ``disconnect`` may be set after construction (the CoA sender may come up later); while it
    is None the job only counts.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        disconnect: Disconnect | None = None,
        today: Callable[[], date] = date.today,
        batch: int = BATCH,
    ) -> None:
        self._sessions = sessions
        self.disconnect = disconnect
        self._today = today
        self._batch = batch

    async def run(self) -> dict[str, int]:
        """The job: ``{"ended": contracts, "disconnected": sessions, "started": contracts}``.

        ``ended`` counts the contracts past their end date that still had sessions online,
        ``disconnected`` the sessions the NAS were asked to end, ``started`` the contracts
        whose start date is today (they authenticate from today on; nothing else to do).
        """
        today = self._today()
        ended = disconnected = 0
        after = 0
        while True:
            async with self._sessions() as session:
                found = await store.ended_online(session, today, after=after, limit=self._batch)
            if not found:
                break
            ended += len(found)
            after = found[-1][0]  # ids only grow: the loop ends even if sessions stay open
            disconnected += await self._disconnect(found)
            if len(found) < self._batch:
                break
        async with self._sessions() as session:
            started = await store.starting(session, today)
        if ended and self.disconnect is None:
            log.warning("%d ended contracts have sessions online; no disconnect is set up", ended)
        elif ended:
            log.info(
                "%d ended contracts were online: asked to end %d sessions", ended, disconnected
            )
        return {"ended": ended, "disconnected": disconnected, "started": started}

    async def _disconnect(self, found: list[tuple[int, date]]) -> int:
        """One call per end date, so that each call has one reason."""
        if self.disconnect is None:
            return 0
        by_end: dict[date, list[int]] = {}
        for contract_id, end in found:
            by_end.setdefault(end, []).append(contract_id)
        asked = 0
        for end, ids in sorted(by_end.items()):
            asked += await self.disconnect(ids, f"contract ended on {end.isoformat()}")
        return asked
