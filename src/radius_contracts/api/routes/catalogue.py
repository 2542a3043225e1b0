"""Manufacturers, POPs, NAS and pools: standard resources."""

from fastapi import APIRouter

from radius_contracts.api.crud import crud_routes
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
