"""Accounting sessions and daily usage, read side: filtered session lists and usage by day.

The accounting writer (store.accounting) fills both tables; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from radius_contracts.db.models import AcctSession, Nas, UsageDaily

__all__ = ["IpMatch", "SessionFilter", "sessions_stmt", "usage_days"]


@dataclass(frozen=True, slots=True)
class IpMatch:
    """Texts to look for, in the canonical form the accounting listener stores.

    ``addresses`` are compared with framed_ip and framed_ipv6_address, ``prefixes`` with
    framed_ipv6_prefix and delegated_ipv6_prefix.
    """

    addresses: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Conditions on sessions; None (or an empty IpMatch) leaves a condition out."""

    online: bool | None = None
    contract_id: int | None = None
    username: str | None = None  # compared lower-cased
    nas_id: int | None = None
    pop_id: int | None = None
    ip: IpMatch | None = None
    since: datetime | None = None  # aware UTC
    until: datetime | None = None  # aware UTC


def _in(
    column: InstrumentedAttribute[str | None], values: Collection[str]
) -> list[ColumnElement[bool]]:
    return [column.in_(sorted(values))] if values else []


def sessions_stmt(where: SessionFilter) -> Select[AcctSession]:
    """Sessions matching ``where``, newest first (started_at, then id, descending)."""
    stmt = select(AcctSession)
    if where.online is not None:
        stopped = AcctSession.stopped_at
        stmt = stmt.where(stopped.is_(None) if where.online else stopped.is_not(None))
    if where.contract_id is not None:
        stmt = stmt.where(AcctSession.contract_id == where.contract_id)
    if where.username is not None:
        stmt = stmt.where(func.lower(AcctSession.username) == where.username.lower())
    if where.nas_id is not None:
        stmt = stmt.where(AcctSession.nas_id == where.nas_id)
    if where.pop_id is not None:
        stmt = stmt.where(AcctSession.nas_id.in_(select(Nas.id).where(Nas.pop_id == where.pop_id)))
    if where.ip is not None:
        ip = where.ip
        conditions = [
            *_in(AcctSession.framed_ip, ip.addresses),
            *_in(AcctSession.framed_ipv6_address, ip.addresses),
            *_in(AcctSession.framed_ipv6_prefix, ip.prefixes),
            *_in(AcctSession.delegated_ipv6_prefix, ip.prefixes),
        ]
        stmt = stmt.where(or_(*conditions) if conditions else false())
    # Online at some moment of [since, until]: started by its end, not stopped before its start.
    if where.until is not None:
        stmt = stmt.where(AcctSession.started_at <= where.until)
    if where.since is not None:
        stmt = stmt.where(
            or_(AcctSession.stopped_at.is_(None), AcctSession.stopped_at >= where.since)
        )
    return stmt.order_by(AcctSession.started_at.desc(), AcctSession.id.desc())


async def usage_days(
    session: AsyncSession, contract_id: int, since: date, until: date
) -> Sequence[UsageDaily]:
    """The contract's daily usage rows from ``since`` to ``until`` (inclusive), oldest first."""
    stmt = (
        select(UsageDaily)
        .where(
            UsageDaily.contract_id == contract_id,
            UsageDaily.day >= since,
            UsageDaily.day <= until,
        )
        .order_by(UsageDaily.day)
    )
    return (await session.scalars(stmt)).all()
