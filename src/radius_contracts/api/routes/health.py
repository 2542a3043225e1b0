"""Liveness, readiness and metrics: no token needed, no secrets revealed."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import text

from radius_contracts.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


READY_TIMEOUT = 3.0  # a probe must answer quickly, even when the database hangs


@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: `reason` says why (e.g. the database is "
                     "unreachable), with the state of authentication and accounting."}},
)  # fmt: skip
async def readyz(request: Request, services: ServicesDep) -> Any:
    """Ready when the database answers. Either way the body tells what RADIUS is doing: while
    the database is away, contracts in the index still authenticate and accounting goes to the
    local spool (`accounting.spooled` records waiting to be replayed)."""
    state = getattr(request.app.state, "readiness", None)
    details: dict[str, Any] = state() if state is not None else {}
    try:
        async with asyncio.timeout(READY_TIMEOUT), services.context.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason is the answer
        reason = f"database unreachable: {_describe(exc)}"
        body = {"status": "unavailable", "reason": reason, **details}
        return JSONResponse(body, status_code=503)
    return {"status": "ready", **details}


def _describe(exc: BaseException) -> str:
    """The error's kind and first line, short: enough to tell refused from timed out."""
    cause = exc.__cause__ or exc
    if isinstance(exc, TimeoutError):
        return f"no answer within {READY_TIMEOUT:g} s"
    first = str(cause).strip().splitlines()[0][:160] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}}},
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
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
