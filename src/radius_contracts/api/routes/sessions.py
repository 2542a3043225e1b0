"""Accounting sessions (who is online, who was, with which address) and per-contract usage."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from radius_contracts.api.crud import RowId
from radius_contracts.api.deps import CallerDep, ServicesDep
from radius_contracts.api.schemas.common import Page
from radius_contracts.api.schemas.sessions import (
    SessionFilters,
    SessionPublic,
    UsagePublic,
    UsageQuery,
)

router = APIRouter(prefix="/sessions", tags=["sessions"])
usage = APIRouter(prefix="/contracts", tags=["contracts"])

# Session ids are 64-bit: the table outlives billions of sessions.
SessionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The session's id.")]


@router.get("", response_model=Page[SessionPublic], summary="List accounting sessions")
async def list_sessions(
    services: ServicesDep,
    _caller: CallerDep,
    query: Annotated[SessionFilters, Query()],
) -> Any:
    """Sessions as the NAS reported them in accounting, newest first (by start time).

    Filters combine (all must match). `online=true` lists who is online now; `ip` with
    `since`/`until` answers "who had this address at that time". Octet counters are 64-bit
    (Gigawords included) and count from the NAS's side: `input_octets` is what the subscriber
    uploaded. Sessions are recorded as soon as the NAS's Accounting-Request is acknowledged.
    """
    page = await services.sessions.page(**query.model_dump(exclude_none=True))
    return {
        "items": [SessionPublic.of(row) for row in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


@router.get("/{session_id}", response_model=SessionPublic, summary="Get an accounting session")
async def get_session(services: ServicesDep, _caller: CallerDep, session_id: SessionId) -> Any:
    """One session, open or closed; 404 when there is none with this id."""
    return SessionPublic.of(await services.sessions.get(session_id))


@usage.get("/{item_id}/usage", response_model=UsagePublic, summary="A contract's traffic usage")
async def contract_usage(
    services: ServicesDep,
    _caller: CallerDep,
    item_id: RowId,
    query: Annotated[UsageQuery, Query()],
) -> Any:
    """Uploaded and downloaded octets and online time per UTC day or calendar month.

    Added up from the accounting updates of all the contract's sessions, each counted on the
    UTC day it was reported. `input_octets` is what the subscriber uploaded (RADIUS counts
    from the NAS's side), `output_octets` what it downloaded; both are 64-bit. Periods without
    usage are left out; the totals add up the items. Without `since`/`until`, by day covers
    the last 31 days and by month the last 12 months, today included.
    """
    result = await services.sessions.usage(
        item_id, period=query.period, since=query.since, until=query.until
    )
    return UsagePublic.of(result)
