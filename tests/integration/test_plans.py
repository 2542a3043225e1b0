"""Service plans, data quotas (fair-usage policy) and time windows, over real UDP and HTTP.

Sessions are real: Accounting-Requests from a simulated NAS's own loopback address, CoA and
Disconnect-Requests answered by its Dynamic Authorization server (tests/nas_simulator.py).
The daemon's wall clock can be moved (Daemon(clock=…)) to cross a period's end or a window's
boundary without waiting for one.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    RunningDaemon,
    admin_sql,
    make_settings,
    pg_cluster,
    start_daemon,
    stop_daemon,
)
from nas_simulator import (
    COA,
    DISCONNECT,
    SECRET,
    Nas,
    Online,
    go_online,
    identification,
    manufacturer_with,
    post_created,
    requests_for,
    send_accounting,
    simulated_nas,
)
from radius_client import RadiusClient

GB = 10**9
RATE_LIMIT = [{"attribute": "Mikrotik-Rate-Limit", "template": "{max_upload}/{max_download}"}]
QUOTA_ROWS = [
    {"attribute": "Mikrotik-Rate-Limit", "template": "{max_upload}/{max_download}"},
    {"attribute": "Mikrotik-Address-List", "template": "quota-{quota_state}"},
]


class Clock:
    """The daemon's wall clock: real time plus an offset a test may move."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    base = request.getfixturevalue("postgres_url")
    name = f"{base.rpartition('/')[2]}_plans_{secrets.token_hex(3)}"
    asyncio.run(admin_sql(base, f'CREATE DATABASE "{name}"'))
    yield f"{base.rpartition('/')[0]}/{name}".replace("postgresql://", "postgresql+asyncpg://")
    asyncio.run(admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def plan_daemon(
    database: str | None, clock: Clock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    state: Path = tmp_path_factory.mktemp("plans")
    settings = make_settings(state, database)
    settings = settings.model_copy(
        update={"coa": settings.coa.model_copy(update={"timeout": 0.3, "tries": 3})}
    )
    running, thread = start_daemon(settings, clock)
    yield running
    stop_daemon(running, thread)


@pytest.fixture(scope="module")
def admin(plan_daemon: RunningDaemon) -> httpx.Client:
    return plan_daemon.client(plan_daemon.admin_token)


@pytest.fixture(scope="module")
def nas(admin: httpx.Client) -> Iterator[Nas]:
    """A MikroTik-like NAS: the rate limit and the address list change by CoA."""
    manufacturer = manufacturer_with(
        admin,
        "Mikrotik",
        {"active": RATE_LIMIT, "quota": QUOTA_ROWS},
        coa_identifiers=["User-Name", "Acct-Session-Id", "NAS-IP-Address"],
        coa_attributes=["Mikrotik-Rate-Limit", "Mikrotik-Address-List", "Session-Timeout"],
    )
    with simulated_nas(admin, manufacturer) as simulated:
        yield simulated


@pytest.fixture(autouse=True)
def real_time(clock: Clock) -> Iterator[None]:
    yield
    clock.offset = timedelta()


def make_plan(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": f"plan-{secrets.token_hex(4)}", "max_upload": "50M", "max_download": "500M"}
    return post_created(admin, "/api/v1/plans", {**body, **fields})


def fup_plan(admin: httpx.Client, cap: int, **quota: Any) -> dict[str, Any]:
    rule = {
        "cap_bytes": cap,
        "period": "month",
        "counts": "both",
        "action": "fup",
        "fup": {"max_upload": "5M", "max_download": "20M"},
        **quota,
    }
    return make_plan(admin, quota=rule)


def on_plan(admin: httpx.Client, plan: dict[str, Any], **config: Any) -> dict[str, Any]:
    """A contract on ``plan`` with no speeds of its own (unless given)."""
    body = {
        "number": f"C-{secrets.token_hex(4)}",
        "plan_id": plan["id"],
        "config": {
            "username": f"plan-{secrets.token_hex(4)}",
            "password": "pw-" + secrets.token_hex(4),
            **config,
        },
    }
    return post_created(admin, "/api/v1/contracts", body)


def online(
    daemon: RunningDaemon, admin: httpx.Client, nas: Nas, contract: dict[str, Any]
) -> Online:
    return go_online(daemon, admin, nas, contract=contract)


def interim(daemon: RunningDaemon, nas: Nas, session: Online, down: int, up: int = 0) -> None:
    """An Interim-Update: the session's counters so far (download = Acct-Output-Octets)."""
    send_accounting(
        daemon, nas, session.username, session.acct_session_id, 3,
        input_octets=up, output_octets=down, session_time=60,
    )  # fmt: skip


def quota(admin: httpx.Client, contract: dict[str, Any]) -> dict[str, Any]:
    response = admin.get(f"/api/v1/contracts/{contract['id']}/quota")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def rate_limits(daemon: RunningDaemon, nas: Nas, session: Online, count: int) -> list[str]:
    """The Mikrotik-Rate-Limit of each of the session's first ``count`` CoA-Requests."""
    found = requests_for(daemon, nas, session, count)
    return [value for code, pairs in found if code == COA
            for name, value in pairs if name == "Mikrotik-Rate-Limit"]  # fmt: skip


def login(daemon: RunningDaemon, nas: Nas, contract: dict[str, Any]) -> dict[str, list[bytes]]:
    """An Access-Request (PAP) from the NAS; the accepted reply's attributes by name."""
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, SECRET, source=nas.address) as radius:
        request = radius.access_request(contract["config"]["username"], _PASSWORDS[contract["id"]])
        reply = radius.exchange(request)
    assert reply is not None and reply.accepted, reply
    return reply.values()


_PASSWORDS: dict[int, str] = {}  # contract id → the password it was created with


# -- the plans API ------------------------------------------------------------------------------


def test_plan_crud_external_ids_and_audit(admin: httpx.Client, uniq: str) -> None:
    plan = make_plan(
        admin,
        external_refs=[{"app": "aira", "external_id": f"plan-{uniq}"}],
        session_timeout=86400,
        windows=[{"days": ["sat", "sun"], "start": "00:00", "end": "06:00", "max_download": "1G"}],
    )
    assert plan["quota"] is None and plan["active"] is True
    assert plan["windows"][0]["days"] == ["sat", "sun"]
    found = admin.get(f"/api/v1/plans/by-external/aira/plan-{uniq}")
    assert found.status_code == 200 and found.json()["id"] == plan["id"]
    listed = admin.get("/api/v1/plans", params={"app": "aira", "q": plan["name"]}).json()
    assert [p["id"] for p in listed["items"]] == [plan["id"]]
    changed = admin.patch(f"/api/v1/plans/{plan['id']}", json={"max_download": "600M"})
    assert changed.status_code == 200 and changed.json()["max_download"] == "600M"
    # A billing system syncs its plans by its own ids.
    upserted = admin.put(f"/api/v1/plans/by-external/aira/new-{uniq}", json={"name": f"p-{uniq}"})
    assert upserted.status_code == 201, upserted.text
    again = admin.put(f"/api/v1/plans/by-external/aira/new-{uniq}", json={"max_upload": "9M"})
    assert again.status_code == 200 and again.json()["name"] == f"p-{uniq}"
    assert admin.post(f"/api/v1/plans/{plan['id']}/deactivate").json()["active"] is False
    audit = admin.get("/api/v1/audit", params={"entity": "plans", "entity_id": plan["id"]})
    assert [e["action"] for e in reversed(audit.json()["items"])] == [
        "create", "update", "deactivate",
    ]  # fmt: skip
    assert admin.delete(f"/api/v1/plans/{plan['id']}").status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quota": {"cap_bytes": -1, "action": "reject"}}, "quota.cap_bytes"),
        ({"quota": {"cap_bytes": 0, "action": "reject"}}, "quota.cap_bytes"),
        ({"quota": {"cap_bytes": GB, "action": "fup"}}, "quota.fup"),
        ({"quota": {"cap_bytes": GB, "period": "fortnight", "action": "reject"}}, "quota.period"),
        ({"session_timeout": 0}, "session_timeout"),
        ({"max_download": "fast"}, "max_download"),
        (
            {"windows": [{"days": ["mon"], "start": "25:00", "end": "06:00", "max_upload": "1M"}]},
            "windows[0].start",
        ),
        ({"windows": [{"days": ["mon"], "start": "00:00", "end": "06:00"}]}, "windows[0]"),
        (
            {
                "windows": [
                    {"days": ["mon"], "start": "00:00", "end": "06:00", "max_upload": "1M"},
                    {"days": ["sun"], "start": "22:00", "end": "01:00", "max_upload": "2M"},
                ]
            },
            "windows[1]",
        ),
    ],
)
def test_bad_plans_are_refused_naming_the_field(
    admin: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = admin.post("/api/v1/plans", json={"name": f"bad-{secrets.token_hex(4)}", **body})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field, problem


def test_contracts_reference_existing_active_plans(admin: httpx.Client) -> None:
    body = {"number": f"C-{secrets.token_hex(4)}", "config": {"username": secrets.token_hex(5)}}
    response = admin.post("/api/v1/contracts", json={**body, "plan_id": 999_999})
    assert response.status_code == 422 and response.json()["field"] == "plan_id"
    plan = make_plan(admin)
    contract = post_created(admin, "/api/v1/contracts", {**body, "plan_id": plan["id"]})
    # A retired plan keeps its contracts and takes no new ones; nor may it be deleted.
    admin.post(f"/api/v1/plans/{plan['id']}/deactivate")
    kept = admin.patch(f"/api/v1/contracts/{contract['id']}", json={"billing_day": 5})
    assert kept.status_code == 200 and kept.json()["plan_id"] == plan["id"]
    other = {"number": f"C-{secrets.token_hex(4)}", "config": {"username": secrets.token_hex(5)}}
    refused = admin.post("/api/v1/contracts", json={**other, "plan_id": plan["id"]})
    assert refused.status_code == 422 and refused.json()["field"] == "plan_id"
    assert admin.delete(f"/api/v1/plans/{plan['id']}").status_code == 409


def test_upsert_names_the_plan_by_the_billing_systems_id(admin: httpx.Client, uniq: str) -> None:
    plan = make_plan(admin, external_refs=[{"app": "billing", "external_id": f"fiber-{uniq}"}])
    body = {"number": f"C-{uniq}", "config": {"username": f"u-{uniq}"}}
    created = admin.put(
        f"/api/v1/contracts/by-external/billing/{uniq}",
        json={**body, "plan_external_id": f"fiber-{uniq}"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["plan_id"] == plan["id"]
    unknown = admin.put(
        f"/api/v1/contracts/by-external/billing/{uniq}", json={"plan_external_id": "nope"}
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "plan_external_id"


# -- speeds -------------------------------------------------------------------------------------


def test_contracts_get_the_plans_speeds_unless_their_own_are_set(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas
) -> None:
    plan = make_plan(admin, session_timeout=3600, idle_timeout=600)
    plain = on_plan(admin, plan)
    own = on_plan(admin, plan, max_download="900M")
    preview = admin.get(f"/api/v1/contracts/{plain['id']}/preview",
                        params={"nas_id": nas.record["id"]}).json()  # fmt: skip
    pairs = [(a["attribute"], a["value"]) for a in preview["attributes"]]
    assert ("Mikrotik-Rate-Limit", "50M/500M") in pairs
    assert ("Session-Timeout", "3600") in pairs and ("Idle-Timeout", "600") in pairs
    preview = admin.get(f"/api/v1/contracts/{own['id']}/preview",
                        params={"nas_id": nas.record["id"]}).json()  # fmt: skip
    assert ("Mikrotik-Rate-Limit", "50M/900M") in [
        (a["attribute"], a["value"]) for a in preview["attributes"]
    ]


def test_a_plan_speed_change_sends_coa_to_every_online_session_of_its_contracts(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas
) -> None:
    plan = make_plan(admin)
    sessions = [online(plan_daemon, admin, nas, on_plan(admin, plan)) for _ in range(3)]
    own = online(plan_daemon, admin, nas, on_plan(admin, plan, max_download="900M"))
    response = admin.patch(f"/api/v1/plans/{plan['id']}", json={"max_download": "1G"})
    assert response.status_code == 200, response.text
    for session in sessions:
        [(code, pairs)] = requests_for(plan_daemon, nas, session, 1)
        assert code == COA
        assert pairs == [*identification(nas, session), ("Mikrotik-Rate-Limit", "50M/1G")]
    # The contract with its own download speed keeps it: its reply did not change.
    assert requests_for(plan_daemon, nas, own, 1, timeout=1.0) == []


# -- quotas -------------------------------------------------------------------------------------


def test_crossing_the_cap_sends_the_fup_speeds_once(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas
) -> None:
    plan = fup_plan(admin, 10 * GB)
    contract = on_plan(admin, plan)
    session = online(plan_daemon, admin, nas, contract)
    interim(plan_daemon, nas, session, 4 * GB, GB)
    status = quota(admin, contract)
    assert (status["state"], status["used_bytes"], status["cap_bytes"]) == (
        "normal",
        5 * GB,
        10 * GB,
    )
    assert requests_for(plan_daemon, nas, session, 1, timeout=0.5) == []
    interim(plan_daemon, nas, session, 9 * GB, GB)  # 10 GB in all: the cap is reached
    assert rate_limits(plan_daemon, nas, session, 1) == ["5M/20M"]
    status = quota(admin, contract)
    assert status["state"] == "over" and status["remaining_bytes"] == 0
    assert status["changed_at"] is not None
    # More traffic past the cap sends nothing more.
    interim(plan_daemon, nas, session, 12 * GB, GB)
    assert len(requests_for(plan_daemon, nas, session, 2, timeout=1.0)) == 1
    assert quota(admin, contract)["used_bytes"] == 13 * GB


def test_two_sessions_of_one_contract_count_together(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas
) -> None:
    plan = fup_plan(admin, 10 * GB, counts="download")
    contract = on_plan(admin, plan)
    first = online(plan_daemon, admin, nas, contract)
    second = online(plan_daemon, admin, nas, contract)
    interim(plan_daemon, nas, first, 6 * GB, 50 * GB)  # upload does not count here
    assert quota(admin, contract)["state"] == "normal"
    interim(plan_daemon, nas, second, 4 * GB)
    assert quota(admin, contract)["used_bytes"] == 10 * GB
    assert rate_limits(plan_daemon, nas, first, 1) == ["5M/20M"]
    assert rate_limits(plan_daemon, nas, second, 1) == ["5M/20M"]


def test_a_login_over_the_cap_gets_the_reduced_reply_and_a_top_up_restores_it(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas
) -> None:
    plan = fup_plan(admin, GB)
    contract = on_plan(admin, plan, password="plan-pw-1")
    _PASSWORDS[contract["id"]] = "plan-pw-1"
    session = online(plan_daemon, admin, nas, contract)
    interim(plan_daemon, nas, session, 2 * GB)
    assert rate_limits(plan_daemon, nas, session, 1) == ["5M/20M"]
    assert login(plan_daemon, nas, contract)["Mikrotik-Rate-Limit"] == [b"5M/20M"]
    # A top-up lifts the cap above what was used: full speed again, live, without a login.
    response = admin.post(f"/api/v1/contracts/{contract['id']}/quota", json={"add_bytes": 5 * GB})
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["extra_bytes"]) == ("normal", 5 * GB)
    assert rate_limits(plan_daemon, nas, session, 2) == ["5M/20M", "50M/500M"]
    assert login(plan_daemon, nas, contract)["Mikrotik-Rate-Limit"] == [b"50M/500M"]
    audit = admin.get("/api/v1/audit", params={"entity": "contracts",
                                                "entity_id": contract["id"]}).json()  # fmt: skip
    assert audit["items"][0]["action"] == "quota"
    assert audit["items"][0]["changes"] == {"add_bytes": 5 * GB}


def test_reset_and_bad_top_ups(plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas) -> None:
    plan = fup_plan(admin, GB)
    contract = on_plan(admin, plan)
    session = online(plan_daemon, admin, nas, contract)
    interim(plan_daemon, nas, session, 2 * GB)
    assert rate_limits(plan_daemon, nas, session, 1) == ["5M/20M"]
    reset = admin.post(f"/api/v1/contracts/{contract['id']}/quota", json={"reset": True})
    assert reset.status_code == 200 and reset.json()["used_bytes"] == 0
    assert rate_limits(plan_daemon, nas, session, 2)[-1] == "50M/500M"
    for body, field in (({"add_bytes": -5}, "add_bytes"), ({}, None),
                        ({"add_bytes": 5, "reset": True}, None)):  # fmt: skip
        bad = admin.post(f"/api/v1/contracts/{contract['id']}/quota", json=body)
        assert bad.status_code == 422, bad.text
        if field:
            assert bad.json()["field"] == field
    no_quota = on_plan(admin, make_plan(admin))
    response = admin.post(f"/api/v1/contracts/{no_quota['id']}/quota", json={"add_bytes": 5})
    assert response.status_code == 409
    assert quota(admin, no_quota)["state"] == "none"


def test_reject_action_disconnects_and_the_quota_layout_is_used(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas
) -> None:
    rejecting = on_plan(admin, fup_plan(admin, GB, action="reject", fup=None))
    session = online(plan_daemon, admin, nas, rejecting)
    interim(plan_daemon, nas, session, 2 * GB)
    [(code, _pairs)] = requests_for(plan_daemon, nas, session, 1)
    assert code == DISCONNECT
    preview = admin.get(f"/api/v1/contracts/{rejecting['id']}/preview",
                        params={"nas_id": nas.record["id"]}).json()  # fmt: skip
    assert (preview["decision"], preview["reason"]) == ("reject", "data quota exceeded")
    layout = on_plan(admin, fup_plan(admin, GB, action="layout"))
    session = online(plan_daemon, admin, nas, layout)
    interim(plan_daemon, nas, session, 2 * GB)
    [(code, pairs)] = requests_for(plan_daemon, nas, session, 1)
    assert code == COA
    assert ("Mikrotik-Address-List", "quota-over") in pairs
    assert ("Mikrotik-Rate-Limit", "5M/20M") in pairs


def test_the_end_of_the_period_restores_full_speed(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas, clock: Clock
) -> None:
    contract = on_plan(admin, fup_plan(admin, GB, period="day"))
    session = online(plan_daemon, admin, nas, contract)
    interim(plan_daemon, nas, session, 2 * GB)
    assert rate_limits(plan_daemon, nas, session, 1) == ["5M/20M"]
    clock.offset = timedelta(days=1)  # the next day: a new period
    keeper = plan_daemon.daemon.quota
    assert keeper is not None
    # The quota-periods job's work (its turn, 00:00:05, is the scheduler's business).
    assert plan_daemon.run(keeper.end_periods()) == {"restored": 1}
    assert rate_limits(plan_daemon, nas, session, 2) == ["5M/20M", "50M/500M"]
    status = quota(admin, contract)
    assert (status["state"], status["used_bytes"]) == ("normal", 0)
    # The job ran once for that period: running it again sends nothing more.
    assert plan_daemon.run(keeper.end_periods()) == {"restored": 0}
    assert len(requests_for(plan_daemon, nas, session, 3, timeout=1.0)) == 2


def test_quota_metrics(plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas) -> None:
    contract = on_plan(admin, fup_plan(admin, GB))
    session = online(plan_daemon, admin, nas, contract)
    interim(plan_daemon, nas, session, 2 * GB)
    rate_limits(plan_daemon, nas, session, 1)
    deadline = time.monotonic() + 5
    while True:
        text = httpx.get(f"{plan_daemon.base_url}/metrics").text
        if 'coa_requests_by_cause_total{cause="quota",kind="coa",outcome="ack"}' in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    over = [line for line in text.splitlines()
            if line.startswith('radius_contracts_quota_contracts{state="over"}')]  # fmt: skip
    assert over and float(over[0].split()[-1]) >= 1


# -- time windows -------------------------------------------------------------------------------


def test_a_window_boundary_sends_coa_and_logins_get_the_windows_speeds(
    plan_daemon: RunningDaemon, admin: httpx.Client, nas: Nas, clock: Clock
) -> None:
    now = datetime.now(UTC)
    later = now + timedelta(hours=2)  # a window starting two hours from now, for an hour
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[later.weekday()]
    window = {"days": [day], "start": f"{later.hour:02d}:00",
              "end": f"{(later.hour + 1) % 24:02d}:00", "max_download": "1G"}  # fmt: skip
    plan = make_plan(admin, windows=[window])
    contract = on_plan(admin, plan, password="window-pw-1")
    _PASSWORDS[contract["id"]] = "window-pw-1"
    session = online(plan_daemon, admin, nas, contract)
    plan_daemon.run(plan_daemon.daemon.scheduler.fire("plan-windows"))
    assert requests_for(plan_daemon, nas, session, 1, timeout=0.5) == []
    # Into the window: the boundary moves online sessions, and logins get the boost.
    clock.offset = later.replace(minute=0, second=30) - now
    plan_daemon.run(plan_daemon.daemon.scheduler.fire("plan-windows"))
    assert rate_limits(plan_daemon, nas, session, 1) == ["50M/1G"]
    assert login(plan_daemon, nas, contract)["Mikrotik-Rate-Limit"] == [b"50M/1G"]
    plan_daemon.run(plan_daemon.daemon.scheduler.fire("plan-windows"))
    assert len(requests_for(plan_daemon, nas, session, 2, timeout=1.0)) == 1
    # And out of it again.
    clock.offset = later.replace(minute=0, second=30) + timedelta(hours=1) - now
    plan_daemon.run(plan_daemon.daemon.scheduler.fire("plan-windows"))
    assert rate_limits(plan_daemon, nas, session, 2) == ["50M/1G", "50M/500M"]


def test_a_boundary_passed_while_the_daemon_was_down_is_applied_at_start(
    tmp_path: Path,
) -> None:
    # SQLite only: the window state the restart relies on is the same rows on both.
    clock = Clock()
    settings = make_settings(tmp_path / "restart", None)
    running, thread = start_daemon(settings, clock)
    try:
        admin = running.client(running.admin_token)
        manufacturer = manufacturer_with(
            admin, "Mikrotik", {"active": RATE_LIMIT}, coa_attributes=["Mikrotik-Rate-Limit"]
        )
        with simulated_nas(admin, manufacturer) as nas:
            now = datetime.now(UTC)
            later = now + timedelta(hours=3)
            day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[later.weekday()]
            window = {"days": [day], "start": f"{later.hour:02d}:00",
                      "end": f"{(later.hour + 1) % 24:02d}:00", "max_download": "2G"}  # fmt: skip
            plan = make_plan(admin, windows=[window])
            session = online(running, admin, nas, on_plan(admin, plan))
            running.run(running.daemon.scheduler.fire("plan-windows"))  # "none" is applied
            stop_daemon(running, thread)
            # Down across the boundary; the first run after the start moves the session.
            clock.offset = later.replace(minute=0, second=10) - now
            running, thread = start_daemon(settings, clock)
            assert rate_limits(running, nas, session, 1) == ["50M/2G"]
    finally:
        stop_daemon(running, thread)


@pytest.mark.postgres
def test_with_three_nodes_a_crossing_sends_one_coa_per_session(
    postgres_url: str, tmp_path: Path
) -> None:
    with pg_cluster(postgres_url, tmp_path, 3) as nodes:
        admin = nodes[0].client(nodes[0].admin_token)
        manufacturer = manufacturer_with(
            admin, "Mikrotik", {"active": RATE_LIMIT}, coa_attributes=["Mikrotik-Rate-Limit"]
        )
        with simulated_nas(admin, manufacturer) as nas:
            contract = on_plan(admin, fup_plan(admin, 10 * GB), password="cluster-pw-1")
            _PASSWORDS[contract["id"]] = "cluster-pw-1"
            # One session recorded through each node (a NAS failing over between them).
            sessions = [online(node, admin, nas, contract) for node in nodes]
            for _round in range(2):
                # Three Interim-Updates at once, one through each node: 4 GB each, 12 GB in
                # all after both rounds cross the 10 GB cap in one of the transactions.
                threads = [
                    threading.Thread(
                        target=interim, args=(node, nas, session, (_round + 1) * 2 * GB)
                    )
                    for node, session in zip(nodes, sessions, strict=True)
                ]
                for started in threads:
                    started.start()
                for started in threads:
                    started.join()
            for session in sessions:
                assert rate_limits(nodes[0], nas, session, 1) == ["5M/20M"]
            time.sleep(1.0)  # time for any second CoA to show up
            for session in sessions:
                assert len(requests_for(nodes[0], nas, session, 2, timeout=0.2)) == 1
            # Every node answers a login with the reduced reply.
            for node in nodes:
                deadline = time.monotonic() + 2.0
                while login(node, nas, contract)["Mikrotik-Rate-Limit"] != [b"5M/20M"]:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
