"""Contracts: CRUD, status machine, connection config, billing-system upsert and lookups."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from radius_contracts.api.crud import RowId, crud_routes
from radius_contracts.api.deps import ActorDep, CallerDep, ServicesDep
from radius_contracts.api.schemas import contracts as s
from radius_contracts.domain import TRANSITIONS
from radius_contracts.services.contracts_bulk import BULK_UPSERT_LIMIT

router = APIRouter(prefix="/contracts", tags=["contracts"])

AppPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="e.g. billing")]
ExternalIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
NumberPath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


@router.get("/by-external/{app}/{external_id}", response_model=s.ContractPublic)
async def get_by_external(
    services: ServicesDep, _caller: CallerDep, app: AppPath, external_id: ExternalIdPath
) -> Any:
    """The contract another system knows by ``external_id``."""
    return s.ContractPublic.of(await services.contracts.get_by_external(app, external_id))


@router.put(
    "/by-external/{app}/{external_id}",
    response_model=s.ContractPublic,
    responses={201: {"model": s.ContractPublic, "description": "Created"}},
)
async def upsert_by_external(
    services: ServicesDep,
    actor: ActorDep,
    app: AppPath,
    external_id: ExternalIdPath,
    body: s.ContractUpsert,
    response: Response,
) -> Any:
    """Create or update (idempotent). Creating needs ``number`` and ``config.username`` and
    gives what the body leaves out the same defaults as ``POST /contracts``; on update, fields
    left out keep their value."""
    row, created = await services.contracts.upsert_external(actor, app, external_id, body.changes())
    response.status_code = 201 if created else 200
    return s.ContractPublic.of(row)


@router.put(
    "/by-external/{app}",
    response_model=s.BulkUpsertPublic,
    summary="Create or update many contracts by their ids in another system (bulk)",
)
async def bulk_upsert_by_external(
    services: ServicesDep,
    actor: ActorDep,
    app: AppPath,
    body: Annotated[
        list[s.ContractUpsertItem],
        Body(min_length=1, max_length=BULK_UPSERT_LIMIT),
    ],
) -> Any:
    """Up to 1,000 items per request, each the body of
    `PUT /contracts/by-external/{app}/{external_id}` plus its `external_id`, with the same
    defaults, checks and audit entries; all written in one transaction.

    An item that the single call would refuse (409, 422, 404) is reported in `results` with
    its `index`, `status`, `detail` and `field`, and left out; the others are applied (the
    answer is 200 either way). A malformed item (a wrong type, an unknown field) rejects the
    whole request with 422 naming the item's index. The index used for RADIUS, other nodes
    and the CoA of online sessions follow once per request, after the commit. An
    `external_id` listed twice is applied twice, in order, as two single calls would be.
    """
    items = [(item.external_id, item.changes()) for item in body]
    outcomes = await services.contracts.bulk_upsert_external(actor, app, items)
    return s.BulkUpsertPublic(
        created=sum(o.status == 201 for o in outcomes),
        updated=sum(o.status == 200 for o in outcomes),
        refused=sum(o.status >= 400 for o in outcomes),
        results=[s.BulkUpsertOutcome.model_validate(o, from_attributes=True) for o in outcomes],
    )


@router.get("/by-number/{number}", response_model=s.ContractPublic)
async def get_by_number(services: ServicesDep, _caller: CallerDep, number: NumberPath) -> Any:
    """The contract with this contract number."""
    return s.ContractPublic.of(await services.contracts.get_by(number=number))


crud_routes(
    router,
    service=lambda services: services.contracts,
    create=s.ContractCreate,
    update=s.ContractUpdate,
    public=s.ContractPublic,
    filters=s.ContractFilters,
    label="contract",
    to_public=s.ContractPublic.of,
    activatable=False,
)


@router.get("/{item_id}/transitions", response_model=s.TransitionsPublic)
async def transitions(services: ServicesDep, _caller: CallerDep, item_id: RowId) -> Any:
    """Status changes allowed from the contract's current status."""
    return s.TransitionsPublic.of(await services.contracts.get(item_id))


@router.get("/{item_id}/preview", response_model=s.PreviewPublic)
async def preview(
    services: ServicesDep,
    _caller: CallerDep,
    item_id: RowId,
    nas_id: Annotated[int, Query(ge=1, description="The NAS asking (must be active).")],
) -> Any:
    """Exactly the decision and reply attributes this NAS would get for the contract now.

    Computed by the running RADIUS handler from its in-memory index, without sending anything;
    the password and MAC binding are assumed to match.
    """
    return s.PreviewPublic.of(services.contracts.preview(item_id, nas_id), nas_id)


@router.put("/{item_id}/connection", response_model=s.ContractPublic)
async def replace_connection(
    services: ServicesDep, actor: ActorDep, item_id: RowId, body: s.ConnectionConfig
) -> Any:
    """Replace the whole connection config: fields left out get what a new contract would
    have (the password none, simultaneous_use 1)."""
    config = body.service_values()
    return s.ContractPublic.of(await services.contracts.replace_connection(actor, item_id, config))


def _transition_route(action: str) -> None:
    async def change_status(services: ServicesDep, actor: ActorDep, item_id: RowId) -> Any:
        return s.ContractPublic.of(await services.contracts.transition(actor, item_id, action))

    sources, target = TRANSITIONS[action]
    router.add_api_route(
        f"/{{item_id}}/{action}",
        change_status,
        methods=["POST"],
        response_model=s.ContractPublic,
        summary=f"{action.capitalize()} a contract",
        description=f"Allowed from {', '.join(sorted(sources))}; the contract becomes {target}. "
        "409 from any other status. Online sessions follow after the commit: a CoA-Request "
        "with the new reply attributes where the NAS's manufacturer can change them live, "
        "else a Disconnect-Request (see each session's coa-log).",
    )


def _bulk_route(action: str) -> None:
    async def change_many(services: ServicesDep, actor: ActorDep, body: s.BulkIds) -> Any:
        changed, refused = await services.contracts.bulk_transition(actor, body.ids, action)
        return s.BulkResultPublic(
            changed=changed,
            refused=[
                s.BulkRefusal(id=contract_id, detail=detail) for contract_id, detail in refused
            ],
        )

    sources, target = TRANSITIONS[action]
    router.add_api_route(
        f"/bulk/{action}",
        change_many,
        methods=["POST"],
        response_model=s.BulkResultPublic,
        summary=f"{action.capitalize()} many contracts",
        description=f"One transaction for up to {s.BULK_LIMIT:,} contracts: those in "
        f"{', '.join(sorted(sources))} become {target}; the others are listed in `refused` "
        "and left alone. Online sessions follow each change as for the single action.",
    )


# Bulk routes first: /bulk/suspend would otherwise match /{item_id}/suspend (and fail as 422).
for _action in TRANSITIONS:
    _bulk_route(_action)
    _transition_route(_action)
