"""Liveness, readiness and metrics: no token needed, no secrets revealed."""

import asyncio
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


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Counters in the Prometheus text format: RADIUS packets by outcome, drops by reason,
    the authorization index and the auth log writer."""
    render = getattr(request.app.state, "metrics", None)
    text = render() if render is not None else ""
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
