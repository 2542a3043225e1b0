"""The audit log: who changed what, when and through which system."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from radius_contracts.api.crud import list_route
from radius_contracts.api.schemas.common import Id, ListQuery, Name, Output

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


list_route(
    router,
    service=lambda services: services.audit,
    public=AuditPublic,
    filters=AuditFilters,
    label="audit entrie",  # "List audit entries"
    default_sort="-id",
)
