"""The auth log: every Access-Request outcome, for "why can't this customer connect"."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from radius_contracts.api.crud import RowId
from radius_contracts.api.deps import CallerDep, ServicesDep
from radius_contracts.api.schemas.common import MAX_INT32, Id, Input, Output, Page, Text253
from radius_contracts.services.auth_log import AuthLogPage
from radius_contracts.store.auth_log import AuthLogFilter

router = APIRouter(prefix="/contracts", tags=["contracts"])
everyone = APIRouter(prefix="/auth-log", tags=["auth log"])


class AuthLogEntryPublic(Output):
    id: int = Field(description="Unique in the whole log; grows with arrival.")
    at: datetime = Field(
        description="When the Access-Request was answered (UTC); for a row with count > 1, "
        "the first of them."
    )
    result: Literal["accept", "reject"]
    reason: str = Field(
        description="Why it was rejected (wrong password, unknown user, contract suspended, MAC "
        "mismatch, simultaneous-use limit, …), or what was accepted."
    )
    method: str | None = Field(
        description="pap, chap, mschapv2 or mac; null when the request never got that far."
    )
    nas_id: int | None = Field(description="The NAS that asked; null once it is deleted.")
    contract_id: int | None = Field(
        description="The contract the User-Name (or MAC) matched; null when none did."
    )
    username: str | None = Field(
        description="User-Name exactly as the NAS sent it; null on a row that folds the "
        "unknown usernames past the per-minute cap (see count)."
    )
    calling_station_id: str | None = Field(
        description="Calling-Station-Id: usually the subscriber's MAC address."
    )
    count: int = Field(
        description="How many requests this row stands for: 1 for a matched contract. Requests "
        "matching no contract fold into one row per User-Name, NAS, result and reason per UTC "
        "minute, and past `auth_log.unknown_rows_per_minute` rows in a minute into one row "
        "per NAS, result and reason with username null."
    )


class AuthLogQuery(Input):
    result: Literal["accept", "reject"] | None = Field(
        default=None, description="Only accepted, or only rejected, requests."
    )
    limit: int = Field(default=50, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=MAX_INT32, description="Items to skip.")


class AuthLogFilters(AuthLogQuery):
    reason: Text253 | None = Field(
        default=None, description="Reason contains this text (case-insensitive)."
    )
    username: Text253 | None = Field(
        default=None, description="User-Name exactly as the NAS sent it (case-sensitive)."
    )
    nas_id: Id | None = Field(default=None, description="Requests from this NAS.")
    contract_id: Id | None = Field(default=None, description="Requests matched to this contract.")
    since: datetime | None = Field(
        default=None,
        description="ISO 8601 date-time (UTC when no offset is given): answered at or after it.",
    )
    until: datetime | None = Field(
        default=None,
        description="ISO 8601 date-time (UTC when no offset is given): answered before it.",
    )


def _body(page: AuthLogPage) -> dict[str, Any]:
    return {
        "items": [AuthLogEntryPublic.model_validate(row) for row in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


@router.get(
    "/{item_id}/auth-log",
    response_model=Page[AuthLogEntryPublic],
    summary="A contract's authentication history",
)
async def auth_log(
    services: ServicesDep,
    _caller: CallerDep,
    item_id: RowId,
    query: Annotated[AuthLogQuery, Query()],
) -> Any:
    """Every Access-Request answered for this contract, newest first, with the reason.

    For support staff asking "why can't this customer connect": it shows whether requests
    arrive at all, from which NAS and device, and why they were rejected. Requests whose
    User-Name matched no contract are in `GET /auth-log`.

    Entries are written within about a second of the answer and kept for
    `auth_log.retention_days` (30 by default) in one table per UTC day, dropped whole.
    """
    page = await services.auth_log.page_for_contract(
        item_id, result=query.result, limit=query.limit, offset=query.offset
    )
    return _body(page)


@everyone.get("", response_model=Page[AuthLogEntryPublic], summary="The system-wide auth log")
async def system_auth_log(
    services: ServicesDep,
    _caller: CallerDep,
    query: Annotated[AuthLogFilters, Query()],
) -> Any:
    """Every Access-Request outcome, newest first, including User-Names that match no contract.

    The first stop for "why can't this customer log in": a typo in the router's PPPoE config
    shows as `unknown user` with the name as sent. Filters combine (all must match). Requests
    matching no contract are bounded so that a brute-force run or a misconfigured NAS cannot
    flood the database: they fold into one row per User-Name, NAS, result and reason per UTC
    minute with a `count`, and at most `auth_log.unknown_rows_per_minute` such rows are made in
    a minute (per daemon node); the rest of that minute fold into one row per NAS, result and
    reason with username null. Any role may read it.

    Entries are written within about a second of the answer and kept for
    `auth_log.retention_days` (30 by default) in one table per UTC day, dropped whole.
    """
    where = AuthLogFilter(
        result=query.result,
        reason=query.reason,
        username=query.username,
        nas_id=query.nas_id,
        contract_id=query.contract_id,
        since=query.since,
        until=query.until,
    )
    page = await services.auth_log.page(where, limit=query.limit, offset=query.offset)
    return _body(page)
