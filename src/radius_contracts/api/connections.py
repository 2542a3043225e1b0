"""uvicorn's HTTP/1.1 protocol with the bounds it lacks: connections, header time and size.

The protocol is uvicorn's httptools one (llhttp, in C): parsing a request with uvicorn's h11
protocol (pure Python) took ~10 % of the daemon's CPU for a contract create, and creates went
from 3.91/3.84 to 3.61/3.66 ms of daemon CPU each with httptools (bench/api_load.py, paired).

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection
that never sends a request, or sends its headers a byte at a time, stays open for ever: a few
thousand of them used to take every file descriptor and lock staff out of the API. Here:

- beyond ``max_connections`` open connections a new one is closed at once;
- a request's line and headers must be complete within ``header_timeout`` of the connection
  opening (or of the previous response), else the connection is closed;
- they must fit in ``max_header_bytes``, else the connection is closed (the parser itself has
  no bound: the bytes are counted here as they arrive, a read at a time).

Bodies are the ASGI guard's business (api.guard): it sees them as they arrive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from radius_contracts.api.refusals import Refusals, client_of


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 4096
    header_timeout: float = 10.0
    max_header_bytes: int = 16_384


def guarded_protocol(limits: ConnectionLimits, refusals: Refusals) -> type[HttpToolsProtocol]:
    """A protocol class bound to these limits (uvicorn builds one per connection)."""

    class GuardedHttpProtocol(HttpToolsProtocol):
        _limits = limits
        _refusals = refusals

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._header_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > self._limits.max_connections:
                detail = f"more than {self._limits.max_connections} connections open"
                self._refusals.refuse("too_many_connections", client_of(self.client), detail)
                transport.close()
                return
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            reading_headers = self._header_timer is not None
            before = self.cycle
            super().data_received(data)
            if not reading_headers:
                return
            if self.cycle is not before:
                self._stop_header_timer()  # a request started: its headers are complete
                return
            # Still no complete headers (the bytes may end with the start of a body, so they
            # are counted only while the headers are incomplete).
            self._header_bytes += len(data)
            if self._header_bytes > self._limits.max_header_bytes:
                detail = f"headers over {self._limits.max_header_bytes} bytes"
                self._close("headers_too_large", detail)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()  # the next request's headers get the same bound

        def _await_headers(self) -> None:
            self._stop_header_timer()
            self._header_bytes = 0
            self._header_timer = self.loop.call_later(
                self._limits.header_timeout, self._headers_late
            )

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being handled (pipelined); its own bounds apply
            detail = f"no complete request headers within {self._limits.header_timeout:g} s"
            self._close("header_timeout", detail)

        def _close(self, reason: str, detail: str) -> None:
            self._stop_header_timer()
            if not self.transport.is_closing():
                self._refusals.refuse(reason, client_of(self.client), detail)
                self.transport.close()

    return GuardedHttpProtocol
