"""The management API inside the daemon: uvicorn serving the app behind its guards, as a task.

Outermost first: the request log (one line per request, refusals too), the guard (token
before body, body and request limits), then the FastAPI app. Connections are bounded by the
HTTP protocol class (api.connections). uvicorn's own signal handling is off: the daemon owns
SIGTERM/SIGINT/SIGHUP and tells the server when to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from radius_contracts.api.app import create_app
from radius_contracts.api.connections import ConnectionLimits, guarded_protocol
from radius_contracts.api.guard import ApiGuard, ApiLimits
from radius_contracts.api.refusals import Refusals
from radius_contracts.api.request_log import RequestLog
from radius_contracts.services.jobs import JobBoard
from radius_contracts.services.registry import Services
from radius_contracts.settings import ApiSettings

__all__ = ["EmbeddedServer", "start_api"]


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def start_api(
    services: Services,
    api: ApiSettings,
    refusals: Refusals,
    *,
    metrics: Callable[[], Awaitable[bytes]],
    jobs: JobBoard,
    readiness: Callable[[], dict[str, Any]],
) -> tuple[EmbeddedServer, asyncio.Task[None], int]:
    """Serve the API on ``api.host``/``api.port``: the server, its task and the bound port.

    Raises SystemExit naming the address when it cannot listen (uvicorn logs why).
    """
    app = create_app(services, metrics=metrics, jobs=jobs, readiness=readiness)
    guarded = ApiGuard(
        app,
        authenticate=services.tokens.authenticate,
        limits=ApiLimits(
            max_body_bytes=api.max_body_bytes,
            max_bulk_body_bytes=api.max_bulk_body_bytes,
            max_requests=api.max_requests,
            body_timeout=api.body_timeout,
        ),
        refusals=refusals,
    )
    protocol = guarded_protocol(
        ConnectionLimits(
            max_connections=api.max_connections,
            header_timeout=api.header_timeout,
            max_header_bytes=api.max_header_bytes,
        ),
        refusals,
    )
    config = uvicorn.Config(
        # RequestLog outermost: refusals get a request id and an access line too.
        RequestLog(guarded),
        host=api.host,
        port=api.port,
        http=protocol,
        # The protocol closes connections beyond max_connections itself; this is uvicorn's
        # own bound (503) on connections plus requests in flight, a backstop.
        limit_concurrency=api.max_connections + api.max_requests,
        timeout_keep_alive=api.keep_alive_timeout,  # type: ignore[arg-type]
        # Logging is ours (logging.configure); RequestLog writes the one line per request.
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(), name="api")
    while not server.started:
        if task.done():
            # uvicorn logs why (e.g. port in use) and exits without raising.
            await task
            raise SystemExit(f"management API could not listen on {api.host}:{api.port}")
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port
