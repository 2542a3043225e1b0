"""A log written in batches: entries recorded on a hot path, written by a background task.

``record`` only appends to a bounded in-memory queue; ``run`` writes what has queued up once per
``flush_interval`` (sooner when a batch is full) through an injected sink, and periodically asks
an injected purge to trim old rows. A database that is slow or down never slows the caller:
entries wait in memory up to ``max_pending``, then the oldest are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from radius_contracts.logging import RateLimitedLog

__all__ = ["BatchLog", "LogPurge"]

log = logging.getLogger("radius_contracts.aaa.batch_log")

T = TypeVar("T")


class LogPurge(Protocol):
    """Deletes rows older than ``older_than`` and beyond the newest ``max_rows``; returns count."""

    def __call__(self, *, older_than: datetime, max_rows: int) -> Awaitable[int]: ...


# Failures are logged at most this often: a database that is down for an hour would otherwise
# write one line per flush interval.
_LOG_EVERY = 60.0
_MAX_BACKOFF = 30.0


class BatchLog(Generic[T]):
    """Queues entries in memory and writes them in batches; see the module docstring.

    Memory holds at most ``max_pending`` queued events plus the one batch being written.
    """

    def __init__(
        self,
        sink: Callable[[Sequence[T]], Awaitable[None]],
        *,
        what: str = "log",
        purge: LogPurge | None = None,
        retention_days: int = 30,
        max_rows: int = 1_000_000,
        flush_interval: float = 1.0,
        max_pending: int = 100_000,
        batch_size: int = 1000,
        purge_interval: float = 600.0,
        close_timeout: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_pending < 1 or batch_size < 1:
            raise ValueError("max_pending and batch_size must be positive")
        self._sink = sink
        self._what = what  # "auth log": names this log in warnings
        self._purge = purge
        self.retention_days = retention_days
        self.max_rows = max_rows
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.purge_interval = purge_interval
        self.close_timeout = close_timeout
        self._clock = clock
        self.written = 0
        self.dropped = 0
        self.purged = 0
        self._pending: deque[T] = deque()
        self._wake = asyncio.Event()  # a batch is full, or close() was called
        self._closed = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._purge_due = False  # purge_soon() was called
        self._backoff = 0.0  # > 0 after a failed write: seconds until the next attempt
        self._warn = RateLimitedLog(log, _LOG_EVERY)

    @property
    def pending(self) -> int:
        """Events recorded but not written yet."""
        return len(self._pending)

    # -- the hot path -------------------------------------------------------------------------

    def record(self, event: T) -> None:
        """Queue ``event``; O(1) and never blocks. When the queue is full the oldest is dropped."""
        pending = self._pending
        if len(pending) >= self.max_pending:
            pending.popleft()
            self.dropped += 1
            self._warn.warning(
                "drop",
                "%s queue is full (%d): dropping the oldest entries",
                self._what,
                self.max_pending,
            )
        pending.append(event)
        if len(pending) >= self.batch_size:
            self._wake.set()

    # -- the writer task ----------------------------------------------------------------------

    async def run(self) -> None:
        """Write batches until close(); purge every ``purge_interval`` when a purge is given."""
        self._running = True
        loop = asyncio.get_running_loop()
        next_purge = loop.time()  # once at start: a daemon restarted often still trims
        try:
            while not self._closed.is_set():
                await self._sleep()
                if self._closed.is_set():
                    break
                await self.flush(everything=False)
                if self._purge is not None and (self._purge_due or loop.time() >= next_purge):
                    self._purge_due = False
                    next_purge = loop.time() + self.purge_interval
                    await self._run_purge()
        finally:
            self._stopped.set()

    def purge_soon(self) -> None:
        """Purge after the next write rather than at the next ``purge_interval``."""
        self._purge_due = True

    async def _sleep(self) -> None:
        if self._backoff:
            # After a failed write wait out the backoff, however full the queue is: a database
            # that is down gets one attempt per backoff, not one per recorded batch.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self._backoff)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.flush_interval)
        self._wake.clear()

    async def flush(self, *, everything: bool = True) -> bool:
        """Write what is queued, a batch at a time; False when the sink failed (kept queued).

        ``everything`` goes on with what arrives during the writes until the queue is empty
        (close). The writer task writes only what was queued when it woke: a write takes
        milliseconds (several thread hops on a busy event loop), so writing what arrived
        meanwhile never let it sleep. On a soak at 500 Access-Requests/s the auth log went
        out as ~50 transactions a second of 3-9 rows instead of one, each holding SQLite's
        write lock while the accounting writer waited in its busy handler.
        """
        left = len(self._pending)
        while self._pending and (everything or left > 0):
            count = min(self.batch_size, len(self._pending))
            if not everything:
                count = min(count, left)
            left -= count
            batch = [self._pending.popleft() for _ in range(count)]
            try:
                await self._sink(batch)
            except Exception as exc:  # the database is down, a timeout, ...: retry later
                self._requeue(batch)
                self._backoff = min(max(self._backoff * 2, self.flush_interval), _MAX_BACKOFF)
                self._warn.warning(
                    "write",
                    "could not write %d %s entries (%d queued), retrying in %.0fs: %s",
                    len(batch),
                    self._what,
                    len(self._pending),
                    self._backoff,
                    exc,
                )
                return False
            self.written += len(batch)
            self._backoff = 0.0
        return True

    def _requeue(self, batch: list[T]) -> None:
        """Put a failed batch back in front, keeping the bound by dropping its oldest events."""
        room = self.max_pending - len(self._pending)
        if room < len(batch):
            lost = len(batch) - max(room, 0)
            self.dropped += lost
            batch = batch[lost:]
        self._pending.extendleft(reversed(batch))

    async def _run_purge(self) -> None:
        assert self._purge is not None
        older_than = self._clock() - timedelta(days=self.retention_days)
        try:
            deleted = await self._purge(older_than=older_than, max_rows=self.max_rows)
        except Exception as exc:
            self._warn.warning("purge", "could not purge the %s: %s", self._what, exc)
            return
        self.purged += deleted
        if deleted:
            log.info("purged %d %s entries", deleted, self._what)

    async def close(self) -> None:
        """Stop run() and write what is left, for at most ``close_timeout`` seconds."""
        self._closed.set()
        self._wake.set()
        try:
            async with asyncio.timeout(self.close_timeout):
                if self._running:
                    await self._stopped.wait()
                await self.flush()
        except TimeoutError:
            pass
        if self._pending:
            log.warning("%s closed with %d entries not written", self._what, len(self._pending))
