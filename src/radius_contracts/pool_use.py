"""Leases held per managed pool for ``/metrics``: a snapshot read from the database.

A Prometheus collector is synchronous and pool use needs the database: :class:`PoolUse`
keeps a snapshot that the ``/metrics`` route refreshes (awaited) when it is older than a few
seconds, so a scrape costs at most one query and a packet none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from radius_contracts.aaa.pools import PoolSpace
from radius_contracts.domain import PoolMode
from radius_contracts.index import AuthIndex

__all__ = ["POOL_USE_MAX_AGE", "POOL_USE_TIMEOUT", "PoolUse", "PoolUseRow"]

# The logger /metrics has always used for this line.
log = logging.getLogger("radius_contracts.metrics")

POOL_USE_MAX_AGE = 5.0  # seconds a pool-use snapshot serves scrapes before it is read again
# A scrape waits at most this long for the read (Prometheus times scrapes out at 10 s).
POOL_USE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class PoolUseRow:
    name: str
    family: str
    size: int  # addresses (ipv4) or prefixes (ipv6, ipv6-pd) the pool can lease
    leased: int  # held now: offered or bound, not expired


class PoolUse:
    """Leases held per managed pool, as of the last :meth:`refresh` that found it stale."""

    def __init__(
        self,
        index: AuthIndex,
        held_by_pool: Callable[[], Awaitable[Mapping[int, int]]],
        *,
        max_age: float = POOL_USE_MAX_AGE,
        timeout: float = POOL_USE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._index = index
        self._held_by_pool = held_by_pool
        self._max_age = max_age
        self._timeout = timeout
        self._clock = clock
        self._lock = asyncio.Lock()
        self._tried_at: float | None = None
        self.refreshed_at: float | None = None  # clock time of the last successful read
        self.rows: tuple[PoolUseRow, ...] = ()

    def _fresh(self) -> bool:
        return self._tried_at is not None and self._clock() - self._tried_at < self._max_age

    async def refresh(self) -> None:
        """Read the leases again when the snapshot is older than ``max_age``.

        A failed read keeps the last snapshot (its age shows it) and is not retried for
        ``max_age``: a database outage must not turn every scrape into a slow timeout.
        """
        if self._fresh():
            return
        async with self._lock:  # concurrent scrapes share one read
            if self._fresh():
                return
            self._tried_at = self._clock()
            try:
                held = await asyncio.wait_for(self._held_by_pool(), self._timeout)
            except Exception as exc:  # the database is down or slow: serve the last snapshot
                log.warning("pool use for /metrics not read: %s", type(exc).__name__)
                return
            rows = []
            for pool in self._index.all_pools():
                if pool.mode is not PoolMode.MANAGED:
                    continue  # a nas pool is leased by the NAS; nothing is held here
                size = PoolSpace.of_pool(pool).size
                rows.append(PoolUseRow(pool.name, pool.family.value, size, held.get(pool.id, 0)))
            self.rows = tuple(rows)
            self.refreshed_at = self._clock()

    def age(self) -> float | None:
        """Seconds since the last successful read; None before the first."""
        return None if self.refreshed_at is None else self._clock() - self.refreshed_at
