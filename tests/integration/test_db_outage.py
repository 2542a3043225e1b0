"""The database goes away mid-load: authentication goes on from the index, accounting goes to
the local spool (answered once fsync'd there) and reaches the database in order, once, when it
is back; the API answers 503 and /readyz says why.

PostgreSQL is reached through a TCP proxy the test cuts (tests/tcp_proxy.py): to the daemon
that is a server gone away, without stopping the PostgreSQL the rest of the suite shares.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from conftest import (
    Factory,
    RunningDaemon,
    add_nas,
    admin_sql,
    make_settings,
    start_daemon,
    stop_daemon,
)
from radius_client import RadiusClient, attr
from radius_contracts.radius import codec
from radius_contracts.settings import Settings
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

SECRET = "outage-nas-secret"


@dataclass
class Outage:
    proxy: TcpProxy
    direct_url: str  # asyncpg URL straight to the database, for checking what it holds
    proxied_url: str  # what the daemon uses
    tmp_path: Path

    def settings(self) -> Settings:
        settings = make_settings(self.tmp_path / "state", self.proxied_url)
        database = settings.database.model_copy(
            update={"connect_timeout": 2.0, "statement_timeout": 2.0}
        )
        return settings.model_copy(update={"database": database})


@pytest.fixture
def outage(postgres_url: str, tmp_path: Path) -> Iterator[Outage]:
    name = f"rc_outage_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    server = make_url(postgres_url)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    port = proxy.start()
    direct = server.set(database=name)
    proxied = direct.set(drivername="postgresql+asyncpg", host="127.0.0.1", port=port)
    proxied_url = proxied.render_as_string(hide_password=False)
    try:
        yield Outage(proxy, direct.render_as_string(hide_password=False), proxied_url, tmp_path)
    finally:
        proxy.stop()
        asyncio.run(admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Nas:
    """Sends accounting like a NAS: each request retransmitted until answered (or given up)."""

    def __init__(self, port: int, tries: int = 5) -> None:
        self.client = RadiusClient(port, SECRET, timeout=1.0)
        self.tries = tries
        self.acked: dict[str, dict[str, int]] = {}  # session → {"start"|"interim"|"stop": octets}
        self.unanswered = 0

    def send(self, session: str, kind: str, octets: int = 0) -> bool:
        status = {"start": "Start", "interim": "Interim-Update", "stop": "Stop"}[kind]
        attributes = [
            attr("Acct-Status-Type", status),
            attr("Acct-Session-Id", session),
            attr("User-Name", "outage-user"),
        ]
        if kind != "start":
            attributes += [attr("Acct-Session-Time", "60"), attr("Acct-Input-Octets", str(octets))]
        packet = self.client.accounting_request(*attributes)
        for _try in range(self.tries):
            reply = self.client.exchange(packet, timeout=1.0)
            if reply is not None:
                assert reply.code == codec.Code.ACCOUNTING_RESPONSE
                self.acked.setdefault(session, {})[kind] = octets
                return True
        self.unanswered += 1
        return False

    def close(self) -> None:
        self.client.close()


async def stored_sessions(url: str) -> dict[str, list[dict[str, Any]]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT acct_session_id, input_octets, stopped_at FROM sessions "
            "WHERE username = 'outage-user'"
        )
    finally:
        await connection.close()
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["acct_session_id"], []).append(dict(row))
    return found


def check_stored(nas: Nas | WindowedNas, url: str) -> None:
    """Every acknowledged record is in the database, once: 0 lost, 0 duplicated."""
    stored = asyncio.run(stored_sessions(url))
    assert sorted(stored) == sorted(nas.acked), "sessions acknowledged ≠ sessions stored"
    for session, acked in nas.acked.items():
        rows = stored[session]
        assert len(rows) == 1, f"{session} stored {len(rows)} times"
        row = rows[0]
        assert row["input_octets"] == max(acked.values()), session
        assert (row["stopped_at"] is not None) == ("stop" in acked), session


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def readyz(running: RunningDaemon) -> httpx.Response:
    return httpx.get(f"{running.base_url}/readyz", timeout=10)


def test_outage_mid_load_loses_no_acknowledged_record(outage: Outage) -> None:
    running, thread = start_daemon(outage.settings())
    nas: Nas | None = None
    try:
        api = running.client(running.admin_token)
        add_nas(api, SECRET, name="outage-lo")
        password = "pw-" + secrets.token_hex(6)  # write-only: the API never returns it
        contract = Factory(api).contract(config={"password": password})
        username = contract["config"]["username"]
        daemon = running.daemon
        assert daemon.acct_port and daemon.auth_port and daemon.accounting is not None
        nas = Nas(daemon.acct_port)
        for n in range(60):
            assert nas.send(f"S-{n}", "start")
        assert daemon.accounting.spooled == 0
        single_password = "pw-" + secrets.token_hex(6)  # simultaneous_use 1, the default
        single = Factory(api).contract(config={"password": single_password})["config"]

        outage.proxy.cut()
        # Authentication: from the index, without the database.
        with RadiusClient(daemon.auth_port, SECRET) as radius:
            accept = radius.exchange(radius.access_request(username, password))
            reject = radius.exchange(radius.access_request(username, "wrong"), 5)
        assert accept is not None and accept.accepted
        assert reject is not None and reject.code == codec.Code.ACCESS_REJECT
        # Simultaneous use: a session that started during the outage (its Start is in the
        # spool) still keeps a second device out.
        with RadiusClient(daemon.acct_port, SECRET) as radius:
            start = radius.accounting_request(
                attr("Acct-Status-Type", "Start"),
                attr("Acct-Session-Id", "SINGLE-1"),
                attr("User-Name", single["username"]),
                attr("Calling-Station-Id", "02:00:00:00:00:01"),
            )
            assert radius.exchange(start) is not None
        with RadiusClient(daemon.auth_port, SECRET) as radius:
            second = radius.exchange(
                radius.access_request(
                    single["username"],
                    single_password,
                    attr("Calling-Station-Id", "02:00:00:00:00:02"),
                ),
                5,
            )
        assert second is not None and second.code == codec.Code.ACCESS_REJECT
        # Accounting: to the spool, answered. Interims for sessions started before, whole
        # sessions during.
        for n in range(60):
            assert nas.send(f"S-{n}", "interim", 1_000 + n)
        for n in range(60, 120):
            assert nas.send(f"S-{n}", "start")
            assert nas.send(f"S-{n}", "stop", 5_000 + n)
        assert daemon.accounting.spooled == 181
        assert daemon.accounting.spool_pending > 0
        # The API: 503 problem+json with Retry-After, never a 500.
        for response in (
            api.get("/api/v1/contracts"),
            api.patch(f"/api/v1/contracts/{contract['id']}", json={"status": "suspended"}),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["retry-after"] == "5"
            assert response.json()["detail"] == "the database is unreachable"
        answer = readyz(running)
        assert answer.status_code == 503
        body = answer.json()
        assert body["reason"].startswith("database unreachable"), body
        assert body["accounting"]["mode"] == "spooling"
        assert body["accounting"]["spooled"] > 0
        assert body["authentication"]["contracts_in_index"] >= 1

        outage.proxy.restore()
        # Records keep coming while the spool is replayed: they queue behind it, in order.
        for n in range(60):
            assert nas.send(f"S-{n}", "stop", 2_000 + n)
        for n in range(120, 160):
            assert nas.send(f"S-{n}", "start")
        wait_for(
            lambda: not daemon.accounting.spooling and daemon.accounting.spool_pending == 0,
            60,
            "the spool replayed into the database",
        )
        assert nas.unanswered == 0
        check_stored(nas, outage.direct_url)
        assert daemon.accounting.replayed >= 181
        assert daemon.accounting.discarded == 0
        answer = readyz(running)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accounting"] == {"mode": "database", "spooled": 0}
        assert api.get("/api/v1/contracts").status_code == 200
        spool = outage.tmp_path / "state" / "accounting-spool"
        assert not list(spool.glob("*.jsonl")), "replayed segments are deleted"
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(
                httpx.get(f"{running.base_url}/metrics").text
            )
            for sample in family.samples
        }
        prefix = "radius_contracts_accounting_"
        spooled = daemon.accounting.spooled  # 181, and what came while the spool was replayed
        assert spooled >= 181
        assert samples[(prefix + "records_total", (("fate", "spooled"),))] == spooled
        assert samples[(prefix + "spool_replay_total", (("result", "written"),))] == spooled
        assert samples[(prefix + "spool_replay_total", (("result", "discarded"),))] == 0
        assert samples[(prefix + "spool_records", ())] == 0
        assert samples[(prefix + "spooling", ())] == 0
    finally:
        if nas is not None:
            nas.close()
        outage.proxy.restore()
        stop_daemon(running, thread)


def test_spool_outlives_the_daemon(outage: Outage) -> None:
    """Spooled while the database is down, stopped, started again once it is back: replayed."""
    running, thread = start_daemon(outage.settings())
    api = running.client(running.admin_token)
    add_nas(api, SECRET, name="outage-lo")
    assert running.daemon.acct_port is not None
    nas = Nas(running.daemon.acct_port)
    try:
        outage.proxy.cut()
        for n in range(50):
            assert nas.send(f"R-{n}", "start")
            assert nas.send(f"R-{n}", "interim", 100 + n)
        started = time.monotonic()
    finally:
        nas.close()
        stop_daemon(running, thread)
    assert not thread.is_alive()
    assert time.monotonic() - started < 25, "shutdown while the database is down is bounded"
    spooled = list((outage.tmp_path / "state" / "accounting-spool").glob("*.jsonl"))
    assert spooled and sum(p.read_bytes().count(b"\n") for p in spooled) == 100

    outage.proxy.restore()
    running, thread = start_daemon(outage.settings())
    try:
        writer = running.daemon.accounting
        assert writer is not None
        wait_for(lambda: not writer.spooling, 30, "the spool left by the last run replayed")
        assert writer.replayed == 100
        check_stored(nas, outage.direct_url)
    finally:
        stop_daemon(running, thread)


class WindowedNas:
    """Accounting at full speed from a NAS with ``window`` requests in flight: each session a
    Start, then (once answered) a Stop. Unanswered requests are retransmitted (same bytes)
    every second, five times at most; answers are verified against their request."""

    def __init__(self, port: int, window: int = 32) -> None:
        self.client = RadiusClient(port, SECRET, timeout=0.02)
        self.secret = SECRET.encode()
        self.window = window
        self.phase = "before"
        self.acked: dict[str, dict[str, int]] = {}
        self.acked_by_phase: dict[str, int] = {}
        self.unanswered = 0
        self._in_flight: dict[int, tuple[bytes, str, str, int, float, int]] = {}
        self._stops: list[str] = []
        self._next = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        """Stop sending new requests; wait for the ones in flight (answered or given up)."""
        self._stop.set()
        self.thread.join(30)
        self.client.close()

    def _packet(self, session: str, kind: str, octets: int) -> bytes:
        attributes = [
            attr("Acct-Status-Type", "Start" if kind == "start" else "Stop"),
            attr("Acct-Session-Id", session),
            attr("User-Name", "outage-user"),
        ]
        if kind == "stop":
            attributes += [attr("Acct-Session-Time", "30"), attr("Acct-Input-Octets", str(octets))]
        while True:  # an Identifier not in flight
            packet = self.client.accounting_request(*attributes)
            if packet[1] not in self._in_flight:
                return packet

    def _send_new(self) -> None:
        if self._stops:
            session, kind = self._stops.pop(0), "stop"
            octets = int(session.split("-")[1]) * 7 + 1
        else:
            self._next += 1
            session, kind, octets = f"L-{self._next}", "start", 0
        packet = self._packet(session, kind, octets)
        self._in_flight[packet[1]] = (packet, session, kind, octets, time.monotonic(), 1)
        self.client.send_raw(packet)

    def _run(self) -> None:
        deadline = time.monotonic() + 60  # bounded whatever happens
        while time.monotonic() < deadline and (self._in_flight or not self._stop.is_set()):
            while not self._stop.is_set() and len(self._in_flight) < self.window:
                self._send_new()
            data = self.client.receive(0.02)
            if data is not None:
                self._answered(data)
            now = time.monotonic()
            for identifier, (packet, session, kind, octets, sent, tries) in list(
                self._in_flight.items()
            ):
                if now - sent < 1.0:
                    continue
                if tries >= 5:
                    del self._in_flight[identifier]
                    self.unanswered += 1
                    continue
                self._in_flight[identifier] = (packet, session, kind, octets, now, tries + 1)
                self.client.send_raw(packet)

    def _answered(self, data: bytes) -> None:
        entry = self._in_flight.get(data[1])
        if entry is None:
            return
        packet, session, kind, octets, _sent, _tries = entry
        reply = codec.decode(data)
        if not codec.verify_response_authenticator(reply, self.secret, packet[4:20]):
            return  # an answer to an earlier request that had this Identifier
        del self._in_flight[data[1]]
        assert reply.code == codec.Code.ACCOUNTING_RESPONSE
        self.acked.setdefault(session, {})[kind] = octets
        self.acked_by_phase[self.phase] = self.acked_by_phase.get(self.phase, 0) + 1
        if kind == "start":
            self._stops.append(session)


def test_database_stopped_and_restarted_under_load(outage: Outage) -> None:
    """Accounting flows without pause across the outage, and every answer is kept."""
    running, thread = start_daemon(outage.settings())
    load: WindowedNas | None = None
    try:
        add_nas(running.client(running.admin_token), SECRET)
        daemon = running.daemon
        assert daemon.acct_port is not None and daemon.accounting is not None
        load = WindowedNas(daemon.acct_port)
        load.start()
        time.sleep(1.5)
        load.phase = "during"
        outage.proxy.cut()
        time.sleep(3.0)
        load.phase = "after"
        outage.proxy.restore()
        time.sleep(2.0)
        load.finish()
        writer = daemon.accounting
        wait_for(lambda: not writer.spooling, 60, "the spool replayed")
        counts = load.acked_by_phase
        print(f"acknowledged: {counts}, unanswered: {load.unanswered}, "
              f"spooled {writer.spooled}, replayed {writer.replayed}")  # fmt: skip
        assert counts.get("before", 0) > 50 and counts.get("during", 0) > 50, counts
        assert counts.get("after", 0) > 50, counts
        assert load.unanswered == 0
        check_stored(load, outage.direct_url)
    finally:
        if load is not None and load.thread.is_alive():
            load.finish()
        outage.proxy.restore()
        stop_daemon(running, thread)


def test_unreachable_database_mid_query(outage: Outage) -> None:
    """The database's host vanishes (nothing answers, nothing is reset): the statement and
    connect timeouts end every wait, accounting goes to the spool, the API answers 503."""
    running, thread = start_daemon(outage.settings())
    nas: Nas | None = None
    try:
        api = running.client(running.admin_token)
        add_nas(api, SECRET, name="outage-lo")
        password = "pw-" + secrets.token_hex(6)
        username = Factory(api).contract(config={"password": password})["config"]["username"]
        daemon = running.daemon
        assert daemon.acct_port and daemon.auth_port and daemon.accounting is not None
        nas = Nas(daemon.acct_port, tries=15)  # a NAS patient enough for the timeouts
        for n in range(10):
            assert nas.send(f"U-{n}", "start")

        outage.proxy.hang()
        started = time.monotonic()
        assert nas.send("U-10", "start")  # waits out the statement timeout, then is spooled
        first = time.monotonic() - started
        with RadiusClient(daemon.auth_port, SECRET) as radius:
            accept = radius.exchange(radius.access_request(username, password))
        assert accept is not None and accept.accepted
        for n in range(11, 40):
            assert nas.send(f"U-{n}", "start")
            assert nas.send(f"U-{n}", "stop", 100 + n)
        started = time.monotonic()
        response = api.get("/api/v1/contracts")
        api_wait = time.monotonic() - started
        assert response.status_code == 503, response.text
        answer = readyz(running)
        assert answer.status_code == 503
        assert answer.json()["accounting"]["mode"] == "spooling"
        print(f"unreachable: first Accounting-Response after {first:.1f} s, API 503 after "
              f"{api_wait:.1f} s, readyz: {answer.json()['reason']}")  # fmt: skip
        assert first < 10 and api_wait < 15

        outage.proxy.restore()
        for n in range(40, 50):
            assert nas.send(f"U-{n}", "start")
        writer = daemon.accounting
        wait_for(lambda: not writer.spooling, 60, "the spool replayed")
        assert nas.unanswered == 0
        check_stored(nas, outage.direct_url)
        assert api.get("/api/v1/contracts").status_code == 200
    finally:
        if nas is not None:
            nas.close()
        outage.proxy.restore()
        stop_daemon(running, thread)
