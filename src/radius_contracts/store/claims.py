"""Login claims: one transaction decides a batch of logins for contracts with a limit.

Everything a decision needs is read inside the transaction that records it, after the
contracts concerned are locked, so deciders on several nodes (or worker processes) serialise
per contract: PostgreSQL takes a transaction-scoped advisory lock per contract (in id order,
so two batches never wait for each other in a circle); SQLite's write lock, taken when the
transaction begins (BEGIN IMMEDIATE on the caller's side), already serialises all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import AcctSession, LoginClaim, Nas
from radius_contracts.store.driver import padded

__all__ = ["ClaimRow", "SessionRow", "claims_of", "expire", "lock", "open_sessions_of", "record"]

# Advisory locks of this namespace: one per contract id (any constant works; RADI + 1).
_NAMESPACE = 0x52414450


@dataclass(frozen=True, slots=True)
class SessionRow:
    contract_id: int
    nas_id: int
    key: str
    started_at: datetime
    station: str | None
    nas_port: int | None
    nas_port_id: str | None


@dataclass(frozen=True, slots=True)
class ClaimRow:
    id: int
    contract_id: int
    nas_id: int | None
    station: str | None
    nas_port: int | None
    nas_port_id: str | None
    expires_at: datetime


async def lock(session: AsyncSession, contract_ids: Sequence[int]) -> None:
    """Hold the contracts until the transaction ends (PostgreSQL; SQLite holds everything)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, c) FROM unnest(CAST(:ids AS int[])) c"),
        {"namespace": _NAMESPACE, "ids": sorted(set(contract_ids))},
    )


async def open_sessions_of(session: AsyncSession, contract_ids: Sequence[int]) -> list[SessionRow]:
    """The contracts' open sessions, except those older than their NAS's last Accounting-On
    (the same rule as the session view's load, store.accounting.open_sessions)."""
    stmt = (
        select(
            AcctSession.contract_id,
            AcctSession.nas_id,
            AcctSession.acct_unique_id,
            AcctSession.started_at,
            AcctSession.calling_station_id,
            AcctSession.nas_port,
            AcctSession.nas_port_id,
        )
        .outerjoin(Nas, Nas.id == AcctSession.nas_id)
        .where(
            AcctSession.contract_id.in_(padded(sorted(set(contract_ids)))),
            AcctSession.stopped_at.is_(None),
            AcctSession.nas_id.is_not(None),
            (Nas.accounting_on_at.is_(None)) | (AcctSession.started_at > Nas.accounting_on_at),
        )
    )
    rows = []
    for contract_id, nas_id, key, started, station, port, port_id in await session.execute(stmt):
        assert contract_id is not None and nas_id is not None  # the WHERE clause says so
        rows.append(SessionRow(contract_id, nas_id, key, started, station, port, port_id))
    return rows


async def claims_of(
    session: AsyncSession, contract_ids: Sequence[int], now: datetime
) -> list[ClaimRow]:
    stmt = select(
        LoginClaim.id,
        LoginClaim.contract_id,
        LoginClaim.nas_id,
        LoginClaim.station,
        LoginClaim.nas_port,
        LoginClaim.nas_port_id,
        LoginClaim.expires_at,
    ).where(
        LoginClaim.contract_id.in_(padded(sorted(set(contract_ids)))),
        LoginClaim.expires_at > now,
    )
    return [ClaimRow(*row) for row in await session.execute(stmt)]


async def record(
    session: AsyncSession, added: Sequence[dict[str, object]], replaced: Sequence[int]
) -> list[int]:
    """Insert the accepted logins' claims (their ids, in order) and delete those they took
    the place of."""
    if replaced:
        await session.execute(
            delete(LoginClaim).where(LoginClaim.id.in_(padded(sorted(set(replaced)))))
        )
    if not added:
        return []
    # One statement for the batch (SQLAlchemy's "insertmanyvalues": a multi-row INSERT …
    # RETURNING), its ids in the order of ``added``: a round trip per claim made a limited
    # login cost many times an unlimited one.
    inserted = await session.scalars(
        insert(LoginClaim).returning(LoginClaim.id, sort_by_parameter_order=True), list(added)
    )
    return [int(claim_id) for claim_id in inserted]


async def withdraw(session: AsyncSession, claim_id: int) -> None:
    """Take back a claim whose login was refused after all (its pool was exhausted)."""
    await session.execute(delete(LoginClaim).where(LoginClaim.id == claim_id))


async def expire(session: AsyncSession, now: datetime) -> int:
    """Delete the claims whose Accounting-Start never came in time."""
    result = await session.execute(delete(LoginClaim).where(LoginClaim.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
