"""The operator commands (sessions, auth-log, contract show, disconnect, audit), run as an
operator runs them: a subprocess reaching the running daemon's API over HTTP, on SQLite and
PostgreSQL. The subscriber's traffic is real RADIUS over UDP from a NAS at 127.0.42.1, which
also runs a CoA server so that a disconnect gets a real answer.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from coa_server import CoaServer
from conftest import RunningDaemon, add_nas
from radius_client import RadiusClient, attr

CLI = [sys.executable, "-m", "radius_contracts"]
NAS_ADDRESS = "127.0.42.1"
SECRET = "cli-nas-secret-42"


def cli(
    *args: str, config: Path | None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, *args] + (["--config", str(config)] if config else [])
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stderr == ""
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("radius-contracts: error: "), result.stderr
    return lines[0]


@dataclass
class Subscriber:
    contract: dict[str, Any]
    username: str
    password: str
    session_id: int  # the API's id of the session the NAS opened


@dataclass
class Setup:
    daemon: RunningDaemon
    api: httpx.Client
    config: Path  # what an operator's --config says: the daemon's state_dir and API port
    nas: dict[str, Any]
    coa: CoaServer


@pytest.fixture(scope="module")
def setup(daemon: RunningDaemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    api = daemon.client(daemon.admin_token)
    config = tmp_path_factory.mktemp("cli") / "rc.toml"
    config.write_text(
        f'state_dir = "{daemon.settings.state_dir}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {daemon.daemon.api_port}\n'
    )
    with CoaServer(SECRET.encode(), host=NAS_ADDRESS) as coa:
        nas = add_nas(api, SECRET, NAS_ADDRESS, name=f"cli-nas-{secrets.token_hex(3)}",
                      coa_port=coa.port)  # fmt: skip
        yield Setup(daemon, api, config, nas, coa)


def radius(setup: Setup, port: int | None) -> RadiusClient:
    assert port is not None
    return RadiusClient(port, SECRET, source=NAS_ADDRESS)


def online(setup: Setup) -> Subscriber:
    """A contract that logged in (one wrong password first) and has a session open."""
    username, password = f"cli-{secrets.token_hex(4)}", "pw-" + secrets.token_hex(6)
    body = {
        "number": f"CLI-{secrets.token_hex(4)}",
        "customer": {"name": "Ana Lima"},
        "config": {"username": username, "password": password,
                   "max_upload": "10M", "max_download": "50M"},
    }  # fmt: skip
    created = setup.api.post("/api/v1/contracts", json=body)
    assert created.status_code == 201, created.text
    with radius(setup, setup.daemon.daemon.auth_port) as auth:
        wrong = auth.exchange(auth.access_request(username, "not-the-password"))
        assert wrong is not None and not wrong.accepted
        right = auth.exchange(auth.access_request(username, password))
        assert right is not None and right.accepted
    acct_id = secrets.token_hex(6)
    with radius(setup, setup.daemon.daemon.acct_port) as acct:
        start = acct.accounting_request(
            attr("Acct-Status-Type", b"\x00\x00\x00\x01"),
            attr("Acct-Session-Id", acct_id),
            attr("User-Name", username),
            attr("Framed-IP-Address", bytes([100, 64, 42, 7])),
            attr("Acct-Input-Octets", (1_500_000).to_bytes(4, "big")),
        )
        assert acct.exchange(start) is not None
    sessions = setup.api.get("/api/v1/sessions", params={"username": username}).json()
    [session] = sessions["items"]
    # The auth log is written in batches, about a second after the answers: wait for both
    # outcomes, so the commands below see them.
    log_url = f"/api/v1/contracts/{created.json()['id']}/auth-log"
    deadline = time.monotonic() + 10
    while setup.api.get(log_url).json()["total"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return Subscriber(created.json(), username, password, session["id"])


def test_sessions_lists_who_is_online(setup: Setup) -> None:
    sub = online(setup)
    number = sub.contract["number"]
    out = ok(cli("sessions", "--contract", number, config=setup.config))
    header, _rule, row = out.splitlines()
    for column in ("session", "username", "contract", "NAS", "address", "started", "bytes up"):
        assert column in header
    # One aligned row: the names people know, not ids.
    assert row.split()[:5] == [str(sub.session_id), sub.username, number, setup.nas["name"],
                               "100.64.42.7"]  # fmt: skip
    assert "1.5 MB" in row
    by_nas = ok(cli("sessions", "--nas", setup.nas["name"], config=setup.config))
    assert sub.username in by_nas
    scripted = json.loads(ok(cli("sessions", "--username", sub.username, "--json",
                                 config=setup.config)))  # fmt: skip
    assert [item["id"] for item in scripted["items"]] == [sub.session_id]
    assert scripted["items"][0]["input_octets"] == 1_500_000


def test_sessions_filter_finds_nothing(setup: Setup) -> None:
    out = ok(cli("sessions", "--username", f"nobody-{secrets.token_hex(4)}", config=setup.config))
    assert out.strip() == "no sessions online"


def test_contract_show_by_number_and_by_username(setup: Setup) -> None:
    sub = online(setup)
    number = sub.contract["number"]
    out = ok(cli("contract", "show", number, config=setup.config))
    assert f"Contract {number}" in out and "Ana Lima" in out
    assert "from pool" not in out  # no pool configured: nothing to say
    # The reply the NAS gets, from the running daemon's own preview.
    assert setup.nas["name"] in out and "Mikrotik-Rate-Limit = 10M/50M" in out
    # Last auth outcomes, the reject with its reason.
    assert "wrong password" in out.lower() and "accept" in out
    assert "100.64.42.7" in out  # its session
    by_username = json.loads(ok(cli("contract", "show", sub.username.upper(), "--json",
                                    config=setup.config)))  # fmt: skip
    assert by_username["contract"]["id"] == sub.contract["id"]
    mine = [p for p in by_username["previews"] if p["nas_id"] == setup.nas["id"]]
    assert mine and mine[0]["decision"] == "accept"
    assert [r["result"] for r in by_username["auth_log"][:2]] == ["accept", "reject"]
    assert [s["id"] for s in by_username["sessions"]] == [sub.session_id]


def test_contract_show_unknown_says_so(setup: Setup) -> None:
    result = cli("contract", "show", f"no-such-{secrets.token_hex(3)}", config=setup.config)
    assert "no contract has the number or username" in one_line_error(result, 1)


def test_disconnect_a_session_and_wait_for_the_nas(setup: Setup) -> None:
    sub = online(setup)
    received = len(setup.coa.received)
    out = ok(cli("disconnect", str(sub.session_id), "--wait", config=setup.config))
    assert "ack" in out
    assert len(setup.coa.received) > received  # the NAS really got a Disconnect-Request
    contract = cli("disconnect", "--contract", sub.contract["number"], config=setup.config)
    assert f"Disconnect-Request sent for sessions {sub.session_id}" in ok(contract)


def test_disconnect_reports_a_nak(setup: Setup) -> None:
    sub = online(setup)
    setup.coa.mode = "nak"
    try:
        result = cli("disconnect", str(sub.session_id), "--wait", config=setup.config)
    finally:
        setup.coa.mode = "ack"
    assert result.returncode == 1 and "nak" in result.stdout
    assert "not every NAS acknowledged" in result.stderr


def test_disconnect_needs_sessions_or_a_contract(setup: Setup) -> None:
    result = cli("disconnect", config=setup.config)
    assert "session ids or --contract" in one_line_error(result, 2)


def test_audit_shows_who_changed_a_contract(setup: Setup) -> None:
    sub = online(setup)
    suspended = setup.api.post(f"/api/v1/contracts/{sub.contract['id']}/suspend")
    assert suspended.status_code == 200
    out = ok(cli("audit", "--contract", sub.contract["number"], config=setup.config))
    lines = out.splitlines()
    assert lines[0].split() == ["time", "actor", "via", "action", "entity", "id", "changes"]
    actions = [line.split()[4] for line in lines[2:]]
    assert actions[:2] == ["suspend", "create"]  # newest first
    assert '"password": "***"' in out and sub.password not in out
    scripted = json.loads(ok(cli("audit", "--contract", sub.contract["number"], "--json",
                                 config=setup.config)))  # fmt: skip
    assert {e["action"] for e in scripted["items"]} >= {"create", "suspend"}


def test_token_from_the_environment_and_from_the_option(setup: Setup) -> None:
    reader = setup.daemon.readonly_token
    # A read-only token reads ...
    env = {"RADIUS_CONTRACTS_TOKEN": reader}
    ok(cli("sessions", "--limit", "1", config=setup.config, env=env))
    # ... and may not disconnect: refused, status 4, one line.
    refused = cli("disconnect", "999999999", "--token", reader, config=setup.config)
    assert "not allowed with this token" in one_line_error(refused, 4)


def test_refused_token_exits_4_naming_where_it_came_from(setup: Setup) -> None:
    bad = "rc_" + secrets.token_hex(20)
    by_option = cli("sessions", "--token", bad, config=setup.config)
    assert "refused the token from --token" in one_line_error(by_option, 4)
    by_env = cli("audit", config=setup.config, env={"RADIUS_CONTRACTS_TOKEN": bad})
    assert "refused the token from $RADIUS_CONTRACTS_TOKEN" in one_line_error(by_env, 4)
    assert bad not in by_option.stderr + by_env.stderr


def test_no_token_anywhere_exits_4(tmp_path: Path, setup: Setup) -> None:
    config = tmp_path / "rc.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "empty"}"\n[api]\nport = {setup.daemon.daemon.api_port}\n'
    )
    result = cli("sessions", config=config)
    assert "no API token" in one_line_error(result, 4)


def test_unreachable_daemon_exits_3(tmp_path: Path, setup: Setup) -> None:
    # A port nothing listens on: bound and closed again.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("sessions", "--url", f"http://127.0.0.1:{port}", "--token", "x", config=None)
    line = one_line_error(result, 3)
    assert f"cannot reach the daemon at http://127.0.0.1:{port}" in line


# -- auth-log: GET /api/v1/auth-log (issue 17, item 2) ------------------------------------------


def test_auth_log_rejects_show_a_wrong_password_and_an_unknown_user(setup: Setup) -> None:
    sub = online(setup)
    stranger = f"nobody-{secrets.token_hex(4)}"
    with radius(setup, setup.daemon.daemon.auth_port) as auth:
        reply = auth.exchange(auth.access_request(stranger, "whatever"))
        assert reply is not None and not reply.accepted
    deadline = time.monotonic() + 5  # entries are written about a second after the answer
    while True:
        out = ok(cli("auth-log", "--rejects", "--nas", setup.nas["name"], config=setup.config))
        if stranger in out or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert stranger in out
    mine = [line for line in out.splitlines() if sub.username in line]
    assert len(mine) == 1 and "reject" in mine[0] and "accept" not in mine[0]
    scripted = json.loads(ok(cli("auth-log", "--username", sub.username, "--json",
                                 config=setup.config)))  # fmt: skip
    assert [e["result"] for e in scripted["items"]][:2] == ["accept", "reject"]
    assert scripted["items"][0]["contract_id"] == sub.contract["id"]


def test_auth_log_follow_prints_new_entries(setup: Setup) -> None:
    username = f"follow-{secrets.token_hex(4)}"
    argv = [*CLI, "auth-log", "--follow", "--json", "--interval", "0.2", "--username", username,
            "--config", str(setup.config)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as follow:
        try:
            time.sleep(1.5)  # it has started and is waiting
            with radius(setup, setup.daemon.daemon.auth_port) as auth:
                auth.exchange(auth.access_request(username, "whatever"))
            assert follow.stdout is not None
            ready = selectors.DefaultSelector()
            ready.register(follow.stdout, selectors.EVENT_READ)
            assert ready.select(timeout=10), "nothing printed within 10 s"
            entry = json.loads(follow.stdout.readline())
            assert entry["username"] == username and entry["result"] == "reject"
        finally:
            follow.send_signal(signal.SIGINT)
            assert follow.wait(10) == 0
