"""The audit log: who changed what, when and through which system."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from radius_contracts.api.deps import CallerDep, ServicesDep
from radius_contracts.api.schemas.common import Id, ListQuery, Name, Output, Page

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditPublic(Output):
    id: int
    at: datetime
    actor: str | None
    via: str | None
    action: str
    entity: str
    entity_id: int | None
    changes: dict[str, Any] = Field(description="Fields as sent; secrets show as ***.")


class AuditFilters(ListQuery):
    entity: Name | None = Field(default=None, description="e.g. contracts, nas, layouts")
    entity_id: Id | None = None
    actor: Name | None = None
    via: Name | None = None
    action: Name | None = None


@router.get("", response_model=Page[AuditPublic])
async def list_audit(
    services: ServicesDep,
    _caller: CallerDep,
    query: Annotated[AuditFilters, Query()],
) -> Any:
    """Newest first unless ``sort`` says otherwise."""
    values = query.model_dump(exclude_none=True)
    sort, limit, offset = values.pop("sort", "-id"), values.pop("limit"), values.pop("offset")
    return await services.audit.page(values, sort=sort, limit=limit, offset=offset)
