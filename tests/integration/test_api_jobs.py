"""GET /api/v1/jobs on the running daemon, and two daemons on one PostgreSQL sharing their jobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import RunningDaemon, pg_cluster

SHARED = {
    "stale-sessions": "every 60 s",
    "purge-history": "every 3600 s",
    "expire-leases": "every 60 s",
    "contract-dates": "daily at 00:00:05 (UTC)",
    "quota-periods": "daily at 00:00:05 (UTC)",
}


def wait_for(check: Callable[[], bool], seconds: float = 15.0) -> None:
    """Poll (bounded) until ``check`` holds: first turns come within 5 s of a daemon's start."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.1)


def job(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/jobs/{name}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_jobs_are_listed_with_their_schedules(
    daemon: RunningDaemon, readonly_api: httpx.Client
) -> None:
    response = readonly_api.get("/api/v1/jobs")
    assert response.status_code == 200, response.text
    jobs = {item["name"]: item for item in response.json()}
    local = {"forget-logins", "plan-windows"}
    if not daemon.settings.database_url.startswith("sqlite"):
        local.add("refresh-sessions")  # other nodes' sessions, read in on every node
    assert set(jobs) == set(SHARED) | local
    for name, schedule in SHARED.items():
        assert jobs[name]["shared"] is True and jobs[name]["schedule"] == schedule
    for name in local:
        assert jobs[name]["shared"] is False
    for item in jobs.values():
        assert item["description"] and item["next_run_at"] is not None


def test_a_job_that_ran_shows_its_record(daemon: RunningDaemon, readonly_api: httpx.Client) -> None:
    # contract-dates never ran on this database, so it ran at start.
    wait_for(lambda: job(readonly_api, "contract-dates")["runs"] >= 1)
    dates = job(readonly_api, "contract-dates")
    assert set(dates["last_result"]) == {"ended", "disconnected", "started"}
    assert dates["last_error"] is None and dates["last_node"] == daemon.daemon.scheduler.node
    started, finished, upcoming = (
        datetime.fromisoformat(dates[key])
        for key in ("last_started_at", "last_finished_at", "next_run_at")
    )
    assert started <= finished < upcoming


def test_an_unknown_job_is_a_404_problem(api: httpx.Client) -> None:
    response = api.get("/api/v1/jobs/no-such-job")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "name"


def test_jobs_need_a_token(daemon: RunningDaemon) -> None:
    assert httpx.get(f"{daemon.base_url}/api/v1/jobs").status_code == 401
    assert httpx.get(f"{daemon.base_url}/api/v1/jobs/stale-sessions").status_code == 401


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[list[RunningDaemon]]:
    """Two daemons, node-1 and node-2, on a PostgreSQL database of their own."""

    def first_turn(first: RunningDaemon) -> None:
        # contract-dates never ran on this database: node-1 runs it as it starts.
        api = first.client(first.readonly_token)
        wait_for(lambda: job(api, "contract-dates")["runs"] == 1)

    with pg_cluster(postgres_url, tmp_path, 2, first_turn) as nodes:
        yield nodes


@pytest.mark.postgres
def test_two_daemons_on_one_database_run_each_turn_once(cluster: list[RunningDaemon]) -> None:
    apis = [node.client(node.readonly_token) for node in cluster]
    # Both fire stale-sessions at the turn node-1 stored (5 s after its start): one runs it.
    wait_for(lambda: job(apis[1], "stale-sessions")["runs"] >= 1)
    time.sleep(0.5)  # the other node's claim of the same turn has been refused by now
    for name in SHARED:
        seen = [job(api, name) for api in apis]
        assert seen[0] == seen[1], name  # the cluster's record, whichever node is asked
    # node-2 found contract-dates run and its next turn tomorrow: it did not run it again.
    dates = job(apis[1], "contract-dates")
    assert (dates["runs"], dates["last_node"]) == (1, "node-1")
    assert job(apis[1], "stale-sessions")["runs"] == 1
    # Local jobs: each node runs its own and tells its own record.
    wait_for(lambda: all(job(api, "forget-logins")["runs"] >= 1 for api in apis))
    forget = [job(api, "forget-logins") for api in apis]
    assert [item["last_node"] for item in forget] == ["node-1", "node-2"]
    assert all(isinstance(item["last_result"], int) for item in forget)


def test_job_routes_are_documented(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    for path in ("/api/v1/jobs", "/api/v1/jobs/{name}"):
        assert spec["paths"][path]["get"]["description"], path
    for field, prop in spec["components"]["schemas"]["JobPublic"]["properties"].items():
        assert prop.get("description"), field
