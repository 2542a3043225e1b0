"""Plans' time-window state shared by the nodes: which window the sessions were moved to."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import Plan

__all__ = ["claim_window", "windows_applied"]


async def windows_applied(session: AsyncSession) -> dict[int, str | None]:
    """Each plan that has windows: the window its sessions were last moved to ("none", an
    index as text; None when never evaluated)."""
    rows = await session.execute(select(Plan.id, Plan.window_applied, Plan.windows))
    return {plan_id: applied for plan_id, applied, windows in rows if windows}


async def claim_window(session: AsyncSession, plan_id: int, old: str | None, new: str) -> bool:
    """Record that the plan's sessions move to window ``new``; False when another node did
    first (or the plan's windows were edited meanwhile)."""
    condition = Plan.window_applied.is_(None) if old is None else Plan.window_applied == old
    result = await session.execute(
        update(Plan)
        .where(Plan.id == plan_id, condition)
        .values(window_applied=new)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
