"""Accounting sessions (who is online, who was, with which address) and per-contract usage."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from radius_contracts.api.crud import RowId, page_of
from radius_contracts.api.deps import ActorDep, CallerDep, ServicesDep
from radius_contracts.api.schemas.coa import (
    CoaLogPublic,
    ContractDisconnectPublic,
    SessionDisconnectPublic,
)
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
    return page_of(page, SessionPublic.of)


@router.get("/{session_id}", response_model=SessionPublic, summary="Get an accounting session")
async def get_session(services: ServicesDep, _caller: CallerDep, session_id: SessionId) -> Any:
    """One session, open or closed; 404 when there is none with this id."""
    return SessionPublic.of(await services.sessions.get(session_id))


@router.get(
    "/{session_id}/coa-log",
    response_model=Page[CoaLogPublic],
    summary="CoA and Disconnect-Requests sent for a session",
)
async def session_coa_log(
    services: ServicesDep,
    _caller: CallerDep,
    session_id: SessionId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Any:
    """Every CoA-Request and Disconnect-Request sent to the session's NAS, newest first, with
    the attributes sent and the NAS's answer (ACK, NAK with its Error-Cause, or none). An
    entry appears once the request is answered or has timed out (after the `[coa]` timeout and
    its backed-off retries: 7 s with the defaults)."""
    page = await services.sessions.coa_log(session_id, limit=limit, offset=offset)
    return page_of(page, CoaLogPublic.of)


@router.post(
    "/{session_id}/disconnect",
    response_model=SessionDisconnectPublic | CoaLogPublic,
    status_code=202,
    responses={200: {"model": CoaLogPublic, "description": "With wait=true: the NAS's answer"}},
    summary="Disconnect a session",
)
async def disconnect_session(
    services: ServicesDep,
    actor: ActorDep,
    session_id: SessionId,
    response: Response,
    wait: Annotated[
        bool,
        Query(
            description="Wait for the NAS's answer (up to the [coa] timeout with retries, "
            "7 s by default) and return it."
        ),
    ] = False,
) -> Any:
    """Send the session's NAS a Disconnect-Request (RFC 5176), identifying the session as its
    manufacturer's CoA policy says. 202 once it is sent; the outcome is added to the
    session's coa-log. 409 when the session is no longer online or its NAS is not active."""
    record = await services.sessions.disconnect(actor, session_id, wait=wait)
    if record is None:
        return SessionDisconnectPublic(session_id=session_id, status="sent")
    response.status_code = 200
    return CoaLogPublic.of(record)


@usage.post(
    "/{item_id}/disconnect",
    response_model=ContractDisconnectPublic,
    status_code=202,
    summary="Disconnect a contract's sessions",
)
async def disconnect_contract(services: ServicesDep, actor: ActorDep, item_id: RowId) -> Any:
    """Send a Disconnect-Request for every online session of the contract. 202 with the
    sessions' ids; each outcome is added to that session's coa-log. The contract itself is
    unchanged: it may connect again (suspend or deactivate it to prevent that)."""
    sessions = await services.contracts.disconnect(actor, item_id)
    return ContractDisconnectPublic(contract_id=item_id, sessions=sessions)


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
