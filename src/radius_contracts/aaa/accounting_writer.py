"""Group commit: accounting records queued, written in batches, answered once durable.

RFC 2866 §2: a server must not answer an Accounting-Request it has not recorded. The writer
takes everything queued, writes it in one transaction (DESIGN §2) and only then lets the
listener answer every request of the batch. When the database is unreachable the batch goes to
the local spool (aaa.spool) instead, answered once it is fsync'd there, and so does everything
after it until the spool has been replayed into the database, in arrival order. Without a
spool, or with the spool full, nothing is answered: the NAS retransmits, or fails over to its
other server. aaa.accounting turns requests into records and writes batches (AccountingStore).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from radius_contracts.aaa.spool import AccountingSpool, SpoolFull
from radius_contracts.logging import RateLimitedLog
from radius_contracts.radius.histogram import Histogram
from radius_contracts.store import accounting as store
from radius_contracts.store.accounting import AcctRecord, Applied

log = logging.getLogger("radius_contracts.aaa.accounting")

__all__ = ["BATCH_BUCKETS", "COMMIT_BOUNDS", "AccountingWriter", "BatchChain", "BatchSink", "Done"]

# With fewer records than this queued, and fewer in the last batch, the writer waits
# commit_delay for more before it commits. At 1,500 records/s (bench/soak.py) the writer
# otherwise committed ~600 times a second, 2-3 records each, and every commit costs the same
# thread hops, session lookups, page writes and fsync whatever it holds: 2 ms of waiting took
# the daemon from ~90 % to 58-71 % of a core there, p50 ~2 -> 3-5 ms. Batches this
# large are worth their commit already, as in a closed loop (radclient, 128 in flight, ~60
# per batch), which would only wait.
_GATHER_BELOW = 32
# Histogram buckets for batch sizes (metrics).
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# Seconds per commit, from handing the batch to the database until it is durable (on SQLite
# that includes waiting behind an auth log batch on the write thread).
COMMIT_BOUNDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


Done = Callable[[bool], None]
BatchSink = Callable[[list[AcctRecord]], Awaitable[Applied]]
# Writes a batch, then each batch the second argument hands over (called on the database's
# thread; None ends the chain), one transaction each; the third argument is called on the
# event loop as each commits, in order. Returns None, or why the batch in hand failed (nothing
# after it was written). AccountingStore.write_chain.
BatchChain = Callable[
    [list[AcctRecord], Callable[[], list[AcctRecord] | None], Callable[[Applied], None]],
    Awaitable[Exception | None],
]


class AccountingWriter:
    """Group commit: queue records, write all queued in one transaction, then answer them.

    ``sink`` writes one batch in one transaction and raises if it could not. A batch that
    fails on its data (not on the connection) is split in halves and retried, so one bad
    record cannot hold the others back; that record alone goes unanswered.

    With a ``spool``, a batch that fails on the connection is spooled and answered, and the
    writer keeps spooling (order!) while it replays the spool into the database; once the
    spool is empty it writes to the database again.

    With a ``chain`` (SQLite's write thread), the database's thread takes the next batch from
    the queue itself as soon as one commits, while the event loop answers the committed one;
    a batch that fails there comes back to the loop and is handled as above.
    """

    def __init__(
        self,
        sink: BatchSink,
        *,
        is_data_error: Callable[[BaseException], bool] = lambda exc: False,
        on_applied: Callable[[Applied], None] | None = None,
        max_pending: int = 50_000,
        max_batch: int = 2_000,
        max_backoff: float = 5.0,
        commit_delay: float = 0.0,
        spool: AccountingSpool | None = None,
        chain: BatchChain | None = None,
    ) -> None:
        self._sink = sink
        self._chain = chain
        self.commit_delay = commit_delay
        self._spool = spool
        # Spooling: every record goes to the spool until the spool has been replayed.
        self.spooling = spool is not None and spool.pending > 0
        self.outage_since: float | None = time.time() if self.spooling else None
        self._is_data_error = is_data_error
        self._on_applied = on_applied
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._max_backoff = max_backoff
        self._queue: deque[tuple[AcctRecord, Done]] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._finished = asyncio.Event()
        self._writing = 0
        self._last = 0  # records in the last batch
        # Batches a chain took and has not answered yet, oldest first, with when each was
        # taken: appended on the database's thread, answered on the loop (deque: thread-safe).
        self._in_chain: deque[tuple[list[tuple[AcctRecord, Done]], float]] = deque()
        # Records chains took and records of chains answered (or handed back after a failure):
        # each counter written by one thread at a time (the first batch of a chain is taken
        # on the loop before the thread runs it).
        self._chain_taken = 0
        self._chain_answered = 0
        self._warn = RateLimitedLog(log)
        # Counters for /metrics.
        self.records = 0  # acknowledged
        self.batches = 0
        self.failed = 0  # records left unanswered because the database failed
        self.dropped = 0  # refused because the queue was full
        self.batch_buckets = [0] * len(BATCH_BUCKETS)
        self.batch_sum = 0
        self.batch_max = 0
        self.commit_seconds = 0.0
        self.commit_durations = Histogram(COMMIT_BOUNDS)  # seconds per database commit
        self.spooled = 0  # acknowledged once in the spool
        self.replayed = 0  # spooled records since written to the database
        self.discarded = 0  # spooled records the database refused on their data

    @property
    def pending(self) -> int:
        return len(self._queue) + self._writing + self._chain_taken - self._chain_answered

    @property
    def spool_pending(self) -> int:
        return self._spool.pending if self._spool is not None else 0

    def submit(self, record: AcctRecord, done: Done) -> bool:
        """Queue ``record``; False when the queue is full (the caller drops the request)."""
        if self._closing or len(self._queue) >= self._max_pending:
            self.dropped += 1
            return False
        self._queue.append((record, done))
        self._wakeup.set()
        return True

    async def run(self) -> None:
        backoff = 0.0
        while True:
            if self.spooling:
                await self._run_spooling()
                if self.spooling:  # closing: the rest stays in the spool for the next start
                    self._finished.set()
                    return
                continue
            if not self._queue:
                if self._closing:
                    self._finished.set()
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._gathers():
                # A few records, as last time: wait for more to share the commit.
                await asyncio.sleep(self.commit_delay)
            batch = self._take_batch()
            self._last = len(batch)
            written = await (self._write_chain(batch) if self._chain else self._write(batch))
            if written:
                backoff = 0.0
                continue
            # The database is failing: every record of the batch went unanswered (the NAS
            # retransmits). Wait before trying the next, so a dead database is not hammered.
            backoff = min(self._max_backoff, max(0.1, backoff * 2))
            await asyncio.sleep(backoff)

    def _gathers(self) -> bool:
        """Whether to wait commit_delay for more records: a few queued, as last time."""
        return (
            bool(self.commit_delay)
            and len(self._queue) < _GATHER_BELOW
            and self._last < _GATHER_BELOW
        )

    def _take_batch(self) -> list[tuple[AcctRecord, Done]]:
        """The oldest queued records, at most max_batch of them.

        Called on the loop, or on the database's thread in a chain, while close() may give up
        what is queued on the loop: each record is taken once, by one of them.
        """
        queue = self._queue
        batch: list[tuple[AcctRecord, Done]] = []
        with contextlib.suppress(IndexError):
            for _ in range(min(len(queue), self._max_batch)):
                batch.append(queue.popleft())
        return batch

    def _unanswered(self, batch: list[tuple[AcctRecord, Done]]) -> None:
        """Neither the database nor the spool took ``batch``: no answer (the NAS retransmits)."""
        self.failed += len(batch)
        for _, done in batch:
            done(False)

    async def _write(self, batch: list[tuple[AcctRecord, Done]]) -> bool:
        self._writing = len(batch)
        started = time.perf_counter()
        try:
            applied = await self._sink([record for record, _ in batch])
        except Exception as exc:
            self._writing = 0
            return await self._failed(batch, exc)
        self._writing = 0
        self._committed(batch, applied, time.perf_counter() - started)
        return True

    async def _write_chain(self, batch: list[tuple[AcctRecord, Done]]) -> bool:
        """Write ``batch`` and what the chain takes after it (see BatchChain)."""
        assert self._chain is not None
        self._into_chain(batch)
        try:
            failure = await self._chain(
                [record for record, _ in batch], self._follow, self._chain_committed
            )
        except Exception as exc:  # the chain could not run at all
            failure = exc
        if failure is None:
            return True
        # The loop has answered every batch committed before the failure (their calls came
        # first): what is left is the batch that failed.
        failed, _taken = self._out_of_chain()
        return await self._failed(failed, failure)

    def _follow(self) -> list[AcctRecord] | None:
        """The chain's next batch, taken on the database's thread; None ends the chain."""
        if self._gathers():
            return None  # the loop waits commit_delay for more first
        batch = self._take_batch()
        if not batch:
            return None
        self._last = len(batch)
        self._into_chain(batch)
        return [record for record, _ in batch]

    def _chain_committed(self, applied: Applied) -> None:
        batch, taken = self._out_of_chain()
        self._committed(batch, applied, time.perf_counter() - taken)

    def _into_chain(self, batch: list[tuple[AcctRecord, Done]]) -> None:
        """``batch`` is taken by a chain (on the loop for its first, else the thread)."""
        self._in_chain.append((batch, time.perf_counter()))
        self._chain_taken += len(batch)

    def _out_of_chain(self) -> tuple[list[tuple[AcctRecord, Done]], float]:
        """The chain's oldest batch, leaving it (committed, or failed), and when it was taken."""
        batch, taken = self._in_chain.popleft()
        self._chain_answered += len(batch)
        return batch, taken

    def _committed(
        self, batch: list[tuple[AcctRecord, Done]], applied: Applied, took: float
    ) -> None:
        """``batch`` is durable: count it, answer it, tell the session view."""
        self.commit_seconds += took
        self.commit_durations.observe(took)
        self._count_batch(len(batch))
        self.records += len(batch)
        for _, done in batch:
            done(True)
        self._applied(applied)

    async def _failed(self, batch: list[tuple[AcctRecord, Done]], exc: Exception) -> bool:
        """The database did not take ``batch``: split it, spool it, or leave it unanswered.
        False when the database itself is failing (the caller backs off)."""
        if len(batch) > 1 and self._is_data_error(exc):
            half = len(batch) // 2
            first = await self._write(batch[:half])
            second = await self._write(batch[half:])
            return first or second
        if not self._is_data_error(exc) and await self._spool_batch(batch, exc):
            return True
        self._unanswered(batch)
        self._warn.warning(
            "write", "accounting not recorded (%d requests unanswered): %r", len(batch), exc
        )
        # A record the database refuses is no sign of an outage; anything else is.
        return self._is_data_error(exc)

    def _count_batch(self, size: int) -> None:
        self.batches += 1
        self.batch_sum += size
        self.batch_max = max(self.batch_max, size)
        for index, bound in enumerate(BATCH_BUCKETS):
            if size <= bound:
                self.batch_buckets[index] += 1
                break

    def _applied(self, applied: Applied) -> None:
        if self._on_applied is not None:
            try:
                self._on_applied(applied)
            except Exception:
                log.exception("updating the session view after an accounting commit failed")

    # -- the spool: while the database is unreachable ---------------------------------------

    async def _spool_batch(
        self, batch: list[tuple[AcctRecord, Done]], cause: BaseException | None = None
    ) -> bool:
        """Append ``batch`` to the spool and answer it; False when there is no room for it."""
        if self._spool is None:
            return False
        self._writing = len(batch)
        try:
            await self._spool.append([record for record, _ in batch])
        except (OSError, SpoolFull) as exc:
            self._warn.warning("spool", "could not spool accounting: %s", exc)
            return False
        finally:
            self._writing = 0
        if not self.spooling:
            self.spooling = True
            self.outage_since = time.time()
            log.error(
                "the database cannot take accounting (%r); spooling it to %s until it can",
                cause,
                self._spool.directory,
            )
        self.spooled += len(batch)
        for _, done in batch:
            done(True)
        # The session view follows what the records will do (simultaneous use must not let a
        # second login in because the first one's Start is waiting in the spool).
        self._applied(store.foreseen([record for record, _ in batch]))
        return True

    async def _run_spooling(self) -> None:
        """Spool what arrives, replay the spool meanwhile; return once it is empty (or closing).

        New records are answered as soon as they are on disk; the replay runs beside that as
        its own task, so a database that takes seconds to refuse delays no answer.
        """
        spool = self._spool
        assert spool is not None
        loop = asyncio.get_running_loop()
        replay: asyncio.Task[bool] | None = None
        backoff, next_try = 0.0, loop.time()
        while True:
            if self._queue:
                batch = self._take_batch()
                if not await self._spool_batch(batch):
                    self._unanswered(batch)
                continue
            if replay is None:
                if spool.pending == 0:
                    # Warning, like the line that said spooling began: the end of an incident.
                    lasted = time.time() - self.outage_since if self.outage_since else 0.0
                    log.warning(
                        "the accounting spool has been written to the database (%d records "
                        "since the start, %.0f s after spooling began); writing directly again",
                        self.replayed,
                        lasted,
                    )
                    self.spooling = False
                    self.outage_since = None
                    return
                if self._closing:
                    return
                if loop.time() >= next_try:
                    replay = asyncio.create_task(self._replay_chunk(), name="accounting-replay")
            self._wakeup.clear()
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wakeup.wait())]
            if replay is not None:
                waits.append(replay)
            timeout = None if replay is not None else max(0.0, next_try - loop.time())
            done_, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waits[0] not in done_:
                waits[0].cancel()
            if replay is not None and replay.done():
                if replay.result():
                    backoff, next_try = 0.0, loop.time()
                else:
                    backoff = min(self._max_backoff, max(0.5, backoff * 2))
                    next_try = loop.time() + backoff
                replay = None

    async def _replay_chunk(self) -> bool:
        """Write the spool's oldest records to the database; False while it is unreachable."""
        spool = self._spool
        assert spool is not None
        try:
            chunk = await spool.read(self._max_batch)
            if chunk is None:
                return True
            await self._replay(chunk.records)
        except Exception as exc:
            self._warn.warning("replay", "the database still cannot take accounting: %r", exc)
            return False
        await spool.done(chunk)
        self.replayed += len(chunk.records)
        return True

    async def _replay(self, records: list[AcctRecord]) -> None:
        """Write ``records``, leaving out any the database refuses on their data."""
        if not records:
            return
        started = time.perf_counter()
        try:
            applied = await self._sink(records)
        except Exception as exc:
            if not self._is_data_error(exc):
                raise
            if len(records) == 1:
                # Its NAS was deleted meanwhile, say: keeping it would block the spool for good.
                self.discarded += 1
                log.error("a spooled accounting record was refused by the database: %r", exc)
                return
            half = len(records) // 2
            await self._replay(records[:half])
            await self._replay(records[half:])
            return
        self.commit_seconds += time.perf_counter() - started
        self._count_batch(len(records))
        self._applied(applied)

    async def close(self, grace: float = 10.0) -> bool:
        """Stop taking records; write (or spool) what is queued, for at most ``grace`` seconds.

        Returns whether everything queued was written. Records still queued when ``grace``
        runs out are given up, unanswered (RFC 2866 §2: no response unless recorded), so the
        NAS sends them to its other server; a batch in the middle of its commit still finishes.
        """
        self._closing = True
        self._wakeup.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), grace)
        if self._finished.is_set():
            return True
        abandoned = len(self._queue)
        while self._queue:
            _record, done = self._queue.popleft()
            done(False)
        self.failed += abandoned
        if abandoned:
            log.warning(
                "stopping: %d Accounting-Requests not committed in time, left unanswered",
                abandoned,
            )
        return False
