# The endpoints below are annotated with schema classes passed in at run time, which FastAPI
# reads but mypy cannot follow; those two checks are off for this file only.
# mypy: disable-error-code="valid-type,attr-defined"
"""Standard routes for one resource: list, create, get, patch, delete, activate, deactivate.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations, and they
refer to the schema classes passed into the factory.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from radius_contracts.api.deps import ActorDep, CallerDep, ServicesDep
from radius_contracts.api.schemas.common import MAX_INT32, Page, Patch
from radius_contracts.services.base import CrudService
from radius_contracts.services.registry import Services
from radius_contracts.store.common import Page as StorePage

RowId = Annotated[int, Path(ge=1, le=MAX_INT32, description="The object's id.")]


def page_of(page: StorePage[Any], present: Callable[[Any], Any]) -> dict[str, Any]:
    """A store page as the API's ``{items, total, limit, offset}`` body."""
    return {
        "items": [present(row) for row in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


def list_route(
    router: APIRouter,
    *,
    service: Callable[[Services], CrudService[Any]],
    public: type[BaseModel],
    filters: type[BaseModel],
    label: str,
    to_public: Callable[[Any], Any] | None = None,
    default_sort: str | None = None,
) -> None:
    """Add ``GET ""``: one page of the collection, filtered and sorted by ``filters``."""
    present: Callable[[Any], Any] = to_public or public.model_validate

    async def list_items(
        services: ServicesDep,
        _caller: CallerDep,
        query: Annotated[filters, Query()],
    ) -> Any:
        values = query.model_dump(exclude_none=True)
        order = values.pop("sort", default_sort)
        limit, offset = values.pop("limit"), values.pop("offset")
        result = await service(services).page(values, sort=order, limit=limit, offset=offset)
        return page_of(result, present)

    router.add_api_route(
        "", list_items, methods=["GET"], response_model=Page[public], summary=f"List {label}s"
    )


def crud_routes(
    router: APIRouter,
    *,
    service: Callable[[Services], CrudService[Any]],
    create: type[BaseModel],
    update: type[Patch],
    public: type[BaseModel],
    filters: type[BaseModel],
    label: str,
    to_public: Callable[[Any], Any] | None = None,
    activatable: bool = True,
) -> None:
    """Add the standard routes for a resource to ``router`` (mounted at its collection path)."""
    present: Callable[[Any], Any] = to_public or public.model_validate

    async def create_item(services: ServicesDep, actor: ActorDep, body: create) -> Any:
        return present(await service(services).create(actor, body.service_values()))

    async def get_item(services: ServicesDep, _caller: CallerDep, item_id: RowId) -> Any:
        return present(await service(services).get(item_id))

    async def update_item(
        services: ServicesDep,
        actor: ActorDep,
        item_id: RowId,
        body: update,
    ) -> Any:
        return present(await service(services).update(actor, item_id, body.changes()))

    async def delete_item(services: ServicesDep, actor: ActorDep, item_id: RowId) -> Response:
        await service(services).delete(actor, item_id)
        return Response(status_code=204)

    async def activate(services: ServicesDep, actor: ActorDep, item_id: RowId) -> Any:
        return present(await service(services).set_active(actor, item_id, True))

    async def deactivate(services: ServicesDep, actor: ActorDep, item_id: RowId) -> Any:
        return present(await service(services).set_active(actor, item_id, False))

    list_route(router, service=service, public=public, filters=filters, label=label,
               to_public=present)  # fmt: skip
    router.add_api_route(
        "", create_item, methods=["POST"], response_model=public, status_code=201,
        summary=f"Create a {label}",
    )  # fmt: skip
    router.add_api_route(
        "/{item_id}", get_item, methods=["GET"], response_model=public, summary=f"Get a {label}"
    )
    router.add_api_route(
        "/{item_id}", update_item, methods=["PATCH"], response_model=public,
        summary=f"Change some fields of a {label}",
    )  # fmt: skip
    router.add_api_route(
        "/{item_id}", delete_item, methods=["DELETE"], status_code=204,
        response_class=Response, summary=f"Delete a {label} (409 while something uses it)",
    )  # fmt: skip
    if activatable:
        router.add_api_route(
            "/{item_id}/activate", activate, methods=["POST"], response_model=public,
            summary=f"Activate a {label}",
        )  # fmt: skip
        router.add_api_route(
            "/{item_id}/deactivate", deactivate, methods=["POST"], response_model=public,
            summary=f"Deactivate a {label}",
        )  # fmt: skip
