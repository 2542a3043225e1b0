"""Liveness, readiness and metrics: no token needed, no secrets revealed."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from radius_contracts.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready; `reason` says why."}})
async def readyz(services: ServicesDep) -> Any:
    """Ready when the database answers."""
    try:
        async with services.context.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason is the answer
        reason = f"database unreachable: {type(exc).__name__}"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return {"status": "ready"}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Counters in the Prometheus text format: RADIUS packets by outcome, drops by reason,
    the authorization index and the auth log writer."""
    render = getattr(request.app.state, "metrics", None)
    text = render() if render is not None else ""
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
