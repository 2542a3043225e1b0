"""Manufacturers, POPs, NAS and pools: standard resources."""

from typing import Any

from fastapi import APIRouter

from radius_contracts.api.crud import RowId, crud_routes
from radius_contracts.api.deps import CallerDep, ServicesDep
from radius_contracts.api.schemas import catalogue as s

manufacturers = APIRouter(prefix="/manufacturers", tags=["manufacturers"])
crud_routes(
    manufacturers,
    service=lambda services: services.manufacturers,
    create=s.ManufacturerCreate,
    update=s.ManufacturerUpdate,
    public=s.ManufacturerPublic,
    filters=s.ManufacturerFilters,
    label="manufacturer",
)

pops = APIRouter(prefix="/pops", tags=["pops"])
crud_routes(
    pops,
    service=lambda services: services.pops,
    create=s.PopCreate,
    update=s.PopUpdate,
    public=s.PopPublic,
    filters=s.PopFilters,
    label="POP",
)

nas = APIRouter(prefix="/nas", tags=["nas"])
crud_routes(
    nas,
    service=lambda services: services.nas,
    create=s.NasCreate,
    update=s.NasUpdate,
    public=s.NasPublic,
    filters=s.NasFilters,
    label="NAS",
)

pools = APIRouter(prefix="/radius/pools", tags=["pools"])
crud_routes(
    pools,
    service=lambda services: services.pools,
    create=s.PoolCreate,
    update=s.PoolUpdate,
    public=s.PoolPublic,
    filters=s.PoolFilters,
    label="pool",
)


@pools.get(
    "/{item_id}/usage",
    response_model=s.PoolUsagePublic,
    summary="Show how much of a pool is leased",
)
async def pool_usage(services: ServicesDep, _caller: CallerDep, item_id: RowId) -> Any:
    """Size, leases held now (offered and bound) and free addresses or prefixes of the pool.

    Any token may read it. Leasing applies to ``managed`` pools only: a ``nas`` pool reports
    ``held`` 0, since the NAS hands out its addresses itself.
    """
    return s.PoolUsagePublic.model_validate(await services.pools.usage(item_id))
