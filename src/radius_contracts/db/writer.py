"""SQLite's one writer, queued inside the process: the async engine's write transactions
take one lock.

SQLite lets one transaction write at a time. A writer on another connection that finds the
database locked waits in busy_timeout's sleep-and-retry: sleeps of 1, 2, 5 … up to 100 ms
between tries, with no queue and no fairness. The daemon's writers on the async engine (API
writes, jobs, pool leases, login claims, quota and window changes, the auth log's new tables)
each had their own lock or none, so they polled for each other. Now they queue on one
:class:`WriteLock` per engine, in arrival order.

The SQLite write thread (db.sqlite_writer: accounting and auth log batches, one connection)
does not hold it. It only lets a holder finish before it begins its next transaction: under
load it commits back to back, and a writer polling in busy_timeout could lose every try for
5 s ("database is locked"). Holding it would cost more: an aiosqlite transaction holds the
lock from BEGIN to COMMIT across several thread hops, each waiting for a busy event loop,
where SQLite's own lock is held only from the first write. (When the auth log still wrote
through the async engine, ~50 times a second, accounting behind the lock took a 3-minute soak
at 2,000 req/s from p50 2.1 / p99 ~20 ms to p50 8 / p99 25-38 ms.) Other processes (the CLI)
meet the daemon's writers in busy_timeout.

PostgreSQL locks rows, not the database, and runs writers concurrently: no lock there.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

__all__ = ["WriteLock", "held", "write_lock", "write_transaction"]


class WriteLock:
    """A FIFO lock that the task holding it may take again (a transaction opened inside
    another by the same task: it must not wait for itself)."""

    __slots__ = ("_lock", "_owner")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    def locked(self) -> bool:
        """Whether a writer holds it now."""
        return self._lock.locked()

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            yield
            return
        async with self._lock:
            self._owner = task
            try:
                yield
            finally:
                self._owner = None


# One lock per engine and event loop (a lock that ever waited belongs to its loop; tests and
# the CLI run several loops over one process's lifetime).
_LOCKS: weakref.WeakKeyDictionary[object, tuple[asyncio.AbstractEventLoop, WriteLock]] = (
    weakref.WeakKeyDictionary()
)


def write_lock(bind: async_sessionmaker[AsyncSession] | AsyncEngine | None) -> WriteLock | None:
    """The lock of the SQLite engine behind ``bind``; None for PostgreSQL (or no engine)."""
    engine = bind.kw.get("bind") if isinstance(bind, async_sessionmaker) else bind
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
        return None
    key = engine.sync_engine
    loop = asyncio.get_running_loop()
    found = _LOCKS.get(key)
    if found is None or found[0] is not loop:
        found = _LOCKS[key] = (loop, WriteLock())
    return found[1]


@asynccontextmanager
async def held(lock: WriteLock | None) -> AsyncIterator[None]:
    """Hold ``lock`` for the block; nothing when it is None (PostgreSQL)."""
    if lock is None:
        yield
        return
    async with lock.held():
        yield


@asynccontextmanager
async def write_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits when the block ends (rolls back on error), begun
    once this process's other writers are done on SQLite (see the module docstring)."""
    async with held(write_lock(sessions)), sessions() as session, session.begin():
        yield session
