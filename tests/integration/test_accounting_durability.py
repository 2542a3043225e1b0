"""An Accounting-Response means the record is in the database: across a database that refuses
writes, and across `kill -9` of the daemon in the middle of accounting load."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import RunningDaemon, make_settings, start_daemon, stop_daemon
from radius_client import RadiusClient, attr
from radius_contracts.radius import codec
from served import Served, free_port
from support import LOOPBACK_SECRET as SECRET
from support import AccountingLoad, add_loopback_nas

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
