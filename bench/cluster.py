"""Nodes on one PostgreSQL: PAP and accounting through all of them, for contracts with a
simultaneous-use limit (decided by login claims in the database) and without one.

Each node is a `radius-contracts serve` with its own ports and state directory, all on one
new scratch database (dropped at the end). ``--contracts`` contracts are inserted: the first
half with ``simultaneous_use = 1``, the second half unlimited. A closed-loop client keeps
``--window`` requests in flight per node; request n of a test goes to node n % nodes, so one
user's logins come through every node in turn, always from the same Calling-Station-Id (the
same device, which the limit lets back in). Printed per test: req/s, p50/p99, accepts and
rejects, requests without an answer. Run by hand; the PostgreSQL server is
$RADIUS_CONTRACTS_TEST_PG or postgresql://postgres@127.0.0.1:5432/test, as the tests use.

    .venv/bin/python bench/cluster.py                 # 2 nodes, 10,000 contracts
    .venv/bin/python bench/cluster.py --nodes 1       # the same on one node, to compare
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from auth import _clean_env, _free_port, write_config
from soak import SECRET, password, percentile, request, username

_ACCEPT, _REJECT, _ACCOUNTING_RESPONSE = 2, 3, 5


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    auth: int
    acct: int
    api: int


@dataclass
class Result:
    name: str
    sent: int = 0
    accepts: int = 0
    rejects: int = 0
    responses: int = 0
    lost: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)


def _pg_admin_url() -> str:
    return os.environ.get("RADIUS_CONTRACTS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _populate(url: str, contracts: int) -> None:
    """The bench NAS and the contracts, as bench/auth.py's populate() makes them on SQLite."""
    connection = await asyncpg.connect(url, timeout=10)
    now = datetime.now(UTC)
    try:
        maker = await connection.fetchval("SELECT id FROM manufacturers WHERE name = 'MikroTik'")
        await connection.execute(
            "INSERT INTO nas (name, address, secret, manufacturer_id, coa_port,"
            " require_message_authenticator, active, created_at, created_by, created_via,"
            " updated_at, updated_by, updated_via)"
            " VALUES ('bench-bras', '127.0.0.1', $1, $2, 3799, false, true, $3, 'bench',"
            " 'bench', $3, 'bench', 'bench')",
            SECRET.decode(), maker, now,
        )  # fmt: skip
        rows = [
            (
                f"F{i:08d}", username(i).decode(), username(i).decode().lower(),
                password(i).decode(), 1 if i <= contracts // 2 else None, now,
            )
            for i in range(1, contracts + 1)
        ]  # fmt: skip
        await connection.executemany(
            "INSERT INTO contracts (number, status, auto_extend, customer_name,"
            " customer_custom_fields, custom_fields, username, username_key, password,"
            " max_upload, max_download, simultaneous_use, created_at, created_by, created_via,"
            " updated_at, updated_by, updated_via)"
            " VALUES ($1, 'active', false, 'bench', '{}', '{}', $2, $3, $4, '10M', '50M', $5,"
            " $6, 'bench', 'bench', $6, 'bench', 'bench')",
            rows,
        )
    finally:
        await connection.close()


def _start(state: Path, database_url: str) -> Node:
    auth, acct, api = (_free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_DGRAM),
                       _free_port(socket.SOCK_STREAM))  # fmt: skip
    extra = ["[database]", f"url = {json.dumps(database_url)}"]
    config = write_config(state, auth, acct, api, extra)
    command = [sys.executable, "-m", "radius_contracts", "serve", "--config", str(config)]
    with (state / "daemon.log").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_clean_env())
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise SystemExit(f"a node exited:\n{(state / 'daemon.log').read_text()}")
        with (
            suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{api}/readyz", timeout=2) as answer,
        ):
            if answer.status == 200:
                return Node(process, auth, acct, api)
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("a node was not ready within 300 s")
        time.sleep(0.2)


def _migrate(state: Path, database_url: str) -> None:
    config = write_config(state, 1, 1, 1, ["[database]", f"url = {json.dumps(database_url)}"])
    subprocess.run(
        [sys.executable, "-m", "radius_contracts", "migrate", "--config", str(config)],
        check=True, timeout=300, env=_clean_env(), stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _run(name: str, nodes: list[Node], users: range, steps: tuple[int, ...], total: int,
         window: int, timeout: float) -> Result:  # fmt: skip
    """``total`` requests over ``users``: each user's next step of ``steps`` (0 = PAP, 1-3 =
    Start, Interim-Update, Stop), request n to node n % len(nodes), ``window`` in flight per
    node, closed loop."""
    result = Result(name)
    sockets = []
    for _ in range(window * len(nodes)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sockets.append(sock)
    by_fd = {sock.fileno(): sock for sock in sockets}
    waiting: dict[int, tuple[float, int]] = {}  # fd -> (sent at, identifier)
    ids = dict.fromkeys(by_fd, 0)
    count = 0

    def send(sock: socket.socket) -> None:
        nonlocal count
        n = count
        count += 1
        user = users[n % len(users)]
        step = steps[(n // len(users)) % len(steps)]
        node = nodes[n % len(nodes)]
        identifier = ids[sock.fileno()] = (ids[sock.fileno()] + 1) % 256
        data = request(user, step, identifier, n // len(users))
        port = node.auth if step == 0 else node.acct
        waiting[sock.fileno()] = (time.perf_counter(), identifier)
        sock.sendto(data, ("127.0.0.1", port))
        result.sent += 1

    started = time.perf_counter()
    for sock in sockets:
        if count < total:
            send(sock)
    while waiting:
        ready, _, _ = select.select(list(by_fd), [], [], 0.05)
        now = time.perf_counter()
        for fd in ready:
            sock = by_fd[fd]
            with suppress(BlockingIOError):
                data = sock.recv(4096)
                sent_at, identifier = waiting.get(fd, (0.0, -1))
                if data[1] != identifier:
                    continue
                del waiting[fd]
                result.latencies.append(now - sent_at)
                code = data[0]
                result.accepts += code == _ACCEPT
                result.rejects += code == _REJECT
                result.responses += code == _ACCOUNTING_RESPONSE
                if count < total:
                    send(sock)
        for fd, (sent_at, _) in list(waiting.items()):
            if now - sent_at > timeout:
                del waiting[fd]
                result.lost += 1
                if count < total:
                    send(by_fd[fd])
    result.seconds = time.perf_counter() - started
    for sock in sockets:
        sock.close()
    return result


def _print(result: Result) -> None:
    rate = len(result.latencies) / result.seconds if result.seconds else 0.0
    print(
        f"{result.name:34s} {rate:9,.0f} {percentile(result.latencies, 0.5) * 1000:8.2f}"
        f" {percentile(result.latencies, 0.99) * 1000:8.2f} {result.accepts:8d}"
        f" {result.rejects:8d} {result.responses:9d} {result.lost:6d}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20_000, help="per test")
    parser.add_argument("--window", type=int, default=32, help="in flight per node")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    admin = _pg_admin_url()
    name = f"rc_cluster_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    base = admin.rpartition("/")[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    nodes: list[Node] = []
    try:
        with tempfile.TemporaryDirectory(prefix="rc-cluster-") as tmp:
            states = [Path(tmp) / f"node-{n}" for n in range(args.nodes)]
            for state in states:
                state.mkdir()
            _migrate(states[0], url)
            asyncio.run(_populate(f"{admin.rpartition('/')[0]}/{name}", args.contracts))
            nodes = [_start(state, url) for state in states]
            print(f"{args.nodes} node(s) on PostgreSQL, {args.contracts} contracts "
                  f"(half with simultaneous_use 1), {args.requests} requests per test, "
                  f"window {args.window} per node", flush=True)  # fmt: skip
            print(f"{'test':34s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'accepts':>8s}"
                  f" {'rejects':>8s} {'responses':>9s} {'lost':>6s}")  # fmt: skip
            half = args.contracts // 2
            limited, unlimited = range(1, half + 1), range(half + 1, args.contracts + 1)
            for label, users in (("PAP, simultaneous_use 1", limited),
                                 ("PAP, no limit", unlimited)):  # fmt: skip
                _print(_run(label, nodes, users, (0,), args.requests, args.window, args.timeout))
            for label, users in (("accounting, simultaneous_use 1", limited),
                                 ("accounting, no limit", unlimited)):  # fmt: skip
                _print(
                    _run(label, nodes, users, (1, 2, 3), args.requests, args.window, args.timeout)
                )
            for node in nodes:
                node.process.terminate()
            for node in nodes:
                node.process.wait(60)
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.kill()
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
