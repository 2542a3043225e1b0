"""RADIUS attribute catalogue and layouts (with their ordered attribute rows)."""

from typing import Any

from fastapi import APIRouter

from radius_contracts.aaa.render import VARIABLES
from radius_contracts.api.crud import RowId, crud_routes
from radius_contracts.api.deps import ActorDep, CallerDep, ServicesDep
from radius_contracts.api.schemas import catalogue as s
from radius_contracts.db.models import Layout

attributes = APIRouter(prefix="/radius/attributes", tags=["radius attributes"])
crud_routes(
    attributes,
    service=lambda services: services.attributes,
    create=s.AttributeCreate,
    update=s.AttributeUpdate,
    public=s.AttributePublic,
    filters=s.AttributeFilters,
    label="RADIUS attribute",
)


def _row_name(attribute: str, tag: int | None) -> str:
    # A tagged row (RFC 2868) reads back as it was written: "Tunnel-Type:1".
    return attribute if tag is None else f"{attribute}:{tag}"


def layout_public(row: Layout) -> s.LayoutPublic:
    return s.LayoutPublic.model_validate(
        {
            **{k: getattr(row, k) for k in s.LayoutPublic.model_fields if k != "attributes"},
            "attributes": [
                {"attribute": _row_name(r.attribute.name, r.tag), "template": r.template}
                for r in row.rows
            ],
        }
    )


layouts = APIRouter(prefix="/radius/layouts", tags=["layouts"])


@layouts.get("/variables", response_model=list[s.VariablePublic])
async def layout_variables(_caller: CallerDep) -> Any:
    """Variables a template may use, with the sample value the lint renders.

    Templates write ``{name}`` for a variable, ``{name|fallback}`` for a variable with a
    literal fallback used when the contract has no value for it (e.g. ``{min_upload|0}``),
    and ``{{`` / ``}}`` for literal braces. A row whose variable without fallback has no value
    is left out of the reply.
    """
    return VARIABLES


crud_routes(
    layouts,
    service=lambda services: services.layouts,
    create=s.LayoutCreate,
    update=s.LayoutUpdate,
    public=s.LayoutPublic,
    filters=s.LayoutFilters,
    label="layout",
    to_public=layout_public,
)


@layouts.get("/{item_id}/attributes", response_model=list[s.LayoutRowPublic])
async def layout_rows(services: ServicesDep, _caller: CallerDep, item_id: RowId) -> Any:
    """The layout's rows, in the order they are sent."""
    return layout_public(await services.layouts.get(item_id)).attributes


@layouts.put("/{item_id}/attributes", response_model=list[s.LayoutRowPublic])
async def replace_layout_rows(
    services: ServicesDep, actor: ActorDep, item_id: RowId, body: list[s.LayoutRow]
) -> Any:
    """Replace every row at once (linted like a layout save)."""
    rows = [row.model_dump() for row in body]
    return layout_public(await services.layouts.replace_rows(actor, item_id, rows)).attributes
