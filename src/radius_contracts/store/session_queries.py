"""Session queries outside the accounting writer: open sessions at start-up and after a
change, stale sessions closed, history purged (the scheduler's jobs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.store.accounting_sql import Sql, statements_for
from radius_contracts.store.driver import padded

OpenRow = tuple[int, int, str, datetime, str | None, int | None, str | None]
"""(contract id, NAS id, session id, started at, calling station, NAS port, NAS port id)"""


async def open_sessions(
    session: AsyncSession, contract_ids: Sequence[int] | None = None
) -> list[OpenRow]:
    """Open sessions of contracts (all, or these), except those older than their NAS's last
    Accounting-On."""
    connection = await session.connection()
    sql = statements_for(connection.dialect.name, connection.dialect.paramstyle)
    query = (
        "SELECT s.contract_id, s.nas_id, s.acct_unique_id, s.started_at, "
        "s.calling_station_id, s.nas_port, s.nas_port_id FROM sessions s "
        "LEFT JOIN nas n ON n.id = s.nas_id "
        "WHERE s.stopped_at IS NULL AND s.contract_id IS NOT NULL AND s.nas_id IS NOT NULL "
        "AND (n.accounting_on_at IS NULL OR s.started_at > n.accounting_on_at)"
    )
    params: tuple[Any, ...] = ()
    if contract_ids is not None:
        ids = padded(sorted(set(contract_ids)))
        marks = sql.marks(len(ids))
        query += f" AND s.contract_id IN ({', '.join(marks)})"
        params = tuple(ids)
    result = await connection.exec_driver_sql(query, params)
    rows: list[OpenRow] = []
    for raw in result:
        row: tuple[Any, ...] = tuple(raw)
        started = sql.read_time(row[3])
        assert started is not None
        rows.append((row[0], row[1], row[2], started, row[4], row[5], row[6]))
    return rows


def _stale(
    sql: Sql, now: datetime, limits: Mapping[int | None, float]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(WHERE clause, parameters) picking the stale open sessions, one per entry of limits."""
    own = [nas_id for nas_id in limits if nas_id is not None]
    for nas_id, seconds in limits.items():
        cutoff = sql.time(now - timedelta(seconds=seconds))
        a, b = sql.marks(2)
        where = f"stopped_at IS NULL AND updated_at < {a}"
        params: list[Any] = [cutoff]
        if nas_id is not None:
            where += f" AND nas_id = {b}"
            params.append(nas_id)
        elif own:
            marks = sql.marks(len(own), 2)
            where += f" AND (nas_id IS NULL OR nas_id NOT IN ({', '.join(marks)}))"
            params.extend(own)
        yield where, tuple(params)


async def any_stale(
    session: AsyncSession, now: datetime, limits: Mapping[int | None, float]
) -> bool:
    """Whether close_stale would close anything: a read, which takes no write lock."""
    connection = await session.connection()
    sql = statements_for(connection.dialect.name, connection.dialect.paramstyle)
    for where, params in _stale(sql, now, limits):
        found = await connection.exec_driver_sql(
            f"SELECT 1 FROM sessions WHERE {where} LIMIT 1",  # noqa: S608
            params,
        )
        if found.first() is not None:
            return True
    return False


async def close_stale(
    session: AsyncSession, now: datetime, limits: Mapping[int | None, float]
) -> int:
    """Close open sessions not updated for ``limits[nas_id]`` seconds (None: every other NAS).

    They end at their last update, terminate cause "Stale": the NAS stopped reporting them
    (it lost them, or rebooted without Accounting-On).
    """
    connection = await session.connection()
    sql = statements_for(connection.dialect.name, connection.dialect.paramstyle)
    closed = 0
    for where, params in _stale(sql, now, limits):
        result = await connection.exec_driver_sql(
            "UPDATE sessions SET stopped_at = updated_at, terminate_cause = 'Stale' "  # noqa: S608
            f"WHERE {where}",
            params,
        )
        closed += result.rowcount
    return closed


async def purge_sessions(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` sessions closed before ``before``, oldest first; returns how many.

    One bounded batch per call: the caller commits between batches, so the write lock (on
    SQLite, the one the accounting writer needs too) is held briefly however old the backlog.
    """
    connection = await session.connection()
    sql = statements_for(connection.dialect.name, connection.dialect.paramstyle)
    a, b = sql.marks(2)
    result = await connection.exec_driver_sql(
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions "  # noqa: S608
        f"WHERE stopped_at IS NOT NULL AND stopped_at < {a} ORDER BY stopped_at LIMIT {b})",
        (sql.time(before), limit),
    )
    return int(result.rowcount)


async def purge_usage(session: AsyncSession, before: date, limit: int) -> int:
    """Delete up to ``limit`` daily usage rows of days before ``before`` (by ix_usage_daily_day)."""
    connection = await session.connection()
    sql = statements_for(connection.dialect.name, connection.dialect.paramstyle)
    a, b = sql.marks(2)
    result = await connection.exec_driver_sql(
        "DELETE FROM usage_daily WHERE (contract_id, day) IN "  # noqa: S608
        f"(SELECT contract_id, day FROM usage_daily WHERE day < {a} ORDER BY day LIMIT {b})",
        (sql.day(before), limit),
    )
    return int(result.rowcount)
