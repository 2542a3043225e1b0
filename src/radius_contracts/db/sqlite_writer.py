"""The accounting writer's own SQLite connection and thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from radius_contracts.store.accounting_records import Applied


class SqliteAccountingConnection:
    """The accounting writer's own SQLite connection, on a thread of its own.

    One thread hop per batch instead of one per statement, and no async adapter between the
    batch and the driver: on SQLite the per-batch overhead of the shared async engine cost
    more than the writes themselves. The connection uses the engine's pragmas (WAL, foreign
    keys, the configured synchronous level, busy timeout); SQLite serialises it with the
    engine's writers.
    """

    def __init__(self, path: str, synchronous: str) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous}")
        self._path = path
        self._synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accounting-db")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    def run(self, work: Callable[[sqlite3.Connection], Applied]) -> Awaitable[Applied]:
        """Run ``work`` in one transaction on the writer thread."""
        return asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, work)

    def _transaction(self, work: Callable[[sqlite3.Connection], Applied]) -> Applied:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect()
        # IMMEDIATE takes the write lock now, so the batch cannot fail half way on a lock.
        connection.execute("BEGIN IMMEDIATE")
        try:
            applied = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return applied

    def close(self) -> None:
        def shut() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        self._executor.submit(shut).result(timeout=30)
        self._executor.shutdown(wait=True)
