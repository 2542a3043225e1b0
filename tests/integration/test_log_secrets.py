"""A full run of the real daemon at DEBUG with JSON logs: every line is one JSON object, lines
about a request carry its id, and no secret, password or token used in the run is in the log.

`radius-contracts serve` runs as a subprocess with stderr to a file; everything reaches it the
way it would in production: HTTP for the API, radclient and UDP for RADIUS, the CLI for tokens
and test-auth, a NAS simulator for a Disconnect-Request, SIGTERM to stop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from coa_server import CoaServer
from conftest import admin_sql, manufacturer_named
from radclient import radclient
from radius_client import RadiusClient, attr

CLI = [sys.executable, "-m", "radius_contracts"]


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Run:
    """One daemon's configuration and everything secret that was used against it."""

    config: Path
    log: Path
    api_port: int
    auth_port: int
    acct_port: int
    secrets: list[str] = field(default_factory=list)
    cli_output: list[str] = field(default_factory=list)

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
        result = subprocess.run(
            [*CLI, *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, check=False, env={**clean, **(env or {})},
        )  # fmt: skip
        self.cli_output.append(result.stderr)
        return result


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL, its password or ""): on PostgreSQL a role of its own with a password in the URL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'rc.db'}", ""
        return
    server: str = request.getfixturevalue("postgres_url")
    name, password = f"rc_logs_{secrets.token_hex(4)}", f"pgpw-{secrets.token_hex(8)}"
    asyncio.run(admin_sql(server, f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"))
    asyncio.run(admin_sql(server, f'CREATE DATABASE "{name}" OWNER "{name}"'))
    host = server.split("@", 1)[1].rsplit("/", 1)[0]
    yield f"postgresql+asyncpg://{name}:{password}@{host}/{name}", password
    asyncio.run(admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin_sql(server, f'DROP ROLE IF EXISTS "{name}"'))


@pytest.fixture
def run(tmp_path: Path, database_url: tuple[str, str]) -> Run:
    url, db_password = database_url
    ports = Run(
        config=tmp_path / "rc.toml",
        log=tmp_path / "serve.log",
        api_port=_free_port(socket.SOCK_STREAM),
        auth_port=_free_port(socket.SOCK_DGRAM),
        acct_port=_free_port(socket.SOCK_DGRAM),
    )
    ports.config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "{url}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {ports.api_port}\n'
        f'[radius]\nbind = "127.0.0.1"\nauth_port = {ports.auth_port}\n'
        f"acct_port = {ports.acct_port}\nreject_delay = 0.1\n"
        '[logging]\nlevel = "DEBUG"\nformat = "json"\n'
    )
    if db_password:
        ports.secrets.append(db_password)
    return ports


class TracedApi:
    """An HTTP client that sends a fresh X-Request-ID with every request and checks the echo."""

    def __init__(self, base_url: str, token: str) -> None:
        self.sent: list[str] = []
        self._ids = itertools.count(1)
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            event_hooks={"request": [self._tag], "response": [self._check]},
        )

    def _tag(self, request: httpx.Request) -> None:
        request_id = f"test-{secrets.token_hex(4)}-{next(self._ids)}"
        request.headers["X-Request-ID"] = request_id
        self.sent.append(request_id)

    @staticmethod
    def _check(response: httpx.Response) -> None:
        assert response.headers["X-Request-ID"] == response.request.headers["X-Request-ID"]

    def post(self, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code == status, response.text
        result: dict[str, Any] = response.json()
        return result


def _wait_healthy(run: Run, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{run.api_port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, run.log.read_text()
        assert time.monotonic() < deadline, "serve did not come up"
        time.sleep(0.1)


def _pap(user: str, password: str) -> str:
    return f'User-Name = "{user}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'


def _acct(user: str, session: str, status: str, *extra: str) -> str:
    lines = [f'User-Name = "{user}"', f'Acct-Session-Id = "{session}"',
             f"Acct-Status-Type = {status}", 'NAS-IP-Address = 127.0.0.1', *extra]  # fmt: skip
    return "\n".join(lines) + "\n"


def _exercise(run: Run, api: TracedApi) -> dict[str, str]:
    """Everything the daemon does, each with a secret of its own; returns the user names."""
    nas_secret = f"nas-secret-{secrets.token_hex(6)}"
    coa_secret = f"coa-secret-{secrets.token_hex(6)}"
    wrong_secret = f"wrong-secret-{secrets.token_hex(6)}"
    passwords = {kind: f"{kind}-pw-{secrets.token_hex(6)}" for kind in ("pap", "chap", "mschap")}
    wrong_password = f"wrong-pw-{secrets.token_hex(6)}"
    run.secrets += [nas_secret, coa_secret, wrong_secret, wrong_password, *passwords.values()]

    mikrotik = manufacturer_named(api.http, "MikroTik")["id"]
    lo = api.post("/api/v1/nas", {"name": "lo-nas", "address": "127.0.0.1", "secret": nas_secret,
                                  "manufacturer_id": mikrotik})  # fmt: skip
    users = {kind: f"{kind}-user-{secrets.token_hex(3)}" for kind in passwords}
    contracts = {
        kind: api.post(
            "/api/v1/contracts",
            {
                "number": f"C-{kind}-{secrets.token_hex(3)}",
                "config": {
                    "username": users[kind],
                    "password": passwords[kind],
                    "max_upload": "10M",
                    "max_download": "50M",
                },
            },
        )
        for kind in passwords
    }

    # PAP, CHAP and MS-CHAPv2 Accepts; wrong-password Rejects; a NAS with the wrong secret.
    port = run.auth_port
    assert radclient(port, nas_secret, _pap(users["pap"], passwords["pap"])).code == "Access-Accept"
    wrong = radclient(port, nas_secret, _pap(users["pap"], wrong_password))
    assert wrong.code == "Access-Reject"
    chap = (f'User-Name = "{users["chap"]}"\nCHAP-Password = "{passwords["chap"]}"\n'
            "Message-Authenticator = 0x00\n")  # fmt: skip
    assert radclient(port, nas_secret, chap).code == "Access-Accept"
    assert radclient(port, nas_secret, chap.replace(passwords["chap"], wrong_password)).code == (
        "Access-Reject"
    )
    with RadiusClient(port, nas_secret) as client:
        packet, *_ = client.mschapv2_request(users["mschap"], passwords["mschap"])
        reply = client.exchange(packet)
        assert reply is not None and reply.accepted
        packet, *_ = client.mschapv2_request(users["mschap"], wrong_password)
        reply = client.exchange(packet)
        assert reply is not None and not reply.accepted
    dropped = radclient(port, wrong_secret, _pap(users["pap"], passwords["pap"]), timeout=0.5)
    assert dropped.code is None

    # Accounting Start, Interim-Update and Stop.
    session = f"sess-{secrets.token_hex(4)}"
    for status, extra in (("Start", ()), ("Interim-Update", ("Acct-Session-Time = 60",)),
                          ("Stop", ("Acct-Session-Time = 120",))):  # fmt: skip
        request = _acct(users["pap"], session, status, *extra)
        result = radclient(run.acct_port, nas_secret, request, command="acct")
        assert result.code == "Accounting-Response", result.output

    # A Disconnect-Request to a NAS simulator for a session online there.
    coa_nas = CoaServer(coa_secret.encode(), host="127.0.0.2")
    try:
        api.post(
            "/api/v1/nas",
            {
                "name": "coa-nas",
                "address": "127.0.0.2",
                "secret": coa_secret,
                "manufacturer_id": mikrotik,
                "coa_port": coa_nas.port,
            },
        )
        with RadiusClient(run.acct_port, coa_secret, source="127.0.0.2") as nas:
            start = nas.accounting_request(
                attr("User-Name", users["chap"]), attr("Acct-Session-Id", "coa-sess-1"),
                attr("Acct-Status-Type", "Start"), attr("NAS-IP-Address", "127.0.0.2"),
            )  # fmt: skip
            assert nas.exchange(start) is not None
        online = api.http.get(
            "/api/v1/sessions", params={"username": users["chap"], "online": "true"}
        ).json()["items"]
        assert len(online) == 1
        disconnect = api.http.post(f"/api/v1/sessions/{online[0]['id']}/disconnect")
        assert disconnect.status_code in (200, 202), disconnect.text
        deadline = time.monotonic() + 10
        while not coa_nas.received:
            assert time.monotonic() < deadline, "no Disconnect-Request reached the NAS"
            time.sleep(0.05)
    finally:
        coa_nas.close()

    # Validation errors that carry a password: of the wrong type, and too long.
    contract_id = contracts["pap"]["id"]
    listed = f"listed-pw-{secrets.token_hex(6)}"
    long = f"long-pw-{secrets.token_hex(6)}" * 10
    run.secrets += [listed, long]
    for password in ([listed], long):
        response = api.http.patch(
            f"/api/v1/contracts/{contract_id}", json={"config": {"password": password}}
        )
        assert response.status_code == 422, response.text
    assert api.http.get(f"/api/v1/nas/{lo['id']}").status_code == 200

    # test-auth, as an operator runs it (the secret from the environment, not argv).
    tested = run.cli(
        "test-auth", users["pap"], passwords["pap"], "--port", str(port),
        env={"RADIUS_CONTRACTS_TEST_SECRET": nas_secret},
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    return users


def _lines(path: Path) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{path.name}:{number} is no JSON object: {line[:200]!r}")
        assert isinstance(event, dict), line
        events.append(event)
    return events


def _forms(secret: str) -> list[str]:
    """How a secret could show up: as is, hex-encoded, or as a repr of its bytes."""
    raw = secret.encode()
    return [secret, raw.hex(), repr(raw)[2:-1], json.dumps(secret)[1:-1]]


def test_full_run_logs_json_with_request_ids_and_no_secrets(run: Run) -> None:
    with run.log.open("w") as log_file:
        process = subprocess.Popen(
            [*CLI, "serve", "--config", str(run.config)],
            stdout=log_file, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")},
        )  # fmt: skip
        try:
            _wait_healthy(run, process)
            # The first admin token the daemon made, and two made with the CLI meanwhile.
            bootstrap = (run.config.parent / "state" / "admin-token").read_text().strip()
            created = run.cli("token", "create", "cli-admin", "--role", "admin")
            assert created.returncode == 0, created.stderr
            cli_token = created.stdout.strip().splitlines()[-1]
            reader = run.cli("token", "create", "cli-reader", "--role", "read-only")
            reader_token = reader.stdout.strip().splitlines()[-1]
            run.secrets += [bootstrap, cli_token, reader_token]
            api = TracedApi(f"http://127.0.0.1:{run.api_port}", cli_token)
            users = _exercise(run, api)
            reader_api = TracedApi(f"http://127.0.0.1:{run.api_port}", reader_token)
            assert reader_api.http.get("/api/v1/pops").status_code == 200
            reader_api.http.close()
            # An id we did not send is made up and echoed; an unsafe one is replaced.
            plain = httpx.get(f"http://127.0.0.1:{run.api_port}/healthz", timeout=5)
            unsafe = httpx.get(
                f"http://127.0.0.1:{run.api_port}/api/v1/pops",
                headers={"X-Request-ID": "bad id\\n" + "x" * 200, "X-API-Key": bootstrap},
                timeout=5,
            )
            assert unsafe.status_code == 200
            for response in (plain, unsafe):
                assert 0 < len(response.headers["X-Request-ID"]) <= 128
                assert " " not in response.headers["X-Request-ID"]
            api.http.close()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)

    events = _lines(run.log)
    text = run.log.read_text() + "".join(run.cli_output)
    for secret in run.secrets:
        for form in _forms(secret):
            assert form not in text, f"a secret ({secret[:6]}…) is in the log as {form[:12]}…"

    by_logger: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_logger.setdefault(event["logger"], []).append(event)
    # Every line of the wire layer is about one datagram, and says which.
    radius_lines = by_logger["radius_contracts.radius"]
    assert all(e.get("request_id") for e in radius_lines), radius_lines
    decisions = [e for e in radius_lines if "result" in e]
    for kind, user in users.items():
        mine = [e for e in decisions if e.get("user_name") == user]
        assert {e["result"] for e in mine} == {"accept", "reject"}, (kind, mine)
        assert all(e["nas"] == "lo-nas" and e["nas_address"] == "127.0.0.1" for e in mine)
        assert all(isinstance(e["radius_id"], int) for e in mine)
    assert len({e["request_id"] for e in decisions}) == len(decisions)
    accounting = [e for e in radius_lines if e["msg"].startswith("Accounting-Request")]
    assert len(accounting) >= 4 and all(e.get("user_name") for e in accounting)
    assert any("Message-Authenticator" in e["msg"] for e in radius_lines)  # the wrong secret

    # One access line per HTTP request, with the id the client sent and the token's name.
    access = by_logger["radius_contracts.api.access"]
    assert "uvicorn.access" not in by_logger
    by_id = {e["request_id"]: e for e in access}
    assert len(by_id) == len(access)
    for request_id in api.sent:
        line = by_id[request_id]
        assert line["token_name"] == "cli-admin" and "?" not in line["path"]
        assert isinstance(line["status"], int) and line["duration_ms"] >= 0
    assert {by_id[r]["status"] for r in api.sent} >= {200, 201, 422}
    assert by_id[reader_api.sent[0]]["token_name"] == "cli-reader"
    ready = next(e for e in by_logger["radius_contracts.daemon"] if "ready" in e["msg"])
    if run.config.read_text().count("postgresql"):
        assert ":***@" in ready["msg"]
