"""Auth log queries: batch insert, one contract's entries newest first, purge by age and count."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import AuthLogEntry, Contract, Nas

__all__ = [
    "cutoff_id",
    "delete_older",
    "delete_upto",
    "existing_contracts",
    "existing_nas",
    "insert_rows",
    "page_stmt",
]


async def insert_rows(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (column → value) with one executemany: no ORM objects per entry."""
    if rows:
        await session.execute(insert(AuthLogEntry), list(rows))


async def existing_contracts(session: AsyncSession, ids: Collection[int]) -> set[int]:
    if not ids:
        return set()
    return set((await session.scalars(select(Contract.id).where(Contract.id.in_(ids)))).all())


async def existing_nas(session: AsyncSession, ids: Collection[int]) -> set[int]:
    if not ids:
        return set()
    return set((await session.scalars(select(Nas.id).where(Nas.id.in_(ids)))).all())


def page_stmt(contract_id: int, result: str | None = None) -> Select[AuthLogEntry]:
    """A contract's entries, newest first (ids grow with arrival; ix_auth_log_contract)."""
    stmt = select(AuthLogEntry).where(AuthLogEntry.contract_id == contract_id)
    if result is not None:
        stmt = stmt.where(AuthLogEntry.result == result)
    return stmt.order_by(AuthLogEntry.id.desc())


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


async def delete_older(session: AsyncSession, older_than: datetime, limit: int) -> int:
    """Delete up to ``limit`` entries from before ``older_than``; returns how many went."""
    chunk = select(AuthLogEntry.id).where(AuthLogEntry.at < older_than).limit(limit)
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
