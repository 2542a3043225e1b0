"""Request-scoped dependencies: services, the authenticated caller, the actor of a write."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from radius_contracts.api.guard import CALLER_STATE
from radius_contracts.api.request_log import note_token_name
from radius_contracts.domain import TokenRole
from radius_contracts.services.base import Actor
from radius_contracts.services.registry import Services
from radius_contracts.services.tokens import Caller

_bearer = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer rc_…`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API token.")


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain def dependency in a worker thread, a hop per request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_caller(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Caller:
    # api.guard checked the token before the body was read and left the caller here; without
    # the guard (or when the database did not answer it) the token is checked now.
    caller: Caller | None = request.scope.get("state", {}).get(CALLER_STATE)
    if caller is None:
        token = bearer.credentials if bearer else api_key
        caller = await services.tokens.authenticate(token) if token else None
    if caller is None:
        raise HTTPException(
            401,
            "a valid API token is required (Authorization: Bearer … or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    note_token_name(caller.name)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_actor(
    caller: CallerDep,
    client_system: Annotated[
        str | None,
        Header(
            alias="X-Client-System",
            max_length=100,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="The system making the change (e.g. billing); recorded in *_via.",
        ),
    ] = None,
) -> Actor:
    if caller.role is not TokenRole.ADMIN:
        raise HTTPException(403, f"token {caller.name!r} is read-only")
    return Actor(name=caller.name, via=client_system or "api")


ActorDep = Annotated[Actor, Depends(get_actor)]
