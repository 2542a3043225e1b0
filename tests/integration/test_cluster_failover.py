"""A node killed -9 while a NAS sends logins and accounting through it: the NAS fails over to
the other node with the same packets, and nothing acknowledged is lost, nothing is counted
twice, and the simultaneous-use limit holds (two ``serve`` processes on one PostgreSQL)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from conftest import admin_sql
from radius_client import RadiusClient, attr
from radius_contracts.radius import codec
from served import Served, free_port

pytestmark = pytest.mark.postgres

SECRET = "failover-nas-secret-1"
SUBSCRIBERS = 300
THREADS = 6


@dataclass
class Subscriber:
    user: str
    station: str
    acked: list[str] = field(default_factory=list)  # steps answered, in order
    octets: int = 0  # the counters of the last answered Interim or Stop


class Nas:
    """A NAS with a primary and a secondary RADIUS server: each request goes to the primary
    until it stops answering, then (the same packet) to the secondary, as NAS fail over."""

    def __init__(self, primary: tuple[int, int], secondary: tuple[int, int]) -> None:
        self.servers = [primary, secondary]
        self.failed_over = threading.Event()

    def exchange(self, radius: RadiusClient, packet: bytes, auth: bool) -> codec.Packet | None:
        for index, ports in enumerate(self.servers):
            if index == 0 and self.failed_over.is_set():
                continue
            radius.port = ports[0] if auth else ports[1]
            for _try in range(3 if index == 0 else 6):
                radius.send_raw(packet)
                data = radius.receive(0.3 if index == 0 else 1.0)
                while data is not None and data[1] != packet[1]:
                    data = radius.receive(0.3)
                if data is not None:
                    return codec.decode(data)
            if index == 0:
                self.failed_over.set()
        return None


def _run(nas: Nas, subscribers: list[Subscriber], deadline: float) -> None:
    with RadiusClient(0, SECRET, source="127.0.0.44") as radius:
        for sub in subscribers:
            if time.monotonic() > deadline:
                return
            login = radius.access_request(
                sub.user, "pw-fo-1", attr("Calling-Station-Id", sub.station)
            )
            reply = nas.exchange(radius, login, auth=True)
            if reply is None or reply.code != codec.Code.ACCESS_ACCEPT:
                continue
            sub.acked.append("accept")
            session = f"FO-{secrets.token_hex(6)}"
            for step, status, octets in (
                ("start", "Start", 0),
                ("interim", "Interim-Update", 1000),
                ("interim", "Interim-Update", 5000),
                ("stop", "Stop", 9000),
            ):
                packet = radius.accounting_request(
                    attr("Acct-Status-Type", status),
                    attr("Acct-Session-Id", session),
                    attr("User-Name", sub.user),
                    attr("Calling-Station-Id", sub.station),
                    attr("Acct-Session-Time", str(octets // 1000)),
                    attr("Acct-Input-Octets", str(octets)),
                )
                if nas.exchange(radius, packet, auth=False) is None:
                    break
                sub.acked.append(step)
                sub.octets = octets


def test_a_node_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    name = f"rc_failover_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    url = f"{postgres_url.rpartition('/')[0]}/{name}"
    nodes: list[Served] = []
    try:
        ports = []
        for n in (1, 2):
            api_port = free_port()
            auth, acct = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
            state = tmp_path / f"node-{n}"
            state.mkdir()
            if n == 2:  # the database has its admin token: the one node-1 wrote down
                first_token = (tmp_path / "node-1" / "admin-token").read_text()
                (state / "admin-token").write_text(first_token)
            config_file = tmp_path / f"node-{n}.toml"
            config_file.write_text(
                f'state_dir = "{state}"\n[database]\nurl = "{url}"\n[api]\nport = {api_port}\n'
                f'[radius]\nbind = "127.0.0.1"\nauth_port = {auth}\nacct_port = {acct}\n'
                f'reject_delay = 0\n[scheduler]\nnode_name = "node-{n}"\n'
            )
            nodes.append(Served(config_file, api_port, tmp_path / f"node-{n}.log"))
            ports.append((auth, acct))
        token = (tmp_path / "node-1" / "admin-token").read_text().strip()
        api = httpx.Client(base_url=nodes[0].base_url, headers={"Authorization": f"Bearer {token}"})
        makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
        mikrotik = next(m["id"] for m in makers if m["name"] == "MikroTik")
        body = {"name": "bras", "address": "127.0.0.44", "secret": SECRET,
                "manufacturer_id": mikrotik}  # fmt: skip
        assert api.post("/api/v1/nas", json=body).status_code == 201
        subscribers = []
        for i in range(SUBSCRIBERS):
            user = f"fo-{i:04d}-{secrets.token_hex(2)}"
            config = {"username": user, "password": "pw-fo-1", "simultaneous_use": 1}
            created = api.post("/api/v1/contracts", json={"number": user, "config": config})
            assert created.status_code == 201
            station = "02:00:" + ":".join(secrets.token_hex(1) for _ in range(4))
            subscribers.append(Subscriber(user, station))
        time.sleep(1.0)  # node-2's index has them (the change feed)
        nas = Nas(ports[0], ports[1])
        deadline = time.monotonic() + 60
        shares = [subscribers[i::THREADS] for i in range(THREADS)]
        threads = [threading.Thread(target=_run, args=(nas, share, deadline)) for share in shares]
        for thread in threads:
            thread.start()
        # Kill once a tenth has gone through (not after a fixed time: a fast machine finishes
        # most of the load in a second), so logins, Starts, Interims and Stops are in flight.
        progress_deadline = time.monotonic() + 30
        while time.monotonic() < progress_deadline:
            if sum(1 for s in subscribers if s.acked[-1:] == ["stop"]) >= SUBSCRIBERS // 10:
                break
            time.sleep(0.01)
        nodes[0].kill()
        before_kill = sum(1 for s in subscribers if s.acked[-1:] == ["stop"])
        assert before_kill < SUBSCRIBERS // 2, "the load ended before the node was killed"
        for thread in threads:
            thread.join(90)
        assert nas.failed_over.is_set()
        finished = [s for s in subscribers if s.acked[-1:] == ["stop"]]
        assert len(finished) > SUBSCRIBERS // 2, "too little got through"
        rows = asyncio.run(_stored(url.replace("+asyncpg", "")))
        lost, doubled = [], []
        for sub in subscribers:
            sessions, usage = rows.get(sub.user, ([], 0))
            if len(sessions) > 1:
                doubled.append(sub.user)
            if "start" in sub.acked and not sessions:
                lost.append(sub.user)
            if sessions and sessions[0][1] < sub.octets:
                lost.append(sub.user)
            # Usage adds each session's deltas once: its total is the last counters stored.
            if sessions and usage != sessions[0][1]:
                doubled.append(sub.user)
            if "stop" in sub.acked and (not sessions or sessions[0][0] is None):
                lost.append(sub.user)
        assert lost == [] and doubled == [], (lost[:5], doubled[:5])
        # The limit holds on the node that is left: a second device of a contract with a
        # session online is refused.
        online = next((s for s in subscribers if s.acked[-1:] in (["start"], ["interim"])), None)
        if online is not None:
            with RadiusClient(ports[1][0], SECRET, source="127.0.0.44") as radius:
                reply = radius.exchange(radius.access_request(
                    online.user, "pw-fo-1", attr("Calling-Station-Id", "02:00:aa:bb:cc:dd")
                ))  # fmt: skip
            assert reply is not None and not reply.accepted
        print(f"{before_kill} finished before the kill, {len(finished)} of {SUBSCRIBERS} in all")
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.stop()
        asyncio.run(admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _stored(url: str) -> dict[str, tuple[list[tuple[object, int]], int]]:
    """Per username: its sessions (stopped_at, input octets) and its usage total."""
    connection = await asyncpg.connect(url)
    try:
        found: dict[str, tuple[list[tuple[object, int]], int]] = {}
        for row in await connection.fetch(
            "SELECT c.username, s.stopped_at, s.input_octets FROM sessions s "
            "JOIN contracts c ON c.id = s.contract_id"
        ):
            found.setdefault(row[0], ([], 0))[0].append((row[1], row[2]))
        for row in await connection.fetch(
            "SELECT c.username, sum(u.input_octets) FROM usage_daily u "
            "JOIN contracts c ON c.id = u.contract_id GROUP BY c.username"
        ):
            sessions, _ = found.get(row[0], ([], 0))
            found[row[0]] = (sessions, int(row[1]))
        return found
    finally:
        await connection.close()
