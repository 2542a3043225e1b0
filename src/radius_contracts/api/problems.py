"""Every error leaves the API as RFC 9457 application/problem+json naming the field."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from radius_contracts.db.errors import UNAVAILABLE, is_unavailable
from radius_contracts.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RadiusContractsError,
    StorageUnavailable,
)

log = logging.getLogger("radius_contracts.api")

PROBLEM_JSON = "application/problem+json"
_STATUS = ((NotFound, 404), (Conflict, 409), (InvalidInput, 422), (StorageUnavailable, 503))
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Invalid request",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str | None,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    """('body', 'config', 'username') → 'config.username'; list indexes as [n]."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or (str(loc[0]) if loc else "body")


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Field and reason only, never the value sent (pydantic's "input"): it may be a password
    # or a NAS secret, and a response ends up in clients' and proxies' logs. The schemas'
    # own messages keep to that too.
    errors = []
    for error in exc.errors():
        # pydantic puts the validator's message after "Value error, "; the rest is noise here.
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        errors.append({"field": _location(tuple(error.get("loc", ()))), "message": message})
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return problem(
        422, f"{first['field']}: {first['message']}", field=first["field"], errors=errors
    )


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RadiusContractsError)
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            if status == 503:
                log.warning("storage unavailable: %s", exc.__cause__ or exc)
                return problem(status, exc.detail, headers={"Retry-After": "5"})
            return problem(status, exc.detail, field=exc.field)
    log.error("unmapped error %s: %s", type(exc).__name__, exc.detail)
    return problem(500, "internal error")


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    if not is_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning(
        "%s %s: the database is unreachable (%s)", request.method, request.url.path,
        type(exc).__name__,
    )  # fmt: skip
    return problem(503, "the database is unreachable", headers={"Retry-After": "5"})


def _validation_errors(exc: Exception) -> list[Any] | None:
    """The errors of a failed pydantic validation without the values that failed.

    Their text quotes the input (a contract with its password, say), so it must not reach
    the log as it is.
    """
    if isinstance(exc, ValidationError):
        return list(exc.errors(include_url=False, include_input=False, include_context=False))
    if isinstance(exc, ResponseValidationError):
        return [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in exc.errors()]
    return None


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    errors = _validation_errors(exc)
    if errors is None:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
    else:
        # Where it happened (the frames) and what failed, but not with what values.
        log.error(
            "unhandled error on %s %s: %s %s",
            request.method, request.url.path, type(exc).__name__, errors,
            extra={"exc": "".join(traceback.format_tb(exc.__traceback__))},
        )  # fmt: skip
    return problem(500, "internal error; see the daemon log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(RadiusContractsError, _domain)
    app.add_exception_handler(HTTPException, _http)
    # A database outage answers 503 (with Retry-After), not 500: the caller should retry.
    for kind in (*UNAVAILABLE, DBAPIError):
        app.add_exception_handler(kind, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
