"""CoA benchmark: suspend many contracts with online sessions through the API, time the CoAs.

Run by hand (not part of the test suite); it prints its figures::

    .venv/bin/python bench/coa.py                       # 10,000 contracts, SQLite
    .venv/bin/python bench/coa.py --contracts 2000 --modes each
    .venv/bin/python bench/coa.py --database-url postgresql://postgres@127.0.0.1:5432/test

The daemon (``python -m radius_contracts serve``) runs pinned to core 0; this script and the
NAS simulator (a separate process that ACKs every CoA and Disconnect-Request, like a NAS
whose sessions all exist) run on core 1. Setup, not timed: a manufacturer whose CoA policy
changes Mikrotik-Rate-Limit and Mikrotik-Address-List live, its active and suspended layouts,
a NAS at 127.0.0.77 whose CoA port is the simulator's, ``--contracts`` contracts created
through the API, and an Accounting-Start for each (one online session per contract).

Timed, per mode (each on fresh contracts and sessions):

- ``each``: one ``POST /contracts/{id}/suspend`` per contract, ``--concurrency`` in flight.
- ``bulk``: one ``POST /contracts/bulk/suspend`` with every id.

Reported: API time (first request sent → last response), first CoA at the simulator after the
first request was sent (an upper bound on "after the commit"), the time until the daemon has
every ACK (its ``radius_contracts_coa_requests_total{kind="coa",outcome="ack"}``), and CoA/s.
Targets (issue 5): first CoA < 1 s, all 10,000 answered < 10 s.

Yardstick (``--anchor``): FreeRADIUS's ``radclient`` sending the same number of CoA-Requests
to the same simulator, 256 in flight, in the same sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import httpx

from auth import _clean_env, _free_port, write_config  # bench/auth.py: the shared daemon plumbing
from radius_contracts.radius import codec

NAS_ADDRESS = "127.0.0.77"
SECRET = "bench-coa-secret-42"
ACTIVE = [{"attribute": "Mikrotik-Rate-Limit", "template": "{max_upload}/{max_download}"}]
SUSPENDED = [
    {"attribute": "Mikrotik-Rate-Limit", "template": "256k/256k"},
    {"attribute": "Mikrotik-Address-List", "template": "suspended"},
]
_ACK = {codec.Code.COA_REQUEST: codec.Code.COA_ACK,
        codec.Code.DISCONNECT_REQUEST: codec.Code.DISCONNECT_ACK}  # fmt: skip


# -- the NAS simulator (its own process) ----------------------------------------------------------


@dataclass
class SimulatorStats:
    first_rx: Synchronized[float]  # time.time() of the first request, 0 before
    last_tx: Synchronized[float]
    requests: Synchronized[int]  # distinct requests answered (retransmissions not counted)
    copies: Synchronized[int]  # datagrams received


def _simulate(port: multiprocessing.Queue[int], stats: SimulatorStats, cpu: int) -> None:
    with suppress(OSError):
        os.sched_setaffinity(0, {cpu})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((NAS_ADDRESS, 0))
    port.put(sock.getsockname()[1])
    secret = SECRET.encode()
    seen: set[bytes] = set()
    while True:
        data, addr = sock.recvfrom(4096)
        now = time.time()
        stats.copies.value += 1
        if not stats.first_rx.value:
            stats.first_rx.value = now
        reply = codec.encode_reply(_ACK[codec.Code(data[0])], data[1], data[4:20], b"", secret)
        sock.sendto(reply, addr)
        key = data[4:20]
        if key not in seen:
            seen.add(key)
            stats.requests.value += 1
        stats.last_tx.value = time.time()


@contextmanager
def simulator(cpu: int) -> Iterator[tuple[int, SimulatorStats]]:
    context = multiprocessing.get_context("fork")
    stats = SimulatorStats(
        context.Value("d", 0.0),
        context.Value("d", 0.0),
        context.Value("q", 0),
        context.Value("q", 0),
    )
    ports: multiprocessing.Queue[int] = context.Queue()
    process = context.Process(target=_simulate, args=(ports, stats, cpu), daemon=True)
    process.start()
    try:
        yield ports.get(timeout=10), stats
    finally:
        process.kill()
        process.join(5)


def reset(stats: SimulatorStats) -> None:
    stats.first_rx.value = stats.last_tx.value = 0.0
    stats.requests.value = stats.copies.value = 0


# -- the daemon -----------------------------------------------------------------------------------


@dataclass
class Daemon:
    api: str
    acct_port: int
    token: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def daemon(state: Path, cpu: int, database_url: str | None) -> Iterator[Daemon]:
    auth_port, acct_port = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_DGRAM)
    api_port = _free_port(socket.SOCK_STREAM)
    extra = ["[database]", f'url = "{database_url}"'] if database_url else []
    config = write_config(state, auth_port, acct_port, api_port, extra)
    # JSON logs at INFO: the bulk change's "changed in one commit" line dates the commit.
    text = config.read_text().replace('level = "WARNING"', 'level = "INFO"\nformat = "json"')
    config.write_text(text)
    log = state / "daemon.log"
    command = ["taskset", "-c", str(cpu), sys.executable, "-m", "radius_contracts", "serve",
               "--config", str(config)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_clean_env())
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the daemon exited:\n{log.read_text()}")
            url = f"http://127.0.0.1:{api_port}/readyz"
            with suppress(OSError), urllib.request.urlopen(url, timeout=2):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the daemon was not ready in 120 s:\n{log.read_text()}")
            time.sleep(0.05)
        token = (state / "admin-token").read_text().strip()
        yield Daemon(f"http://127.0.0.1:{api_port}", acct_port, token, process, log)
        for line in log.read_text().splitlines():
            if "changed in one commit" in line:
                print("daemon:", json.loads(line)["msg"])
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def commit_logged(log: Path) -> float:
    """When the daemon logged its last bulk commit (time.time()), from its JSON log."""
    for line in reversed(log.read_text().splitlines()):
        if "changed in one commit" in line:
            return datetime.fromisoformat(json.loads(line)["ts"]).timestamp()
    raise SystemExit("the daemon logged no bulk commit")


def coa_acks(api: str) -> int:
    with urllib.request.urlopen(f"{api}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(
        r'^radius_contracts_coa_requests_total\{kind="coa",outcome="ack"\} (\S+)$', text, re.M
    )
    return int(float(match.group(1))) if match else 0


# -- setup ----------------------------------------------------------------------------------------


async def setup_catalogue(client: httpx.AsyncClient, coa_port: int) -> None:
    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    manufacturer = await post(
        "/api/v1/manufacturers",
        {
            "name": "bench-coa",
            "dictionary_vendor": "Mikrotik",
            "coa_identifiers": ["User-Name", "Acct-Session-Id", "NAS-IP-Address"],
            "coa_attributes": ["Mikrotik-Rate-Limit", "Mikrotik-Address-List"],
        },
    )
    for purpose, rows in (("active", ACTIVE), ("suspended", SUSPENDED)):
        await post(
            "/api/v1/radius/layouts",
            {"name": f"bench-coa-{purpose}", "manufacturer_id": manufacturer["id"],
             "purpose": purpose, "attributes": rows},
        )  # fmt: skip
    await post(
        "/api/v1/nas",
        {"name": "bench-coa-nas", "address": NAS_ADDRESS, "secret": SECRET,
         "manufacturer_id": manufacturer["id"], "coa_port": coa_port},
    )  # fmt: skip


async def create_contracts(
    client: httpx.AsyncClient, prefix: str, count: int, concurrency: int
) -> list[tuple[int, str]]:
    """``count`` active contracts through the API: (id, username)."""
    created: list[tuple[int, str]] = []
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            username = f"{prefix}{i:06d}@bench"
            body = {"number": f"{prefix}-{i:06d}",
                    "config": {"username": username, "password": f"pw{i:06d}",
                               "max_upload": "10M", "max_download": "100M"}}  # fmt: skip
            response = await client.post("/api/v1/contracts", json=body)
            response.raise_for_status()
            created.append((response.json()["id"], username))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return created


def start_sessions(acct_port: int, users: list[tuple[int, str]], window: int = 256) -> None:
    """An Accounting-Start per user from the NAS's address; waits for every answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((NAS_ADDRESS, 0))
    sock.settimeout(5)
    secret = SECRET.encode()
    nas_ip = ipaddress.ip_address(NAS_ADDRESS).packed
    pending: dict[int, bytes] = {}
    todo = list(enumerate(users))
    answered = 0
    while answered < len(users):
        while todo and len(pending) < window:
            i, (_id, username) = todo.pop()
            identifier = i % 256
            if identifier in pending:
                todo.append((i, (_id, username)))
                break
            body = b"".join((
                codec.attribute(40, (1).to_bytes(4, "big")),
                codec.attribute(44, f"s-{username}".encode()),
                codec.attribute(1, username.encode()),
                codec.attribute(4, nas_ip),
                codec.attribute(8, bytes([100, 64 + i // 65536, (i // 256) % 256, i % 256])),
            ))  # fmt: skip
            packet = codec.encode_request(codec.Code.ACCOUNTING_REQUEST, identifier, body, secret)
            pending[identifier] = packet
            sock.sendto(packet, ("127.0.0.1", acct_port))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            for packet in pending.values():  # retransmit what is unanswered
                sock.sendto(packet, ("127.0.0.1", acct_port))
            continue
        if pending.pop(data[1], None) is not None:
            answered += 1
    sock.close()


# -- timed runs -----------------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    contracts: int
    api_s: float
    first_coa_s: float  # after the first API request was sent
    after_commit_s: float  # after the last commit (for each: the last contract's)
    all_acked_s: float

    def show(self) -> None:
        rate = self.contracts / self.all_acked_s if self.all_acked_s else 0.0
        print(
            f"{self.mode:>6}: {self.contracts} suspended; API {self.api_s:.2f} s; first CoA "
            f"{self.first_coa_s * 1000:.0f} ms after the first request"
            + (
                f", {self.after_commit_s * 1000:.0f} ms after the commit"
                if self.mode == "bulk"
                else ""
            )
            + f"; all ACKed {self.all_acked_s:.2f} s after the first request ({rate:,.0f} CoA/s)"
        )


async def suspend(client: httpx.AsyncClient, mode: str, ids: list[int], concurrency: int) -> None:
    if mode == "bulk":
        response = await client.post(
            "/api/v1/contracts/bulk/suspend", json={"ids": ids}, timeout=600
        )
        response.raise_for_status()
        return
    queue = iter(ids)

    async def worker() -> None:
        for contract_id in queue:
            response = await client.post(f"/api/v1/contracts/{contract_id}/suspend")
            response.raise_for_status()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the daemon from now until stopped (raw folded stacks in ``out``)."""
    command = ["py-spy", "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", "500",
               "--nonblocking", "-d", "600"]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    return spy


def timed_run(
    server: Daemon,
    stats: SimulatorStats,
    mode: str,
    count: int,
    concurrency: int,
    py_spy: Path | None = None,
) -> Result:
    async def run() -> Result:
        headers = {"Authorization": f"Bearer {server.token}"}
        limits = httpx.Limits(max_connections=concurrency + 4)
        async with httpx.AsyncClient(
            base_url=server.api, headers=headers, limits=limits, timeout=120
        ) as client:
            prefix = f"{mode}{secrets.token_hex(2)}"
            users = await create_contracts(client, prefix, count, concurrency)
            start_sessions(server.acct_port, users)
            acked_before = coa_acks(server.api)
            reset(stats)
            spy = profile(server.process.pid, py_spy) if py_spy else None
            started_wall, started = time.time(), time.perf_counter()
            await suspend(client, mode, [i for i, _ in users], concurrency)
            api_s = time.perf_counter() - started
            last_commit = commit_logged(server.log) if mode == "bulk" else float("nan")
        deadline = time.perf_counter() + 300
        while coa_acks(server.api) - acked_before < count:
            if time.perf_counter() > deadline:
                raise SystemExit(f"only {coa_acks(server.api) - acked_before} of {count} ACKed")
            await asyncio.sleep(0.01)
        all_acked = time.perf_counter() - started
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
            spy.wait(30)
        first_rx = stats.first_rx.value or float("nan")
        return Result(
            mode, count, api_s, first_rx - started_wall, first_rx - last_commit, all_acked
        )

    return asyncio.run(run())


def anchor(port: int, stats: SimulatorStats, count: int) -> float | None:
    """radclient sending ``count`` CoA-Requests to the simulator, 256 in flight: seconds."""
    radclient = shutil.which("radclient")
    if radclient is None:
        print("anchor: radclient not found (apt-get install freeradius-utils)")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requests:
        for i in range(count):
            requests.write(
                f'User-Name = "anchor{i:06d}"\nAcct-Session-Id = "a-{i:06d}"\n'
                f'NAS-IP-Address = {NAS_ADDRESS}\nMikrotik-Rate-Limit = "256k/256k"\n'
                "Message-Authenticator = 0x00\n\n"
            )
    reset(stats)
    started = time.perf_counter()
    subprocess.run(
        [radclient, "-q", "-p", "256", "-r", "3", "-t", "2", "-f", requests.name,
         f"{NAS_ADDRESS}:{port}", "coa", SECRET],
        check=False, timeout=300, env=_clean_env(),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    os.unlink(requests.name)
    print(f"anchor: radclient sent {count} CoA-Requests, {stats.requests.value} answered, in "
          f"{seconds:.2f} s ({count / seconds:,.0f} CoA/s)")  # fmt: skip
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--modes", default="each,bulk", help="each, bulk or both")
    parser.add_argument("--concurrency", type=int, default=16, help="API requests in flight")
    parser.add_argument("--database-url", default=None, help="postgresql+asyncpg://… (else SQLite)")
    parser.add_argument("--anchor", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="profile the daemon during the last run"
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    opts = parser.parse_args()
    with suppress(OSError):
        os.sched_setaffinity(0, {opts.client_cpu})
    with tempfile.TemporaryDirectory(prefix="bench-coa-") as tmp:
        state = Path(tmp)
        with (
            simulator(opts.client_cpu) as (port, stats),
            daemon(state, opts.server_cpu, opts.database_url) as server,
        ):

            async def prepare() -> None:
                async with httpx.AsyncClient(
                    base_url=server.api, headers={"Authorization": f"Bearer {server.token}"}
                ) as client:
                    await setup_catalogue(client, port)

            asyncio.run(prepare())
            modes = opts.modes.split(",")
            results = [
                timed_run(
                    server,
                    stats,
                    mode,
                    opts.contracts,
                    opts.concurrency,
                    opts.py_spy if i == len(modes) - 1 else None,
                )
                for i, mode in enumerate(modes)
            ]
            if opts.anchor:
                anchor(port, stats, opts.contracts)
        for result in results:
            result.show()
            first = result.after_commit_s if result.mode == "bulk" else result.first_coa_s
            verdict = first < 1.0 and result.all_acked_s < 10.0
            print(f"        target first < 1 s, all < 10 s: {'PASS' if verdict else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
