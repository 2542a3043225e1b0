"""Quota usage rows: read a contract's period, top it up, re-evaluate states, end periods.

Accounting adds traffic to these rows itself (store.accounting, in its own transaction); the
functions here serve the API, plan changes and the period job. State changes are conditional
UPDATEs, so that when several nodes act on one row only one of them sees the change happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import QuotaUsage
from radius_contracts.plans import QuotaState
from radius_contracts.store.accounting import QuotaTarget

__all__ = [
    "UsageRow",
    "ended_over",
    "evaluate",
    "purge",
    "read",
    "restore",
    "top_up",
]


@dataclass(frozen=True, slots=True)
class UsageRow:
    """A contract's usage in one period (zeros when nothing was counted yet)."""

    period_start: date
    period_end: date
    used_bytes: int = 0
    extra_bytes: int = 0
    state: QuotaState = QuotaState.NORMAL
    changed_at: datetime | None = None


async def read(session: AsyncSession, contract_id: int, target: QuotaTarget) -> UsageRow:
    row = await session.get(QuotaUsage, (contract_id, target.period_start))
    if row is None:
        return UsageRow(target.period_start, target.period_end)
    return UsageRow(
        row.period_start,
        row.period_end,
        row.used_bytes,
        row.extra_bytes,
        QuotaState(row.state),
        row.changed_at,
    )


async def _ensure(session: AsyncSession, contract_id: int, target: QuotaTarget) -> None:
    """The period's row exists (inserted empty when it did not)."""
    values = {
        "contract_id": contract_id,
        "period_start": target.period_start,
        "period_end": target.period_end,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert(QuotaUsage).values(**values).on_conflict_do_nothing())


async def top_up(
    session: AsyncSession,
    contract_id: int,
    target: QuotaTarget,
    *,
    add_bytes: int = 0,
    reset: bool = False,
) -> None:
    """Add ``add_bytes`` to the period's allowance, or start its count again from zero."""
    await _ensure(session, contract_id, target)
    key = (QuotaUsage.contract_id == contract_id, QuotaUsage.period_start == target.period_start)
    changes: dict[str, object] = {}
    if reset:
        changes = {"used_bytes": 0, "extra_bytes": 0}
    if add_bytes:
        changes["extra_bytes"] = QuotaUsage.extra_bytes + add_bytes
    await session.execute(update(QuotaUsage).where(*key).values(**changes))


async def evaluate(
    session: AsyncSession, targets: Mapping[int, QuotaTarget], now: datetime
) -> dict[int, QuotaState]:
    """Bring the state of each contract's current period in line with its cap; returns the
    contracts whose state this call changed, with the new state."""
    changed: dict[int, QuotaState] = {}
    for contract_id, target in targets.items():
        key = (
            QuotaUsage.contract_id == contract_id,
            QuotaUsage.period_start == target.period_start,
        )
        stmt = select(QuotaUsage.used_bytes, QuotaUsage.extra_bytes, QuotaUsage.state).where(*key)
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()  # accounting on another node adds to it meanwhile
        row = (await session.execute(stmt)).first()
        if row is None:
            continue  # nothing counted yet this period: normal, as an absent row reads
        used, extra, state = row
        wanted = QuotaState.OVER if used >= target.cap_bytes + extra else QuotaState.NORMAL
        if wanted.value == state:
            continue
        result = await session.execute(
            update(QuotaUsage)
            .where(*key, QuotaUsage.state == state)
            .values(state=wanted.value, changed_at=now)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            changed[contract_id] = wanted
    return changed


async def ended_over(session: AsyncSession, today: date, limit: int) -> list[tuple[int, date]]:
    """Periods that ended (by local ``today``) while their contract was over its cap and whose
    contract has not been given full speed back yet: (contract id, period start)."""
    stmt = (
        select(QuotaUsage.contract_id, QuotaUsage.period_start)
        .where(
            QuotaUsage.state == QuotaState.OVER.value,
            QuotaUsage.period_end <= today,
            QuotaUsage.restored_at.is_(None),
        )
        .order_by(QuotaUsage.contract_id, QuotaUsage.period_start)
        .limit(limit)
    )
    return [(contract_id, start) for contract_id, start in await session.execute(stmt)]


async def restore(
    session: AsyncSession, ended: Sequence[tuple[int, date]], now: datetime
) -> list[tuple[int, date]]:
    """Mark these ended periods as dealt with; returns those this call marked (another node
    may have taken some)."""
    marked: list[tuple[int, date]] = []
    for contract_id, start in ended:
        result = await session.execute(
            update(QuotaUsage)
            .where(
                QuotaUsage.contract_id == contract_id,
                QuotaUsage.period_start == start,
                QuotaUsage.restored_at.is_(None),
            )
            .values(restored_at=now)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            marked.append((contract_id, start))
    return marked


async def purge(session: AsyncSession, before: date) -> int:
    """Delete periods that ended before ``before``."""
    result = await session.execute(delete(QuotaUsage).where(QuotaUsage.period_end < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
