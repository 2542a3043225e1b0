"""Liveness, readiness and metrics: no token needed, no secrets revealed."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    """The daemon's metrics for Prometheus: RADIUS requests by port, code and result, drops
    by reason, Access-Rejects by reason, auth and accounting latency histograms, accounting
    batch sizes, CoA outcomes, pool size and use (read from the database at most every few
    seconds), and the authorization index's size and age. The series are listed in the
    README (Metrics)."""
    render = getattr(request.app.state, "metrics", None)
    body = await render() if render is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
