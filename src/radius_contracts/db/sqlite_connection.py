"""aiosqlite connections that cross to their thread once per statement, not four times.

SQLAlchemy's aiosqlite adapter makes a cursor, executes, fetches and closes it, each through
aiosqlite's worker thread: a queue put, a thread woken, the event loop woken back, ~35 µs of
CPU a hop on the slow 2-core VM and more on a busy loop. A session that reads one row took six
hops (two no-op rollbacks among them), a contract create about twenty. Here:

- a cursor is made on the calling thread: until it executes it is a plain object;
- ``execute`` fetches the first rows in the same hop (up to ``PREFETCH``; a server-side
  cursor streaming a million contracts fetches the rest in chunks as before);
- ``close`` runs on the calling thread when the rows are all fetched: the statement is already
  reset then, and nothing else runs on the connection while its one user awaits the close;
- ``commit`` and ``rollback`` outside a transaction are skipped: sqlite3 would do nothing
  either (``in_transaction`` is read between statements, when no hop is under way).

Errors, results and transaction behaviour are sqlite3's, unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiosqlite

PREFETCH = 256  # rows fetched with the execute; more come a hop at a time


class Cursor(aiosqlite.Cursor):
    def __init__(self, conn: aiosqlite.Connection, cursor: sqlite3.Cursor) -> None:
        super().__init__(conn, cursor)
        self._rows: list[Any] = []
        self._more = False  # rows beyond the prefetched ones may be waiting

    async def _hop(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on the connection's thread."""
        return await self._conn._execute(function, *args)  # type: ignore[no-untyped-call]

    def _execute_and_fetch(self, sql: str, parameters: Any) -> list[Any]:
        cursor = self._cursor
        cursor.execute(sql, parameters)
        if cursor.description is None:
            return []
        return cursor.fetchmany(PREFETCH)

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Cursor:
        rows = await self._hop(
            self._execute_and_fetch, sql, [] if parameters is None else parameters
        )
        self._rows = rows
        self._more = len(rows) == PREFETCH
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> Cursor:
        self._rows, self._more = [], False
        await self._hop(self._cursor.executemany, sql, parameters)
        return self

    def _take(self, count: int) -> list[Any]:
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    async def fetchone(self) -> Any:
        if self._rows:
            return self._take(1)[0]
        if not self._more:
            return None
        row = await self._hop(self._cursor.fetchone)
        self._more = row is not None
        return row

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        wanted = self._cursor.arraysize if size is None else size
        rows = self._take(wanted)
        if len(rows) < wanted and self._more:
            more = await self._hop(self._cursor.fetchmany, wanted - len(rows))
            self._more = len(more) == wanted - len(rows)
            rows += more
        return rows

    async def fetchall(self) -> Sequence[Any]:
        rows, self._rows = self._rows, []
        if self._more:
            rows += await self._hop(self._cursor.fetchall)
            self._more = False
        return rows

    async def close(self) -> None:
        self._rows = []
        if self._more:
            # A statement still stepping is reset by close(): that is the thread's to do.
            self._more = False
            await self._hop(self._cursor.close)
        else:
            self._cursor.close()


class Connection(aiosqlite.Connection):
    def cursor(self) -> Cursor:  # type: ignore[override]
        """A cursor at once (SQLAlchemy enters it with ``__aenter__``; no hop needed)."""
        return Cursor(self, self._conn.cursor())

    async def commit(self) -> None:
        if self._conn.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await super().rollback()


def connect(database: str, **kwargs: Any) -> Connection:
    """What ``aiosqlite.connect`` does, with the connection above; awaited by SQLAlchemy.

    ``check_same_thread`` is off: cursors are made and closed on the event loop's thread while
    the statements run on the connection's own.
    """
    kwargs["check_same_thread"] = False
    connection = Connection(lambda: sqlite3.connect(database, **kwargs), iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    return connection
