"""Service plans (CRUD, lookups by a billing system's id) and contracts' data quotas."""

from typing import Any

from fastapi import APIRouter, Response

from radius_contracts.api.crud import RowId, crud_routes
from radius_contracts.api.deps import ActorDep, CallerDep, ServicesDep
from radius_contracts.api.routes.contracts import AppPath, ExternalIdPath
from radius_contracts.api.schemas import plans as s

router = APIRouter(prefix="/plans", tags=["plans"])


@router.get("/by-external/{app}/{external_id}", response_model=s.PlanPublic)
async def get_by_external(
    services: ServicesDep, _caller: CallerDep, app: AppPath, external_id: ExternalIdPath
) -> Any:
    """The plan a billing system knows by ``external_id``."""
    return s.PlanPublic.of(await services.plans.get_by_external(app, external_id))


@router.put(
    "/by-external/{app}/{external_id}",
    response_model=s.PlanPublic,
    responses={201: {"model": s.PlanPublic, "description": "Created"}},
)
async def upsert_by_external(
    services: ServicesDep,
    actor: ActorDep,
    app: AppPath,
    external_id: ExternalIdPath,
    body: s.PlanUpdate,
    response: Response,
) -> Any:
    """Create or update (idempotent). Creating needs ``name``; on update, fields left out keep
    their value. Contracts' online sessions follow a change as for ``PATCH``."""
    row, created = await services.plans.upsert_external(actor, app, external_id, body.changes())
    response.status_code = 201 if created else 200
    return s.PlanPublic.of(row)


crud_routes(
    router,
    service=lambda services: services.plans,
    create=s.PlanCreate,
    update=s.PlanUpdate,
    public=s.PlanPublic,
    filters=s.PlanFilters,
    label="plan",
    to_public=s.PlanPublic.of,
)

quota = APIRouter(prefix="/contracts", tags=["contracts"])


@quota.get("/{item_id}/quota", response_model=s.QuotaStatusPublic)
async def quota_status(services: ServicesDep, _caller: CallerDep, item_id: RowId) -> Any:
    """This period's data quota: cap, top-ups, bytes used, the period, the state and when it
    last changed. ``state`` is ``none`` when the contract's plan has no quota."""
    return s.QuotaStatusPublic.model_validate(await services.quotas.status(item_id))


@quota.post("/{item_id}/quota", response_model=s.QuotaStatusPublic)
async def top_up(services: ServicesDep, actor: ActorDep, item_id: RowId, body: s.TopUp) -> Any:
    """Add bytes to this period's allowance (``add_bytes``) or count it from zero again
    (``reset``). When that brings the contract back under its cap, its online sessions get
    full speed back by CoA at once, without a new login. Audited. 409 without a quota."""
    status = await services.quotas.top_up(
        actor, item_id, add_bytes=body.add_bytes or 0, reset=body.reset
    )
    return s.QuotaStatusPublic.model_validate(status)
