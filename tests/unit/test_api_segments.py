"""api.app's BySegment: /api/v1/<segment>/… is answered by a small app holding that segment's
routers; every route is still there, and the answers are the full app's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from radius_contracts.api.app import API_PREFIX, BySegment, create_app
from radius_contracts.api.guard import CALLER_STATE
from radius_contracts.domain import TokenRole
from radius_contracts.errors import NotFound
from radius_contracts.services.jobs import JobStatus
from radius_contracts.services.tokens import Caller


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every operation the app serves (what /openapi.json lists)."""
    return {(path, method) for path, item in app.openapi()["paths"].items() for method in item}


def _small_apps(app: FastAPI) -> dict[str, Any]:
    [middleware] = [m for m in app.user_middleware if m.cls is BySegment]
    apps: dict[str, Any] = middleware.kwargs["apps"]
    return apps


def test_every_api_route_is_in_its_segment_s_app_and_only_there() -> None:
    app = create_app(services=None)  # type: ignore[arg-type]
    wanted = {(path, m) for path, m in _routes(app) if path.startswith(API_PREFIX + "/")}
    assert len(wanted) > 60  # the whole API, not a part of it
    served: set[tuple[str, str]] = set()
    for segment, small in _small_apps(app).items():
        routes = _routes(small)
        assert all(path.startswith(f"{API_PREFIX}/{segment}") for path, _ in routes), segment
        assert not routes & served  # no route in two segments
        served |= routes
    assert served == wanted
    for small in _small_apps(app).values():
        assert small.state is app.state  # the same services, metrics, jobs
        assert small.openapi_url is None  # the full app alone describes the API


class _Board:
    async def statuses(self) -> list[JobStatus]:
        return []

    async def status(self, name: str) -> JobStatus:
        if name != "stale-sessions":
            raise NotFound(f"there is no job {name!r}", field="name")
        return JobStatus(
            name=name,
            description="closes sessions the NAS stopped reporting",
            schedule="every 60 s",
            shared=True,
            next_run_at=datetime(2026, 12, 7, tzinfo=UTC),
            running=False,
            runs=0,
            last_started_at=None,
            last_finished_at=None,
            last_node=None,
            last_result=None,
            last_error=None,
        )


def _as_admin(app: ASGIApp) -> ASGIApp:
    """What the guard in front leaves in the scope once the token is checked."""

    async def called(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[CALLER_STATE] = Caller(name="t", role=TokenRole.ADMIN)
        await app(scope, receive, send)

    return called


async def test_answers_are_the_full_app_s() -> None:
    app = create_app(services=None, jobs=_Board())  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=_as_admin(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        # The small app reads the jobs the full app was given (one state).
        found = await client.get("/api/v1/jobs/stale-sessions")
        assert found.status_code == 200, found.text
        assert found.json()["name"] == "stale-sessions"
        # Its error handlers are the full app's: problem documents naming the field.
        missing = await client.get("/api/v1/jobs/nothing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["field"] == "name"
        invalid = await client.get("/api/v1/jobs/" + "x" * 65)
        assert invalid.status_code == 422
        assert invalid.json()["field"] == "name"
        # No route for the path within the segment, or not for the method.
        assert (await client.get("/api/v1/jobs/a/b")).status_code == 404
        assert (await client.delete("/api/v1/jobs")).status_code == 405
        # Outside any segment: the full app, as before.
        assert (await client.get("/api/v1/nothing-here")).status_code == 404
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert "/api/v1/jobs" in (await client.get("/openapi.json")).json()["paths"]
