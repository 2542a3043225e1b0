"""Auth log queries: tables per UTC day, batch inserts, reads across them, whole-table drops.

Why tables per day: retention then drops whole tables, and a DROP TABLE costs the same for ten
rows as for ten million (no per-row delete, no index maintenance, no long write lock that
stalls the auth log writer and, on SQLite, every other writer). The same design serves SQLite
and PostgreSQL; only the DDL for the id differs (see ``_DDL``).

A day's first table is ``auth_log_YYYYMMDD``. A busy day gets more, ``auth_log_YYYYMMDD_1``,
``_2`` …, each a :class:`Segment`: the writer starts the next one when the current holds
``part_rows`` entries (services.auth_log), so retention can keep ``max_rows`` by dropping
whole tables even when today alone holds more.

Ids grow across tables, so "newest first" is ``id DESC`` over the tables newest first, and a
row's id is unique in the whole log: on PostgreSQL every table takes its ids from the one
sequence ``auth_log_ids``; on SQLite (one writer: one node, worker processes forward their
outcomes to it) the writer numbers rows itself, past the highest id ever used (next_id).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    select,
    true,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from radius_contracts.db.types import DateTimeUTC
from radius_contracts.store.driver import padded, placeholders, rows_in_values

__all__ = [
    "COLUMNS",
    "PREFIX",
    "AuthLogFilter",
    "AuthLogRow",
    "Segment",
    "add_counts",
    "add_counts_on",
    "day_of",
    "days",
    "drop_day",
    "drop_segment",
    "ensure_day",
    "ensure_segment",
    "existing",
    "existing_on",
    "id_span",
    "insert_returning_id",
    "insert_rows",
    "insert_rows_on",
    "next_id",
    "remember_id",
    "segments",
    "select_page",
    "table_name",
    "vanished",
]

PREFIX = "auth_log_"
_NAME = re.compile(r"^auth_log_(\d{8})(?:_(\d{1,6}))?$")

COLUMNS = (
    "at",
    "contract_id",
    "username",
    "nas_id",
    "calling_station_id",
    "result",
    "reason",
    "method",
    "count",
)
"""Order of the values in each row passed to insert_rows."""

# The day table, spelt per dialect. Foreign keys as the single table had them: deleting a
# contract deletes its entries, deleting a NAS keeps them without the reference. The index
# serves one contract's pages and the ON DELETE CASCADE lookup; no index on `at` (days already
# bound the time range) nor on username (every index slows the batch inserts).
_DDL = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS {table} ("
        "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "
        "at DATETIME NOT NULL, "
        "contract_id INTEGER REFERENCES contracts (id) ON DELETE CASCADE, "
        "username VARCHAR(253), "
        "nas_id INTEGER REFERENCES nas (id) ON DELETE SET NULL, "
        "calling_station_id VARCHAR(253), "
        "result VARCHAR(8) NOT NULL, "
        "reason VARCHAR(255) NOT NULL, "
        "method VARCHAR(16), "
        "count INTEGER NOT NULL DEFAULT 1)"
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS {table} ("
        "id BIGINT NOT NULL DEFAULT nextval('auth_log_ids') PRIMARY KEY, "
        "at TIMESTAMP WITH TIME ZONE NOT NULL, "
        "contract_id INTEGER REFERENCES contracts (id) ON DELETE CASCADE, "
        "username VARCHAR(253), "
        "nas_id INTEGER REFERENCES nas (id) ON DELETE SET NULL, "
        "calling_station_id VARCHAR(253), "
        "result VARCHAR(8) NOT NULL, "
        "reason VARCHAR(255) NOT NULL, "
        "method VARCHAR(16), "
        "count INTEGER NOT NULL DEFAULT 1)"
    ),
}
# pg_advisory_xact_lock key of day table creation (any constant no other code uses).
_LOCK_KEY = 0x61757468_6C6F6700  # "authlog\0"
_INDEX = "CREATE INDEX IF NOT EXISTS ix_{table}_contract ON {table} (contract_id, id)"


class Segment(NamedTuple):
    """One table of the auth log: a UTC day and its part (0 first). Orders oldest first."""

    day: date
    part: int = 0


def table_name(segment: Segment) -> str:
    day, part = segment
    return f"{PREFIX}{day:%Y%m%d}" + (f"_{part}" if part else "")


def day_of(at: datetime) -> date:
    """The UTC day whose table holds an entry made at ``at`` (aware)."""
    return at.astimezone(UTC).date()


def _table(segment: Segment) -> Table:
    """A Core view of one table, for typed reads (DDL is ``_DDL``'s)."""
    return Table(
        table_name(segment),
        MetaData(),
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("at", DateTimeUTC(timezone=True)),
        Column("contract_id", Integer),
        Column("username", String(253)),
        Column("nas_id", Integer),
        Column("calling_station_id", String(253)),
        Column("result", String(8)),
        Column("reason", String(255)),
        Column("method", String(16)),
        Column("count", Integer),
    )


async def segments(connection: AsyncConnection) -> list[Segment]:
    """Every table of the log, oldest first (read from the catalogue: no registry to drift)."""
    if connection.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'auth_log_%'"
    else:
        sql = (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename LIKE 'auth_log_%'"
        )
    found = []
    for (name,) in await connection.exec_driver_sql(sql):
        match = _NAME.match(name)
        if match:
            day = datetime.strptime(match.group(1), "%Y%m%d").date()
            found.append(Segment(day, int(match.group(2) or 0)))
    return sorted(found)


async def days(connection: AsyncConnection) -> list[date]:
    """Every day that has a table, oldest first."""
    return sorted({segment.day for segment in await segments(connection)})


async def ensure_day(connection: AsyncConnection, day: date) -> None:
    """Create ``day``'s first table when missing."""
    await ensure_segment(connection, Segment(day))


async def ensure_segment(connection: AsyncConnection, segment: Segment) -> None:
    """Create ``segment``'s table (and its index) when missing."""
    table = table_name(segment)
    if connection.dialect.name == "postgresql":
        # Two nodes creating the same table at once: IF NOT EXISTS alone is not atomic there
        # (one fails on the catalogue's unique index). The lock, held to the commit, queues
        # them; the second then finds the table. Taken once per day per process.
        await connection.exec_driver_sql("SELECT pg_advisory_xact_lock($1)", (_LOCK_KEY,))
    await connection.exec_driver_sql(_DDL[connection.dialect.name].format(table=table))
    await connection.exec_driver_sql(_INDEX.format(table=table))


async def next_id(connection: AsyncConnection) -> int:
    """SQLite: the id the next entry takes, past every id the log ever handed out.

    SQLite has no sequence shared by tables, so its single writer numbers the rows itself. The
    highest id ever used survives dropped days in sqlite_sequence under the name ``auth_log``
    (the single table's, before revision 0009; see drop_day).
    """
    high = 0
    for segment in await segments(connection):
        span = await id_span(connection, segment)
        high = max(high, span[1] if span else 0)
    result = await connection.exec_driver_sql(
        "SELECT max(seq) FROM sqlite_sequence WHERE name LIKE 'auth_log%'"
    )
    return max(high, result.scalar() or 0) + 1


async def drop_day(connection: AsyncConnection, day: date) -> None:
    """Drop every table of ``day``."""
    for segment in await segments(connection):
        if segment.day == day:
            await drop_segment(connection, segment)


async def drop_segment(connection: AsyncConnection, segment: Segment) -> None:
    """Drop ``segment``'s table whole; on SQLite remember its highest id first (see next_id)."""
    table = table_name(segment)
    if connection.dialect.name == "sqlite":
        span = await id_span(connection, segment)
        if span is not None:
            await remember_id(connection, span[1])
    await connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


async def remember_id(connection: AsyncConnection, high: int) -> None:
    """SQLite: keep ``high`` as the highest auth log id ever used (see next_id)."""
    updated = await connection.exec_driver_sql(
        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'auth_log'", (high,)
    )
    if not updated.rowcount:
        await connection.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('auth_log', ?)", (high,)
        )


async def id_span(connection: AsyncConnection, segment: Segment) -> tuple[int, int] | None:
    """The smallest and largest id in ``segment``'s table (two primary-key lookups), None if
    empty.

    ``max - min + 1`` is how many rows it took: an upper bound (ids other nodes took in between
    on PostgreSQL leave gaps), had in O(log n) where a count(*) reads the whole table.
    """
    table = table_name(segment)
    result = await connection.exec_driver_sql(
        f"SELECT (SELECT min(id) FROM {table}), (SELECT max(id) FROM {table})"  # noqa: S608
    )
    low, high = tuple(result.one())
    return None if low is None else (int(low), int(high))


async def insert_rows(
    connection: AsyncConnection, segment: Segment, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (values in COLUMNS order, on SQLite after the id) in one executemany.

    The auth log takes a row for every Access-Request, thousands a second: SQLAlchemy's
    per-row parameter processing cost more than the whole request, so the statement goes
    to the driver as is. ``at`` must already be in the driver's form (see ``timestamp``).
    """
    if rows:
        sql = _insert_sql(connection.dialect.name, connection.dialect.paramstyle, segment)
        await connection.exec_driver_sql(sql, list(rows))


async def insert_returning_id(
    connection: AsyncConnection, segment: Segment, row: tuple[Any, ...]
) -> int:
    """Insert one row and return its id (the unknown-username rows whose count grows later)."""
    sql = _insert_sql(connection.dialect.name, connection.dialect.paramstyle, segment)
    result = await connection.exec_driver_sql(sql + " RETURNING id", row)
    return int(result.scalar_one())


def _insert_sql(dialect: str, paramstyle: str, segment: Segment) -> str:
    """The INSERT of one row into ``segment``'s table (values as ``insert_rows`` takes them)."""
    marks = placeholders(paramstyle, len(COLUMNS) + (dialect == "sqlite"))
    return f"{_insert_head(dialect, segment)} ({', '.join(marks)})"


def _insert_head(dialect: str, segment: Segment) -> str:
    """``INSERT INTO <table> (<columns>) VALUES``, without the values."""
    # SQLite's rows come numbered by the writer (see next_id), PostgreSQL's by the sequence.
    columns = ("id", *COLUMNS) if dialect == "sqlite" else COLUMNS
    return f"INSERT INTO {table_name(segment)} ({', '.join(columns)}) VALUES"


async def add_counts(
    connection: AsyncConnection, segment: Segment, counts: Sequence[tuple[int, int]]
) -> None:
    """Add ``n`` to the count of row ``id`` for each ``(n, id)``."""
    if counts:
        sql = _add_counts_sql(connection.dialect.paramstyle, segment)
        await connection.exec_driver_sql(sql, list(counts))


def _add_counts_sql(paramstyle: str, segment: Segment) -> str:
    """The UPDATE that ``add_counts`` runs for each ``(n, id)``."""
    marks = placeholders(paramstyle, 2)
    return f"UPDATE {table_name(segment)} SET count = count + {marks[0]} WHERE id = {marks[1]}"  # noqa: S608


async def existing(session: AsyncSession, table: str, ids: Collection[int]) -> set[int]:
    """Which of ``ids`` still exist in ``table`` (contracts or nas)."""
    if not ids:
        return set()
    connection = await session.connection()
    sql, params = _existing_sql(connection.dialect.paramstyle, table, ids)
    result = await connection.exec_driver_sql(sql, params)
    return {row[0] for row in result}


def _existing_sql(paramstyle: str, table: str, ids: Collection[int]) -> tuple[str, tuple[int, ...]]:
    """The query of ``existing`` and its parameters (``ids`` must not be empty)."""
    values = padded(sorted(ids))  # a few statement lengths, not one per batch (driver.padded)
    marks = ", ".join(placeholders(paramstyle, len(values)))
    return f"SELECT id FROM {table} WHERE id IN ({marks})", tuple(values)  # noqa: S608 - ours


# -- the same writes on a plain sqlite3 connection: SQLite's write thread (db.sqlite_writer) ----


def existing_on(connection: sqlite3.Connection, table: str, ids: Collection[int]) -> set[int]:
    """:func:`existing` on the write thread's connection."""
    if not ids:
        return set()
    return {row[0] for row in connection.execute(*_existing_sql("qmark", table, ids))}


def insert_rows_on(
    connection: sqlite3.Connection, segment: Segment, rows: Sequence[tuple[Any, ...]]
) -> None:
    """:func:`insert_rows` on the write thread's connection (ids first, see next_id), 64
    rows per statement (store.driver.rows_in_values: executemany would wait for the GIL
    between rows)."""
    for statement, params in rows_in_values(_insert_head("sqlite", segment), rows):
        connection.execute(statement, params)


def add_counts_on(
    connection: sqlite3.Connection, segment: Segment, counts: Sequence[tuple[int, int]]
) -> None:
    """:func:`add_counts` on the write thread's connection."""
    if counts:
        connection.executemany(_add_counts_sql("qmark", segment), counts)


def vanished(exc: DBAPIError) -> bool:
    """Whether ``exc`` says a log table is gone (dropped by retention while being used)."""
    text = str(exc.orig)
    return PREFIX in text and ("no such table" in text or "does not exist" in text)


@dataclass(frozen=True, slots=True)
class AuthLogFilter:
    """What a page of the log is restricted to; every given field must match."""

    result: str | None = None
    reason: str | None = None  # case-insensitive substring
    username: str | None = None  # exact, as the NAS sent it
    nas_id: int | None = None
    contract_id: int | None = None
    since: datetime | None = None  # at >= since
    until: datetime | None = None  # at < until


@dataclass(frozen=True, slots=True)
class AuthLogRow:
    id: int
    at: datetime
    contract_id: int | None
    username: str | None
    nas_id: int | None
    calling_station_id: str | None
    result: str
    reason: str
    method: str | None
    count: int


def _where(table: Table, where: AuthLogFilter) -> list[ColumnElement[bool]]:
    c = table.c
    clauses: list[ColumnElement[bool]] = []
    if where.result is not None:
        clauses.append(c.result == where.result)
    if where.reason is not None:
        escaped = where.reason.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(func.lower(c.reason).like(f"%{escaped.lower()}%", escape="\\"))
    if where.username is not None:
        clauses.append(c.username == where.username)
    if where.nas_id is not None:
        clauses.append(c.nas_id == where.nas_id)
    if where.contract_id is not None:
        clauses.append(c.contract_id == where.contract_id)
    if where.since is not None:
        clauses.append(c.at >= where.since)
    if where.until is not None:
        clauses.append(c.at < where.until)
    return clauses


def _in_range(day: date, where: AuthLogFilter) -> bool:
    start = datetime.combine(day, time(), UTC)
    if where.since is not None and start + timedelta(days=1) <= where.since:
        return False
    return not (where.until is not None and start >= where.until)


async def select_page(
    connection: AsyncConnection, where: AuthLogFilter, *, limit: int, offset: int
) -> tuple[list[AuthLogRow], int]:
    """One page of matching entries, newest first, and how many match in all.

    Walks the tables newest first, one at a time: a page near the top reads only the newest
    tables' rows, and no compound SELECT grows with retention_days.
    """
    items: list[AuthLogRow] = []
    skip, total = offset, 0
    for segment in reversed(await segments(connection)):
        if not _in_range(segment.day, where):
            continue
        table = _table(segment)
        clauses = _where(table, where)
        condition = and_(true(), *clauses)
        count = int(
            (
                await connection.execute(select(func.count()).where(condition).select_from(table))
            ).scalar_one()
        )
        total += count
        if len(items) >= limit or count == 0:
            continue
        if skip >= count:
            skip -= count
            continue
        stmt = (
            select(table)
            .where(condition)
            .order_by(table.c.id.desc())
            .limit(limit - len(items))
            .offset(skip)
        )
        skip = 0
        items.extend(AuthLogRow(**row._mapping) for row in await connection.execute(stmt))
    return items, total
