"""Helpers several test files share: API problem bodies, the CLI as an operator runs it, config
files for `radius-contracts serve` as a child process, and an accounting load that remembers
what was acknowledged. Fixtures shared the same way live in conftest.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from radius_client import RadiusClient, attr
from radius_contracts.radius import codec
from served import free_port

CLI = [sys.executable, "-m", "radius_contracts"]

# -- the API ----------------------------------------------------------------------------------


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict:
    """The RFC 9457 problem body of ``response``, checked: ``status``, a title, a detail, and
    the ``field`` it names when one is given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


# -- the CLI ----------------------------------------------------------------------------------


def run_cli(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``radius-contracts ARGS`` in a child process, without the test's RADIUS_CONTRACTS_* env."""
    argv = [*CLI, *args] + (["--config", str(config)] if config else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)


# -- config files for `serve` as a child process ----------------------------------------------


def base_config(tmp_path: Path, database_url: str | None) -> tuple[str, dict[str, int]]:
    """The config's state, database and API sections, and the free ports it and
    :func:`radius_section` use (``api``, ``auth``, ``acct``)."""
    ports = {
        "api": free_port(),
        "auth": free_port(socket.SOCK_DGRAM),
        "acct": free_port(socket.SOCK_DGRAM),
    }
    text = f'state_dir = "{tmp_path / "state"}"\n'
    if database_url:
        text += f'[database]\nurl = "{database_url}"\n'
    text += f"[api]\nport = {ports['api']}\n"
    return text, ports


def radius_section(ports: dict[str, int], **keys: Any) -> str:
    lines = [
        "[radius]",
        'bind = "127.0.0.1"',
        f"auth_port = {ports['auth']}",
        f"acct_port = {ports['acct']}",
    ]
    for key, value in keys.items():
        lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (strings, paths, booleans, numbers, lists of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return str(value)


# -- accounting under load --------------------------------------------------------------------

LOOPBACK_SECRET = "durability-secret"


def add_loopback_nas(base_url: str, token: str) -> None:
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    with api:
        makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
        body = {
            "name": "lo",
            "address": "127.0.0.1",
            "secret": LOOPBACK_SECRET,
            "manufacturer_id": next(m["id"] for m in makers if m["name"] == "MikroTik"),
        }
        response = api.post("/api/v1/nas", json=body)
        assert response.status_code == 201, response.text


class AccountingLoad:
    """Sends Start and Stop for new sessions as fast as answers come; remembers the answered."""

    def __init__(self, port: int, window: int = 64) -> None:
        self.client = RadiusClient(port, LOOPBACK_SECRET, timeout=0.05)
        self.window = window
        self.answered: dict[str, dict[str, int]] = {}  # session id → {"start": 1, "stop": octets}
        # Identifier → (session, kind, octets, Request Authenticator)
        self._in_flight: dict[int, tuple[str, str, int, bytes]] = {}
        self._sent = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self._stop.set()
        self.thread.join(10)
        self.client.close()

    def _request(self) -> bytes:
        self._sent += 1
        number = self._sent
        session = f"CRASH-{number // 2}"
        kind = "start" if number % 2 == 0 else "stop"
        octets = number * 7
        attributes = [
            attr("Acct-Status-Type", "Start" if kind == "start" else "Stop"),
            attr("Acct-Session-Id", session),
            attr("User-Name", "crash-test"),
        ]
        if kind == "stop":
            attributes += [attr("Acct-Session-Time", "5"), attr("Acct-Input-Octets", str(octets))]
        packet = self.client.accounting_request(*attributes)
        self._in_flight[packet[1]] = (session, kind, octets, packet[4:20])
        return packet

    def _run(self) -> None:
        deadline = time.monotonic() + 30  # bounded whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            while len(self._in_flight) < self.window and self._sent < 200_000:
                self.client.send_raw(self._request())
            data = self.client.receive(0.05)
            if data is None:
                self._in_flight.clear()  # the daemon is gone; start over with fresh ids
                continue
            found = self._in_flight.get(data[1])
            if found is None:
                continue
            session, kind, octets, authenticator = found
            # A late answer to a forgotten request with the same Identifier must not count
            # for this one: only a reply signed over this request's authenticator does.
            if not codec.verify_response_authenticator(
                codec.decode(data), LOOPBACK_SECRET.encode(), authenticator
            ):
                continue
            del self._in_flight[data[1]]
            self.answered.setdefault(session, {})[kind] = 1 if kind == "start" else octets
