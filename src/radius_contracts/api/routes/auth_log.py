"""A contract's auth log: every Access-Request outcome, for "why can't this customer connect"."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from radius_contracts.api.crud import RowId, page_of
from radius_contracts.api.deps import CallerDep, ServicesDep
from radius_contracts.api.schemas.common import MAX_INT32, Input, Output, Page

router = APIRouter(prefix="/contracts", tags=["contracts"])


class AuthLogEntryPublic(Output):
    id: int
    at: datetime = Field(description="When the Access-Request was answered (UTC).")
    result: Literal["accept", "reject"]
    reason: str = Field(
        description="Why it was rejected (wrong password, contract suspended, MAC mismatch, "
        "simultaneous-use limit, …), or what was accepted."
    )
    method: str | None = Field(
        description="pap, chap, mschapv2 or mac; null when the request never got that far."
    )
    nas_id: int | None = Field(description="The NAS that asked; null once it is deleted.")
    username: str | None = Field(description="User-Name exactly as the NAS sent it.")
    calling_station_id: str | None = Field(
        description="Calling-Station-Id: usually the subscriber's MAC address."
    )


class AuthLogQuery(Input):
    result: Literal["accept", "reject"] | None = Field(
        default=None, description="Only accepted, or only rejected, requests."
    )
    limit: int = Field(default=50, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=MAX_INT32, description="Items to skip.")


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
    arrive at all, from which NAS and device, and why they were rejected. Entries are kept for
    `auth_log.retention_days` (30 by default) and written within about a second of the answer.
    Requests whose User-Name matched no contract are not listed here.
    """
    page = await services.auth_log.page_for_contract(
        item_id, result=query.result, limit=query.limit, offset=query.offset
    )
    return page_of(page, AuthLogEntryPublic.model_validate)
