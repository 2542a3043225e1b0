"""One access line per HTTP request, and a request id on every line logged while handling it.

The caller's ``X-Request-ID`` is used when it is a sane token, so a billing system can find its
own calls in our log; otherwise one is made. Either way it is echoed in the response. The
access line names the API token by its name, never the token, and the path without its
query string (query strings are the caller's to log).

This wraps the whole FastAPI application (uvicorn's own access log is off), so even the 500
that Starlette's outermost error middleware sends gets its header and its line.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from radius_contracts import log_context

log = logging.getLogger("radius_contracts.api.access")

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
# Long enough for a UUID or a trace id, short and plain enough to be safe in any log.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def sane_request_id(value: str | None) -> str | None:
    """``value`` when it may be used as a request id as it is, else None."""
    if value is None or _SANE_ID.fullmatch(value) is None:
        return None
    return value


class HttpRequestContext:
    """Log fields of one HTTP request; the token name is added once the caller is known."""

    __slots__ = ("fields",)

    def __init__(self, request_id: str) -> None:
        self.fields: dict[str, object] = {"request_id": request_id}

    def log_fields(self) -> dict[str, object]:
        return self.fields


def note_token_name(name: str) -> None:
    """Record which API token (by name) the current HTTP request was made with."""
    context = log_context.current.get()
    if isinstance(context, HttpRequestContext):
        context.fields["token_name"] = name


class RequestLog:
    """ASGI middleware: request id in, request id out, one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:
            if key == _HEADER_KEY:
                given = sane_request_id(value.decode("latin-1"))
                break
        request_id = given or log_context.new_request_id()
        context = HttpRequestContext(request_id)
        token = log_context.current.set(context)
        started = time.perf_counter()
        status: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _HEADER_KEY]
                headers.append((_HEADER_KEY, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not status:
                self._access(scope, 500, started, context)
                raise
            # Starlette re-raises after sending its 500; api.problems has logged the error
            # with this request's id already, so uvicorn need not log it a second time.
        finally:
            log_context.current.reset(token)
        if status:
            self._access(scope, status[0], started, context)

    @staticmethod
    def _access(scope: Scope, status: int, started: float, context: HttpRequestContext) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        extra: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": duration_ms,
            **context.fields,
        }
        log.info(
            "%s %s %d %.1f ms", scope["method"], scope["path"], status, duration_ms, extra=extra
        )
