"""The API's front door: refuse what costs memory or time before any of it is spent.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which would buffer the body before
this code runs). In this order, for every HTTP request:

1. More than ``max_requests`` being handled → 503 with Retry-After, nothing read.
2. ``/api/…`` without a valid token → 401 from the headers alone; the body is never read.
3. ``Content-Length`` over the limit → 413 before reading; a chunked body is counted as it
   arrives and refused (413) the moment it passes the limit.
4. The body must arrive within ``body_timeout`` → else 408.

The body (at most the limit) is then handed to the application, which would read all of it
anyway to parse the JSON. Refusals carry ``Connection: close`` so the server does not read
the rest of a body nobody wants. Everything outside ``/api/`` (/healthz, /readyz, /metrics,
/docs, /openapi.json) needs no token, as before; the limits apply to it all the same.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from radius_contracts.api.refusals import Refusals, client_of
from radius_contracts.services.tokens import Caller

PROTECTED_PREFIX = "/api/"
BULK_PREFIX = "/api/v1/contracts/bulk/"  # POST /contracts/bulk/{action}: up to 10,000 ids
# PUT /contracts/by-external/{app}: the bulk upsert, up to 1,000 contracts (~0.6 KB each); the
# single upsert has one more path segment and keeps the ordinary limit.
BULK_UPSERT = re.compile(r"/api/v1/contracts/by-external/[^/]+/?")
CALLER_STATE = "caller"  # where the authenticated caller is left for api.deps (scope state)
RETRY_AFTER = "1"  # seconds a client refused as busy is told to wait

_AUTHORIZATION = b"authorization"
_API_KEY = b"x-api-key"
_CONTENT_LENGTH = b"content-length"


@dataclass(frozen=True, slots=True)
class ApiLimits:
    max_body_bytes: int = 1_048_576
    max_bulk_body_bytes: int = 8_388_608
    max_requests: int = 32
    body_timeout: float = 30.0


def token_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API token from ``Authorization: Bearer …`` or ``X-API-Key``, as api.deps reads it."""
    api_key = None
    for key, value in headers:
        if key == _AUTHORIZATION:
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif key == _API_KEY and api_key is None:
            api_key = value.decode("latin-1") or None
    return api_key


class ApiGuard:
    """ASGI middleware: concurrency bound, token on headers, body size and time bounds."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str], Awaitable[Caller | None]],
        limits: ApiLimits,
        refusals: Refusals,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.limits = limits
        self.refusals = refusals
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limits.max_requests:
            detail = f"more than {self.limits.max_requests} requests at once; retry shortly"
            retry = [(b"retry-after", RETRY_AFTER.encode())]
            await self._refuse(scope, send, 503, "busy", detail, retry)
            return
        self.in_flight += 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith(PROTECTED_PREFIX) and not await self._authenticated(scope, send):
            return
        limit = (
            self.limits.max_bulk_body_bytes
            if path.startswith(BULK_PREFIX) or BULK_UPSERT.fullmatch(path)
            else self.limits.max_body_bytes
        )
        declared = _content_length(scope["headers"])
        if declared is not None and declared > limit:
            detail = f"the body is {declared} bytes; at most {limit} are accepted here"
            await self._refuse(scope, send, 413, "body_too_large", detail)
            return
        body = await self._read_body(scope, receive, send, limit)
        if body is None:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _authenticated(self, scope: Scope, send: Send) -> bool:
        """Whether the request may go on; refuses it (401) when not."""
        token = token_of(scope["headers"])
        try:
            caller = await self.authenticate(token) if token else None
        except Exception:
            # The database did not answer: let the application say so (503 problem); the
            # token is checked again there.
            return True
        if caller is None:
            detail = "a valid API token is required (Authorization: Bearer … or X-API-Key)"
            headers = [(b"www-authenticate", b"Bearer")]
            await self._refuse(scope, send, 401, "unauthenticated", detail, headers)
            return False
        scope.setdefault("state", {})[CALLER_STATE] = caller
        return True

    async def _read_body(
        self, scope: Scope, receive: Receive, send: Send, limit: int
    ) -> list[Message] | None:
        """The request's body messages, or None when it was refused or the client left."""
        messages: list[Message] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None  # http.disconnect: nobody to answer
                    size += len(message.get("body", b""))
                    if size > limit:
                        detail = f"the body passed {limit} bytes, the most accepted here"
                        await self._refuse(scope, send, 413, "body_too_large", detail)
                        return None
                    messages.append(message)
                    if not message.get("more_body", False):
                        return messages
        except TimeoutError:
            detail = f"the body did not arrive within {self.limits.body_timeout:g} s"
            await self._refuse(scope, send, 408, "body_timeout", detail)
            return None

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        reason: str,
        detail: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.refusals.refuse(reason, client_of(scope.get("client")), f"{status} {detail}")
        body = json.dumps(
            {"type": "about:blank", "title": _TITLES[status], "status": status, "detail": detail}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body (if any) is not wanted: close rather than read it.
                    (b"connection", b"close"),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_TITLES = {
    401: "Unauthorized",
    408: "Request timeout",
    413: "Content too large",
    503: "Service unavailable",
}


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == _CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses it before we get here
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the body read already, then whatever comes next (disconnect)."""
    pending = list(messages)

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
