"""Simultaneous use across two nodes on one PostgreSQL database (a NAS with a primary and a
secondary RADIUS server): decided once for both, over real UDP.

Each case runs for a limit of 1 and of 2, and is repeated, so an intermittent failure shows.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from conftest import (
    RunningDaemon,
    admin_sql,
    make_settings,
    pg_cluster,
    start_daemon,
    stop_daemon,
)
from radius_client import RadiusClient, attr
from radius_contracts.settings import SchedulerSettings
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

SECRET = "cluster-simuse-secret-1"
NAS = "127.0.0.43"
ROUNDS = 10


@pytest.fixture(scope="module")
def nodes(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[RunningDaemon]]:
    with pg_cluster(postgres_url, tmp_path_factory.mktemp("simuse"), 2) as started:
        api = started[0].client(started[0].admin_token)
        makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
        mikrotik = next(m["id"] for m in makers if m["name"] == "MikroTik")
        body = {"name": f"bras-{secrets.token_hex(3)}", "address": NAS, "secret": SECRET,
                "manufacturer_id": mikrotik}  # fmt: skip
        assert api.post("/api/v1/nas", json=body).status_code == 201
        yield started


def _contract(node: RunningDaemon, limit: int) -> str:
    api: httpx.Client = node.client(node.admin_token)
    user = f"su-{secrets.token_hex(4)}"
    config = {"username": user, "password": "pw-su-1", "simultaneous_use": limit}
    body = {"number": f"SU-{secrets.token_hex(4)}", "config": config}
    assert api.post("/api/v1/contracts", json=body).status_code == 201
    return user


def _station() -> str:
    return "02:00:" + ":".join(secrets.token_hex(1) for _ in range(4))


def _login(node: RunningDaemon, user: str, station: str) -> bool:
    assert node.daemon.auth_port is not None
    with RadiusClient(node.daemon.auth_port, SECRET, source=NAS, timeout=3.0) as radius:
        reply = radius.exchange(
            radius.access_request(user, "pw-su-1", attr("Calling-Station-Id", station))
        )
    assert reply is not None
    return reply.accepted


def _start(node: RunningDaemon, user: str, station: str) -> None:
    assert node.daemon.acct_port is not None
    with RadiusClient(node.daemon.acct_port, SECRET, source=NAS) as radius:
        request = radius.accounting_request(
            attr("Acct-Status-Type", "Start"),
            attr("Acct-Session-Id", f"SU-{secrets.token_hex(5)}"),
            attr("User-Name", user),
            attr("Calling-Station-Id", station),
        )
        assert radius.exchange(request) is not None


def _wait_known_everywhere(nodes: list[RunningDaemon], user: str) -> None:
    """The contract is in every node's index (the change feed carries it within a second)."""
    deadline = time.monotonic() + 5
    for node in nodes:
        assert node.daemon.index is not None
        while node.daemon.index.contract_by_username(user) is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)


@pytest.mark.parametrize("limit", [1, 2])
def test_a_device_through_the_other_node_is_refused_once_the_first_started(
    nodes: list[RunningDaemon], limit: int
) -> None:
    a, b = nodes
    for _round in range(ROUNDS):
        user = _contract(a, limit)
        _wait_known_everywhere(nodes, user)
        for _ in range(limit):
            station = _station()
            assert _login(a, user, station)
            _start(a, user, station)
        # Right after the Starts, through node B: refused, every time.
        assert not _login(b, user, _station())
        assert not _login(a, user, _station())


@pytest.mark.parametrize("limit", [1, 2])
def test_a_device_through_the_other_node_is_refused_once_the_first_was_accepted(
    nodes: list[RunningDaemon], limit: int
) -> None:
    """Accepted, its Start not come yet: the login still holds its place on both nodes."""
    a, b = nodes
    for _round in range(ROUNDS):
        user = _contract(a, limit)
        _wait_known_everywhere(nodes, user)
        for _ in range(limit):
            assert _login(a, user, _station())
        assert not _login(b, user, _station())


@pytest.mark.parametrize("limit", [1, 2])
def test_logins_at_the_same_moment_through_both_nodes_accept_at_most_the_limit(
    nodes: list[RunningDaemon], limit: int
) -> None:
    for _round in range(ROUNDS):
        user = _contract(nodes[0], limit)
        _wait_known_everywhere(nodes, user)
        # limit + 1 devices at once, spread over both nodes.
        targets = [nodes[i % 2] for i in range(limit + 1)]
        results: list[bool] = []
        gate = threading.Barrier(len(targets))
        threads = [
            threading.Thread(target=_login_at_once, args=(gate, node, user, results))
            for node in targets
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(results) == limit, results


def _login_at_once(
    gate: threading.Barrier, node: RunningDaemon, user: str, results: list[bool]
) -> None:
    gate.wait()
    results.append(_login(node, user, _station()))


def test_decisions_are_counted_by_how_they_were_made(nodes: list[RunningDaemon]) -> None:
    user = _contract(nodes[0], 1)
    _wait_known_everywhere(nodes, user)
    assert _login(nodes[1], user, _station())
    text = httpx.get(f"{nodes[1].base_url}/metrics").text
    line = next(
        line for line in text.splitlines()
        if line.startswith('radius_contracts_simultaneous_use_decisions_total{by="database"}')
    )  # fmt: skip
    assert float(line.split()[-1]) >= 1


def test_while_the_database_is_away_a_node_decides_from_what_it_knows(
    postgres_url: str, tmp_path: Path
) -> None:
    """Node B reaches PostgreSQL through a proxy that is cut: its session view, brought up to
    date by the change feed before the outage, decides (offline = local, the default)."""
    name = f"rc_simuse_offline_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    server = make_url(postgres_url)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    port = proxy.start()
    direct = server.set(database=name, drivername="postgresql+asyncpg")
    proxied = direct.set(host="127.0.0.1", port=port)
    started: list[tuple[RunningDaemon, threading.Thread]] = []
    try:
        # Nodes are told apart by name (here one process runs both).
        a_settings = make_settings(tmp_path / "a", direct.render_as_string(hide_password=False))
        a_settings = a_settings.model_copy(
            update={"scheduler": SchedulerSettings(node_name="node-a")}
        )
        started.append(start_daemon(a_settings))
        a = started[0][0]
        b_settings = make_settings(tmp_path / "b", proxied.render_as_string(hide_password=False))
        database = b_settings.database.model_copy(
            update={"connect_timeout": 1.0, "statement_timeout": 1.0}
        )
        b_settings = b_settings.model_copy(
            update={"database": database, "scheduler": SchedulerSettings(node_name="node-b")}
        )
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "admin-token").write_text(a.admin_token)
        started.append(start_daemon(b_settings))
        b = started[1][0]
        api = a.client(a.admin_token)
        makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
        mikrotik = next(m["id"] for m in makers if m["name"] == "MikroTik")
        body = {"name": "bras", "address": NAS, "secret": SECRET, "manufacturer_id": mikrotik}
        assert api.post("/api/v1/nas", json=body).status_code == 201
        user = _contract(a, 1)
        _wait_known_everywhere([a, b], user)
        first = _station()
        assert _login(a, user, first)
        _start(a, user, first)
        # The Start reaches node B's view by the change feed, well within a second.
        deadline = time.monotonic() + 2
        assert b.daemon.sessions is not None and b.daemon.index is not None
        contract = b.daemon.index.contract_by_username(user)
        assert contract is not None
        while b.daemon.sessions.count(contract.id) == 0:
            assert time.monotonic() < deadline, "the Start did not reach node B"
            time.sleep(0.02)
        proxy.cut()
        assert not _login(b, user, _station())  # a second device: refused from the view
        assert _login(b, user, first)  # the first device again: its own place
        claims = b.daemon.claims
        assert claims is not None and claims.decided["local"] >= 2
    finally:
        for running, thread in reversed(started):
            stop_daemon(running, thread)
        proxy.stop()
        asyncio.run(admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
