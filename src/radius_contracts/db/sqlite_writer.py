"""The daemon's SQLite write thread: one connection that the steady writers share.

Accounting batches and auth log batches arrive all the time. Each runs here as one
transaction, in the order handed over, on one connection and one thread: one thread hop per
batch instead of one per statement, no async adapter between the batch and the driver, and
no waiting for each other inside SQLite. Two connections writing in turn meet in SQLite's
busy handler, which sleeps 1, 2, 5, 10 … ms between tries; an auth log batch written through
the async engine held the lock across several hops of a busy event loop (25-47 ms once a
second in bench/soak.py) while accounting slept behind it, the soak's p99. The rarer writers
(the API, jobs) stay on the async engine and queue on its write lock (db.writer); this thread
begins no transaction while one of them holds that lock, so under a steady accounting load
they are not left polling in SQLite's busy handler until it gives up.

Accounting chains its batches (``run_chain``): when one commits, the thread takes the next
itself, without a round trip through the event loop, which answers the committed batch
meanwhile. Under a closed loop of 128 requests the thread otherwise stood idle ~1.3 ms of every
~5.4 ms commit cycle (the loop had to notice the commit, answer 64 requests and hand over the
next batch), a quarter of the rate. A chain gives way after each commit to any ``run`` queued
behind it (the auth log) and to an engine writer holding the write lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from radius_contracts.db.writer import WriteLock, write_lock

__all__ = ["SqliteWriter"]

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]


class SqliteWriter:
    """One SQLite connection on a thread of its own; ``run`` queues a transaction on it.

    The connection uses the engine's pragmas (WAL, foreign keys, the configured synchronous
    level, busy timeout).
    """

    def __init__(self, path: str, synchronous: str, engine: AsyncEngine | None = None) -> None:
        """``engine``: the async engine on the same database, whose writers go first."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous}")
        self._engine = engine
        self._path = path
        self._synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        # Jobs handed to the thread and jobs it began, each counted by one thread only: a
        # chain gives way when they differ (someone waits behind it).
        self._handed = 0
        self._begun = 0

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    async def run(self, work: Work[T], *, durable: bool = True) -> T:
        """Run ``work`` in one transaction on the writer thread, after those queued before
        and after the engine's writer that holds its write lock now, if any.

        ``durable=False`` commits without waiting for the disk (synchronous=NORMAL for that
        transaction: under WAL it survives a crash of the process, and the next durable commit
        syncs it too). For what a crash may lose anyway, the auth log: its entries wait in
        memory for up to flush_interval before they are written at all.
        """
        await self._after_engine_writer()
        self._handed += 1
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._job, work, durable
        )

    async def run_chain(
        self,
        work: Work[T],
        following: Callable[[], Work[T] | None],
        committed: Callable[[T], None],
    ) -> tuple[Work[T], Exception] | None:
        """Run ``work`` in a durable transaction, then each work ``following()`` hands over,
        one transaction each, on the writer thread without waiting for the event loop.

        ``committed(result)`` is called on the event loop for each committed transaction, in
        order, before this returns. ``following`` is called on the writer thread (it must be
        thread-safe); the chain ends when it returns None, when another job waits for the
        thread, or when an engine writer holds the write lock (it goes first, as for ``run``).
        Returns None when every transaction committed, else the work that failed and why
        (rolled back; nothing after it ran).
        """
        lock = await self._after_engine_writer()
        loop = asyncio.get_running_loop()
        self._handed += 1
        return await loop.run_in_executor(
            self._executor, self._chain, loop, lock, work, following, committed
        )

    async def _after_engine_writer(self) -> WriteLock | None:
        """Wait until no engine writer holds the write lock; the lock (None: no engine)."""
        lock = write_lock(self._engine) if self._engine is not None else None
        if lock is not None and lock.locked():
            async with lock.held():
                pass
        return lock

    def _job(self, work: Work[T], durable: bool) -> T:
        self._begun += 1
        return self._transaction(work, durable)

    def _chain(
        self,
        loop: asyncio.AbstractEventLoop,
        lock: WriteLock | None,
        work: Work[T],
        following: Callable[[], Work[T] | None],
        committed: Callable[[T], None],
    ) -> tuple[Work[T], Exception] | None:
        self._begun += 1
        next_work: Work[T] | None = work
        while next_work is not None:
            try:
                result = self._transaction(next_work, durable=True)
            except Exception as exc:
                return next_work, exc
            try:
                # Scheduled before this job's own result: the loop sees them first, in order.
                loop.call_soon_threadsafe(committed, result)
            except RuntimeError:  # the event loop is closed: nobody is left to answer
                return None
            if self._handed != self._begun or (lock is not None and lock.locked()):
                return None  # someone waits for the thread or the lock: their turn first
            next_work = following()
        return None

    def _transaction(self, work: Work[T], durable: bool) -> T:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect()
        lighter = not durable and self._synchronous != "NORMAL"
        if lighter:
            connection.execute("PRAGMA synchronous=NORMAL")
        try:
            # IMMEDIATE takes the write lock now, so the batch cannot fail half way on a lock.
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            if lighter:
                connection.execute(f"PRAGMA synchronous={self._synchronous}")
        return result

    def close(self) -> None:
        """Finish what is queued, then close the connection (blocking: call from a thread)."""

        def shut() -> None:
            self._begun += 1
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        self._handed += 1  # a chain still running gives way
        self._executor.submit(shut).result(timeout=30)
        self._executor.shutdown(wait=True)
