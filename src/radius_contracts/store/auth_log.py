"""Auth log queries: batch insert, one contract's entries newest first, purge by age and count."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import AuthLogEntry
from radius_contracts.store.driver import padded, placeholders

__all__ = [
    "COLUMNS",
    "cutoff_id",
    "delete_older",
    "delete_upto",
    "existing",
    "insert_rows",
    "page_stmt",
]


COLUMNS = (
    "at",
    "contract_id",
    "username",
    "nas_id",
    "calling_station_id",
    "result",
    "reason",
    "method",
)
"""Order of the values in each row passed to insert_rows."""


async def insert_rows(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (values in COLUMNS order) with one driver-level executemany.

    The auth log takes a row for every Access-Request, thousands a second: SQLAlchemy's
    per-row parameter processing cost more than the whole request, so the statement goes
    to the driver as is. ``at`` must already be in the driver's form (see ``timestamp``).
    """
    if not rows:
        return
    connection = await session.connection()
    sql = (
        f"INSERT INTO auth_log ({', '.join(COLUMNS)}) "  # noqa: S608 - our names
        f"VALUES ({', '.join(placeholders(connection.dialect.paramstyle, len(COLUMNS)))})"
    )
    await connection.exec_driver_sql(sql, list(rows))


async def existing(session: AsyncSession, table: str, ids: Collection[int]) -> set[int]:
    """Which of ``ids`` still exist in ``table`` (contracts or nas)."""
    if not ids:
        return set()
    connection = await session.connection()
    values = padded(sorted(ids))
    marks = ", ".join(placeholders(connection.dialect.paramstyle, len(values)))
    result = await connection.exec_driver_sql(
        f"SELECT id FROM {table} WHERE id IN ({marks})",  # noqa: S608 - table is ours
        tuple(values),
    )
    return {row[0] for row in result}


def page_stmt(contract_id: int, result: str | None = None) -> Select[AuthLogEntry]:
    """A contract's entries, newest first (ids grow with arrival; ix_auth_log_contract)."""
    stmt = select(AuthLogEntry).where(AuthLogEntry.contract_id == contract_id)
    if result is not None:
        stmt = stmt.where(AuthLogEntry.result == result)
    return stmt.order_by(AuthLogEntry.id.desc())


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


async def delete_older(session: AsyncSession, older_than: datetime, limit: int) -> int:
    """Delete up to ``limit`` entries from before ``older_than``; returns how many went.

    ``at`` has no index (it would slow every insert); ids grow with time, so walking the
    primary key from the oldest end finds the old entries first.
    """
    chunk = (
        select(AuthLogEntry.id)
        .where(AuthLogEntry.at < older_than)
        .order_by(AuthLogEntry.id)
        .limit(limit)
    )
    stmt = delete(AuthLogEntry).where(AuthLogEntry.id.in_(chunk.scalar_subquery()))
    return _rowcount(await session.execute(stmt))


async def cutoff_id(session: AsyncSession, keep: int) -> int | None:
    """The newest id beyond the newest ``keep`` entries (delete up to it), or None."""
    stmt = select(AuthLogEntry.id).order_by(AuthLogEntry.id.desc()).offset(keep).limit(1)
    found: int | None = (await session.scalars(stmt)).first()
    return found


async def delete_upto(session: AsyncSession, last_id: int, limit: int) -> int:
    """Delete up to ``limit`` of the oldest entries with ``id <= last_id``."""
    chunk = (
        select(AuthLogEntry.id)
        .where(AuthLogEntry.id <= last_id)
        .order_by(AuthLogEntry.id)
        .limit(limit)
    )
    stmt = delete(AuthLogEntry).where(AuthLogEntry.id.in_(chunk.scalar_subquery()))
    return _rowcount(await session.execute(stmt))
