"""The periodic session jobs against a real daemon: stale sessions close, old history goes,
unconfirmed leases expire."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from conftest import RunningDaemon, start_daemon, stop_daemon
from radius_client import RadiusClient, attr
from radius_contracts.db.writer import WriteLock
from radius_contracts.settings import load_settings

SECRET = "jobs-nas-secret"


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[RunningDaemon]:
    """A daemon asking for Interim-Updates every 2 s, so sessions go stale after 3 s."""
    settings = load_settings(
        None,
        state_dir=tmp_path / "state",
        api={"host": "127.0.0.1", "port": 0},
        radius={"bind": "127.0.0.1", "auth_port": 0, "acct_port": 0, "reject_delay": 0},
        accounting={"interim_interval": 2, "stale_after": 1.5, "history_days": 1},
        pools={"offer_timeout": 5},
    )
    running, thread = start_daemon(settings)
    api = running.client(running.admin_token)
    makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
    body = {
        "name": "lo",
        "address": "127.0.0.1",
        "secret": SECRET,
        "manufacturer_id": next(m["id"] for m in makers if m["name"] == "MikroTik"),
    }
    assert api.post("/api/v1/nas", json=body).status_code == 201
    yield running
    stop_daemon(running, thread)


def send(daemon: RunningDaemon, *attributes: bytes) -> None:
    assert daemon.daemon.acct_port is not None
    with RadiusClient(daemon.daemon.acct_port, SECRET) as client:
        assert client.exchange(client.accounting_request(*attributes)) is not None


def rows(daemon: RunningDaemon, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(daemon.settings.state_dir / "radius-contracts.db") as db:
        return list(db.execute(sql))


def test_stale_sessions_close_and_old_history_goes(quick: RunningDaemon) -> None:
    jobs = quick.daemon.session_jobs
    assert jobs is not None
    for sid in ("FRESH", "STALE"):
        send(quick, attr("Acct-Status-Type", "Start"), attr("Acct-Session-Id", sid),
             attr("User-Name", "someone"))  # fmt: skip
    # A session that ended two days ago (the NAS could not deliver its Stop until now).
    send(
        quick,
        attr("Acct-Status-Type", "Stop"),
        attr("Acct-Session-Id", "OLD"),
        attr("User-Name", "someone"),
        attr("Acct-Delay-Time", str(2 * 86400)),
    )
    time.sleep(3.5)
    send(quick, attr("Acct-Status-Type", "Interim-Update"), attr("Acct-Session-Id", "FRESH"),
         attr("User-Name", "someone"))  # fmt: skip
    assert quick.run(jobs.close_stale()) == 1
    states = dict(
        rows(quick, "SELECT acct_session_id, terminate_cause FROM sessions WHERE stopped_at "
                    "IS NOT NULL OR acct_session_id = 'FRESH'")
    )  # fmt: skip
    assert states["STALE"] == "Stale" and states["FRESH"] is None
    assert quick.run(jobs.purge_history()) == 1
    left = {sid for (sid,) in rows(quick, "SELECT acct_session_id FROM sessions")}
    assert left == {"FRESH", "STALE"}


def test_a_turn_with_nothing_to_do_takes_no_write_lock(
    quick: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stale sessions and lease expiry look first: a write transaction would hold SQLite's
    write lock (and the accounting writer behind it) for nothing, every turn."""
    jobs, leaser = quick.daemon.session_jobs, quick.daemon.leaser
    assert jobs is not None and leaser is not None
    send(quick, attr("Acct-Status-Type", "Start"), attr("Acct-Session-Id", "LIVE"),
         attr("User-Name", "someone"))  # fmt: skip
    taken: list[asyncio.Task[object] | None] = []
    original = WriteLock.held

    @asynccontextmanager
    async def counted(self: WriteLock) -> AsyncIterator[None]:
        taken.append(asyncio.current_task())
        async with original(self):
            yield

    monkeypatch.setattr(WriteLock, "held", counted)

    async def turn() -> tuple[int, int, asyncio.Task[object] | None]:
        return await jobs.close_stale(), await leaser.expire(), asyncio.current_task()

    closed, expired, task = quick.run(turn())
    assert (closed, expired) == (0, 0)
    assert task not in taken  # other writers of the daemon may have come and gone meanwhile
    # and once there is something to do, it is done (the lock taken)
    time.sleep(3.5)
    closed, _, task = quick.run(turn())
    assert closed == 1 and task in taken


def test_an_unconfirmed_lease_expires(quick: RunningDaemon) -> None:
    api = quick.client(quick.admin_token)
    pool = api.post(
        "/api/v1/radius/pools",
        json={"name": "tiny", "family": "ipv4", "ranges": ["100.127.0.0/30"], "mode": "managed"},
    ).json()
    for name in ("first", "second"):
        body = {"number": name, "config": {"username": name, "password": "pw",
                                           "pool_name_ipv4": "tiny"}}  # fmt: skip
        assert api.post("/api/v1/contracts", json=body).status_code == 201
    assert quick.daemon.auth_port is not None
    with RadiusClient(quick.daemon.auth_port, SECRET) as client:
        for name in ("first", "second"):
            reply = client.exchange(client.access_request(name, "pw"))
            assert reply is not None and reply.accepted
        assert api.get(f"/api/v1/radius/pools/{pool['id']}/usage").json()["free"] == 0
        # No Accounting-Start within offer_timeout (5 s): the leases lapse and the job says so.
        time.sleep(5.5)
        leaser = quick.daemon.leaser
        assert leaser is not None
        assert quick.run(leaser.expire()) == 2
        usage = httpx.get(
            f"{quick.base_url}/api/v1/radius/pools/{pool['id']}/usage",
            headers={"Authorization": f"Bearer {quick.admin_token}"},
        ).json()
        assert usage["free"] == 2 and usage["held"] == 0
