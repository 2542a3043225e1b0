"""SIGTERM against `radius-contracts serve` as a child process: it stops taking requests,
commits and answers what it took, finishes CoA in flight, and exits 0 within its budget.

Every Accounting-Request that got an Accounting-Response is in the database afterwards
(RFC 2866 §2); none is acknowledged that was not stored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from coa_server import CoaServer
from radius_client import RadiusClient, attr
from radius_contracts.daemon import SHUTDOWN_BUDGET
from served import Served
from support import LOOPBACK_SECRET as SECRET
from support import AccountingLoad, add_loopback_nas, base_config, radius_section

# The process also starts Python and closes its database after the budget: allow for that.
EXIT_WITHIN = SHUTDOWN_BUDGET + 5.0


def query(url: str | None, state: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` from the daemon's database (its SQLite file, or PostgreSQL)."""
    if url is None:
        with sqlite3.connect(state / "radius-contracts.db") as db:
            return list(db.execute(sql))

    async def fetch() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(fetch())


def serve_with_load(
    tmp_path: Path, database_url: str | None, extra: str = ""
) -> tuple[Served, Path, AccountingLoad]:
    """`serve` as a child logging to a file, with the loopback NAS, and an accounting load
    ready to start."""
    base, ports = base_config(tmp_path, database_url)
    config = tmp_path / "rc.toml"
    config.write_text(base + radius_section(ports) + extra)
    log = tmp_path / "serve.log"
    served = Served(config, ports["api"], log)
    token = (tmp_path / "state" / "admin-token").read_text().strip()
    add_loopback_nas(served.base_url, token)
    return served, log, AccountingLoad(ports["acct"])


def terminate(served: Served) -> tuple[int, float]:
    """SIGTERM; the exit code and how long the process took to exit."""
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    try:
        code = served.process.wait(EXIT_WITHIN + 10)
    finally:
        if served.process.poll() is None:
            served.process.kill()
    return code, time.monotonic() - started


def stopped_cleanly(log: Path, code: int, took: float) -> str:
    """The child's log, once it is known to have exited 0, within the budget, without a
    traceback."""
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert took < EXIT_WITHIN, took
    assert "Traceback" not in text
    return text


def test_sigterm_under_accounting_load_stores_every_acknowledged_record(
    tmp_path: Path, database_url: str | None
) -> None:
    served, log, load = serve_with_load(tmp_path, database_url)
    try:
        load.start()
        time.sleep(1.5)
        code, took = terminate(served)
        time.sleep(0.3)  # replies still on their way to the load's socket
    finally:
        load.finish()
        if served.process.poll() is None:
            served.process.kill()
    text = stopped_cleanly(log, code, took)
    assert "radius-contracts stopped" in text
    answered = load.answered
    assert len(answered) > 100, "the load never got going"

    stored: dict[str, list[tuple[Any, int]]] = {}
    for sid, stopped, octets in query(
        database_url,
        tmp_path / "state",
        "SELECT acct_session_id, stopped_at, input_octets FROM sessions "
        "WHERE acct_session_id LIKE 'CRASH-%'",
    ):
        stored.setdefault(sid, []).append((stopped, octets))
    lost = []
    for session, kinds in answered.items():
        rows = stored.get(session, [])
        if len(rows) != 1:
            lost.append((session, kinds, rows))
            continue
        stopped, octets = rows[0]
        if "stop" in kinds and (stopped is None or octets != kinds["stop"]):
            lost.append((session, kinds, rows))
    assert lost == [], lost[:10]
    print(f"{len(answered)} sessions acknowledged, all stored; stopped in {took:.2f}s")


def test_sigterm_finishes_a_coa_in_flight_to_a_slow_nas(
    tmp_path: Path, database_url: str | None
) -> None:
    base, ports = base_config(tmp_path, database_url)
    config = tmp_path / "rc.toml"
    # A silent NAS is given up on after 0.5 + 1 + 2 s: well within the shutdown budget.
    config.write_text(base + radius_section(ports) + "[coa]\ntimeout = 0.5\ntries = 3\n")
    log = tmp_path / "serve.log"
    nas_address = "127.0.0.5"
    with CoaServer(SECRET.encode(), mode="silent", host=nas_address) as nas:
        served = Served(config, ports["api"], log)
        try:
            token = (tmp_path / "state" / "admin-token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=served.base_url, headers=headers, timeout=30) as api:
                session_id = _online_session(api, ports["acct"], nas_address, nas.port)
                response = api.post(f"/api/v1/sessions/{session_id}/disconnect")
                assert response.status_code == 202, response.text
            deadline = time.monotonic() + 10
            while not nas.received:
                assert time.monotonic() < deadline, "the Disconnect-Request never came"
                time.sleep(0.02)
            code, took = terminate(served)
        finally:
            if served.process.poll() is None:
                served.process.kill()
    text = stopped_cleanly(log, code, took)
    # The request was retried to the end, not cut off, and its outcome recorded.
    assert len(set(nas.received)) == 1 and len(nas.received) == 3
    rows = query(
        database_url,
        tmp_path / "state",
        f"SELECT kind, outcome, attempts FROM coa_log WHERE session_id = {session_id}",
    )
    assert rows == [("disconnect", "timeout", 3)], (rows, text[-3000:])
    print(f"CoA in flight timed out and was logged; stopped in {took:.2f}s")


def _online_session(api: httpx.Client, acct_port: int, address: str, coa_port: int) -> int:
    """A contract with a session online at a NAS at ``address`` whose CoA port is ``coa_port``."""
    makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
    body = {
        "name": "slow-nas",
        "address": address,
        "secret": SECRET,
        "manufacturer_id": next(m["id"] for m in makers if m["name"] == "MikroTik"),
        "coa_port": coa_port,
    }
    assert api.post("/api/v1/nas", json=body).status_code == 201
    contract = {"number": "C-slow", "config": {"username": "slow-user", "password": "pw-slow"}}
    created = api.post("/api/v1/contracts", json=contract)
    assert created.status_code == 201, created.text
    with RadiusClient(acct_port, SECRET, source=address) as radius:
        start = radius.accounting_request(
            attr("Acct-Status-Type", "Start"),
            attr("Acct-Session-Id", "SLOW-1"),
            attr("User-Name", "slow-user"),
            attr("NAS-IP-Address", ipaddress.ip_address(address).packed),
        )
        assert radius.exchange(start) is not None
    sessions = api.get("/api/v1/sessions", params={"online": True}).json()["items"]
    [session] = [s for s in sessions if s["acct_session_id"] == "SLOW-1"]
    return int(session["id"])


class DatabaseLock:
    """Another client holding the sessions table locked, so no accounting commit can finish."""

    def __init__(self, url: str | None, state: Path) -> None:
        self._url, self._state = url, state
        self._release = threading.Event()
        self._held = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def __enter__(self) -> DatabaseLock:
        self._thread.start()
        assert self._held.wait(10), "could not take the lock"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._release.set()
        self._thread.join(10)

    def _hold(self) -> None:
        if self._url is None:
            db = sqlite3.connect(self._state / "radius-contracts.db", isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            self._held.set()
            self._release.wait(120)
            db.execute("ROLLBACK")
            db.close()
            return
        asyncio.run(self._hold_pg(self._url))

    async def _hold_pg(self, url: str) -> None:
        connection = await asyncpg.connect(url)
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
                self._held.set()
                await asyncio.to_thread(self._release.wait, 120)
        finally:
            await connection.close()


def test_sigterm_with_a_backlog_that_cannot_commit_acknowledges_none_of_it(
    tmp_path: Path, database_url: str | None
) -> None:
    # Without the local spool (its own tests cover it): here the writer alone decides.
    served, log, load = serve_with_load(tmp_path, database_url, "[accounting]\nspool = false\n")
    try:
        load.start()
        time.sleep(1.0)
        with DatabaseLock(database_url, tmp_path / "state"):
            time.sleep(0.5)  # a backlog builds behind the lock
            answered_before = len(load.answered)
            # The lock outlives the budget: the queued records can never be committed.
            code, took = terminate(served)
    finally:
        load.finish()
        if served.process.poll() is None:
            served.process.kill()
    text = stopped_cleanly(log, code, took)
    # SQLite gives up on the lock after its busy timeout (the batch fails, unanswered);
    # PostgreSQL waits on it, so the budget runs out and the queue is given up unanswered.
    assert "unanswered" in text, text[-3000:]
    assert answered_before > 50, "the load never got going"
    stored = {
        sid
        for (sid,) in query(
            database_url,
            tmp_path / "state",
            "SELECT acct_session_id FROM sessions WHERE acct_session_id LIKE 'CRASH-%'",
        )
    }
    unstored = [session for session in load.answered if session not in stored]
    assert unstored == [], unstored[:10]
    print(f"{len(load.answered)} acknowledged, all stored; stopped in {took:.2f}s")
