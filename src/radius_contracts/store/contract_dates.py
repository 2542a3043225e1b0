"""Contracts whose dates change what they may do: ended ones still online, ones starting today."""

from __future__ import annotations

from datetime import date

from sqlalchemy import exists, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import AcctSession, Contract
from radius_contracts.domain import ContractStatus

__all__ = ["ended_online", "starting"]

# Inactive and cancelled contracts are refused whatever their dates say.
_LIVE = (ContractStatus.ACTIVE.value, ContractStatus.SUSPENDED.value)


async def ended_online(
    session: AsyncSession, today: date, *, after: int = 0, limit: int = 500
) -> list[tuple[int, date]]:
    """(id, end_date) of contracts past their end date with open sessions, by id after ``after``.

    A contract is past its end when ``end_date < today`` and it does not auto-extend, as
    aaa.authorize reads it; only active and suspended contracts count (the others are refused
    for their status anyway, and were disconnected when it changed).
    """
    online = exists().where(
        AcctSession.stopped_at.is_(None), AcctSession.contract_id == Contract.id
    )  # served by ix_sessions_open (stopped_at, contract_id)
    stmt = (
        select(Contract.id, Contract.end_date)
        .where(
            Contract.id > after,
            Contract.end_date < today,
            Contract.auto_extend == false(),
            Contract.status.in_(_LIVE),
            online,
        )
        .order_by(Contract.id)
        .limit(limit)
    )
    found = await session.execute(stmt)
    return [(contract_id, end) for contract_id, end in found if end is not None]


async def starting(session: AsyncSession, day: date) -> int:
    """How many active or suspended contracts start on ``day``."""
    stmt = select(func.count()).where(Contract.start_date == day, Contract.status.in_(_LIVE))
    return (await session.execute(stmt)).scalar_one()
