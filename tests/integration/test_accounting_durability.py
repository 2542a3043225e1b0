"""An Accounting-Response means the record is in the database: across a database that refuses
writes, and across `kill -9` of the daemon in the middle of accounting load."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import RunningDaemon, make_settings, start_daemon, stop_daemon
from radius_client import RadiusClient, attr
from radius_contracts.radius import codec
from served import Served, free_port

SECRET = "durability-secret"


def add_loopback_nas(base_url: str, token: str) -> None:
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    with api:
        makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
        body = {
            "name": "lo",
            "address": "127.0.0.1",
            "secret": SECRET,
            "manufacturer_id": next(m["id"] for m in makers if m["name"] == "MikroTik"),
        }
        response = api.post("/api/v1/nas", json=body)
        assert response.status_code == 201, response.text


# -- the database refuses writes -------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["no-spool", "spool"])
def own_daemon(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningDaemon]:
    settings = make_settings(tmp_path / "state", None)
    accounting = settings.accounting.model_copy(update={"spool": request.param})
    running, thread = start_daemon(settings.model_copy(update={"accounting": accounting}))
    add_loopback_nas(running.base_url, running.admin_token)
    yield running
    stop_daemon(running, thread)


def test_database_refusing_writes(own_daemon: RunningDaemon) -> None:
    """Without a spool: no answer until stored. With one: answered once spooled, then stored
    when the database takes writes again."""
    daemon = own_daemon.daemon
    assert daemon.acct_port is not None and daemon.accounting is not None
    spool = own_daemon.settings.accounting.spool
    database = own_daemon.settings.state_dir / "radius-contracts.db"
    with RadiusClient(daemon.acct_port, SECRET) as client:
        start = client.accounting_request(
            attr("Acct-Status-Type", "Start"),
            attr("Acct-Session-Id", "LOCKED-1"),
            attr("User-Name", "someone"),
        )
        # Another process holds the write lock longer than the daemon waits for it (5 s).
        blocker = sqlite3.connect(database, isolation_level=None, timeout=1)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            client.send_raw(start)
            if spool:
                reply = client.receive(15)
                assert reply is not None and reply[0] == codec.Code.ACCOUNTING_RESPONSE
                assert daemon.accounting.spooled == 1 and daemon.accounting.failed == 0
            else:
                deadline = time.monotonic() + 15
                while daemon.accounting.failed == 0 and time.monotonic() < deadline:
                    assert client.receive(0.2) is None  # never acknowledged while not stored
                assert daemon.accounting.failed == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        if spool:
            deadline = time.monotonic() + 15
            while daemon.accounting.spooling and time.monotonic() < deadline:
                time.sleep(0.1)
            assert daemon.accounting.replayed == 1
        else:
            # The NAS retransmits: now it is stored and answered.
            client.send_raw(start)
            reply = client.receive(5)
            assert reply is not None and reply[0] == codec.Code.ACCOUNTING_RESPONSE
    rows = sqlite3.connect(database).execute(
        "SELECT count(*) FROM sessions WHERE acct_session_id = 'LOCKED-1'"
    )
    assert rows.fetchone() == (1,)


# -- kill -9 under load ----------------------------------------------------------------------


class AccountingLoad:
    """Sends Start and Stop for new sessions as fast as answers come; remembers the answered."""

    def __init__(self, port: int, window: int = 64) -> None:
        self.client = RadiusClient(port, SECRET, timeout=0.05)
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
                codec.decode(data), SECRET.encode(), authenticator
            ):
                continue
            del self._in_flight[data[1]]
            self.answered.setdefault(session, {})[kind] = 1 if kind == "start" else octets


def test_kill_9_under_load_loses_no_acknowledged_record(tmp_path: Path) -> None:
    api_port, acct_port = free_port(), free_port(socket.SOCK_DGRAM)
    config = tmp_path / "rc.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f"[api]\nport = {api_port}\n"
        f'[radius]\nbind = "127.0.0.1"\nauth_port = {free_port(socket.SOCK_DGRAM)}\n'
        f"acct_port = {acct_port}\n"
    )
    daemon = Served(config, api_port)
    token = (tmp_path / "state" / "admin-token").read_text().strip()
    add_loopback_nas(daemon.base_url, token)
    load = AccountingLoad(acct_port)
    try:
        load.start()
        time.sleep(2.0)
        daemon.kill()
        time.sleep(0.3)
    finally:
        load.finish()
        if daemon.process.poll() is None:
            daemon.kill()
    answered = load.answered
    assert len(answered) > 100, "the load never got going"

    restarted = Served(config, api_port)
    try:
        database = tmp_path / "state" / "radius-contracts.db"
        with sqlite3.connect(database) as db:
            rows: dict[str, list[Any]] = {}
            for sid, stopped, octets in db.execute(
                "SELECT acct_session_id, stopped_at, input_octets FROM sessions "
                "WHERE acct_session_id LIKE 'CRASH-%'"
            ):
                rows.setdefault(sid, []).append((stopped, octets))
    finally:
        restarted.stop()
    lost, doubled = [], []
    for session, kinds in answered.items():
        stored = rows.get(session, [])
        if len(stored) > 1:
            doubled.append(session)
            continue
        stop_kept = "stop" not in kinds or (stored and stored[0] == (stored[0][0], kinds["stop"]))
        if not stored or not stop_kept or ("stop" in kinds and stored[0][0] is None):
            lost.append(session)
    assert lost == [] and doubled == [], (lost[:10], doubled[:10])
    print(f"{len(answered)} sessions acknowledged before kill -9; all stored once")
