"""Simultaneous use: a contract's limit, enforced at Access-Request from the open sessions.

Logins go through our client (it sets Calling-Station-Id and NAS-Port like a BRAS); accounting
through radclient, the reference NAS-side client.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LO_SECRET as SECRET
from conftest import Factory, RunningDaemon, start_daemon, stop_daemon
from radclient import radclient
from radius_client import RadiusClient, attr
from radius_contracts.settings import load_settings


@pytest.fixture
def nas_client(daemon: RunningDaemon, lo_nas: dict[str, Any]) -> Iterator[RadiusClient]:
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, SECRET) as radius:
        yield radius


def mac() -> str:
    return "02-00-" + "-".join(secrets.token_hex(1).upper() for _ in range(4))


def login(client: RadiusClient, user: str, station: str, port: int | None = None) -> str | None:
    """Reply-Message of a Reject, or None for an Accept."""
    extra = [attr("Calling-Station-Id", station)]
    if port is not None:
        extra.append(attr("NAS-Port", str(port)))
    reply = client.exchange(client.access_request(user, "pw", *extra))
    assert reply is not None
    return None if reply.accepted else (reply.text("Reply-Message") or "rejected")


def accounting(daemon: RunningDaemon, status: str, sid: str, user: str, station: str) -> None:
    assert daemon.daemon.acct_port is not None
    request = (
        f'Acct-Status-Type = {status}\nAcct-Session-Id = "{sid}"\nUser-Name = "{user}"\n'
        f'Calling-Station-Id = "{station}"\n'
    )
    result = radclient(daemon.daemon.acct_port, SECRET, request, command="acct")
    assert result.code == "Accounting-Response", result.output


def new_contract(make: Factory, limit: int | None = 1) -> str:
    contract = make.contract(config={"password": "pw", "simultaneous_use": limit})
    user: str = contract["config"]["username"]
    return user


def test_a_second_device_is_refused_while_the_first_is_online(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    user, first, second = new_contract(make), mac(), mac()
    assert login(nas_client, user, first) is None
    accounting(daemon, "Start", "S1-" + first, user, first)
    assert login(nas_client, user, second) == "simultaneous use limit of 1 reached"
    # Once the first session stops, the second device gets in.
    accounting(daemon, "Stop", "S1-" + first, user, first)
    assert login(nas_client, user, second) is None


def test_the_same_device_replaces_its_own_stale_session(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    """A router that redials after losing its line still has an open session on the NAS."""
    user, station = new_contract(make), mac()
    assert login(nas_client, user, station) is None
    accounting(daemon, "Start", "S2-" + station, user, station)
    # Same Calling-Station-Id, in another notation, as NAS mix them.
    assert login(nas_client, user, station.replace("-", ":").lower()) is None


def test_the_same_nas_port_replaces_its_session(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    user = new_contract(make)
    assert login(nas_client, user, mac(), port=4711) is None
    assert login(nas_client, user, mac(), port=4711) is None  # a new CPE on the same port
    assert login(nas_client, user, mac(), port=4712) == "simultaneous use limit of 1 reached"


def test_a_login_awaiting_its_start_counts(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    """Two routers dialling in at once: the second must not slip in before the first's Start."""
    user = new_contract(make)
    assert login(nas_client, user, mac()) is None
    assert login(nas_client, user, mac()) == "simultaneous use limit of 1 reached"


def test_a_limit_of_two_and_no_limit(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    user = new_contract(make, limit=2)
    stations = [mac() for _ in range(3)]
    for station in stations[:2]:
        assert login(nas_client, user, station) is None
        accounting(daemon, "Start", "S3-" + station, user, station)
    assert login(nas_client, user, stations[2]) == "simultaneous use limit of 2 reached"
    unlimited = new_contract(make, limit=None)
    for station in stations:
        assert login(nas_client, unlimited, station) is None


def test_accounting_on_frees_the_nas_sessions(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    user, first, second = new_contract(make), mac(), mac()
    assert login(nas_client, user, first) is None
    accounting(daemon, "Start", "S4-" + first, user, first)
    assert login(nas_client, user, second) is not None
    assert daemon.daemon.acct_port is not None
    on = "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 127.0.0.1\n"
    result = radclient(daemon.daemon.acct_port, SECRET, on, command="acct")
    assert result.code == "Accounting-Response", result.output
    assert login(nas_client, user, second) is None


def test_refusals_are_in_the_auth_log_and_metrics(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    user, first = new_contract(make), mac()
    login(nas_client, user, first)
    accounting(daemon, "Start", "S5-" + first, user, first)
    assert login(nas_client, user, mac()) is not None
    metrics = daemon.client().get("/metrics").text
    line = next(
        x for x in metrics.splitlines() if x.startswith("radius_contracts_simultaneous_use_refused")
    )
    assert float(line.split()[-1]) >= 1


@pytest.mark.postgres
def test_sessions_recorded_by_another_node_count(
    postgres_url: str,
    tmp_path: Path,
    make: Factory,
    daemon: RunningDaemon,
    lo_nas: dict[str, Any],
) -> None:
    """Two nodes on one PostgreSQL: node B refuses a second device whose first session node A
    recorded (node B reads other nodes' sessions every session_refresh seconds)."""
    if "postgresql" not in daemon.settings.database_url:
        pytest.skip("needs the PostgreSQL daemon")
    user, first, second = new_contract(make), mac(), mac()
    settings = load_settings(
        None,
        state_dir=tmp_path / "node-b",
        database={"url": postgres_url},
        api={"host": "127.0.0.1", "port": 0},
        radius={"bind": "127.0.0.1", "auth_port": 0, "acct_port": 0, "reject_delay": 0},
        accounting={"session_refresh": 0.3},
    )
    # The shared database has its admin token already: node B creates none.
    (tmp_path / "node-b").mkdir()
    (tmp_path / "node-b" / "admin-token").write_text(daemon.admin_token)
    node_b, thread = start_daemon(settings)
    try:
        accounting(daemon, "Start", "MULTI-" + first, user, first)
        assert node_b.daemon.auth_port is not None
        with RadiusClient(node_b.daemon.auth_port, SECRET) as client:
            deadline = time.monotonic() + 5
            answer = login(client, user, second)
            while answer is None and time.monotonic() < deadline:
                time.sleep(0.2)
                answer = login(client, user, second)
            assert answer == "simultaneous use limit of 1 reached"
    finally:
        stop_daemon(node_b, thread)
