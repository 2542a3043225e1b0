"""Access-Request benchmark: radius-contracts against FreeRADIUS, in one sitting, on 2 cores.

Run by hand (not part of the test suite); it prints its figures::

    .venv/bin/python bench/auth.py                                  # 10k and 1M contracts
    .venv/bin/python bench/auth.py --contracts 10000 --tests pap,latency --no-freeradius
    .venv/bin/python bench/auth.py --contracts 10000 --py-spy 20    # plus a profile of the server

Servers run on core 0 (``--server-cpu``), every client on core 1 (``--client-cpu``), as
/work/shared/bench-anchor/README.md prescribes. Subscribers and radclient request files come
from the anchor's ``gen_data.py`` (10,000 users ``sub00001``…, requests signed with
Message-Authenticator), so both servers see identical requests.

For each ``--contracts`` count a fresh state directory is made: ``radius-contracts migrate``
(schema, default manufacturers and layouts), then the anchor's users and filler contracts up to
the count are bulk-inserted with sqlite3, with one NAS at 127.0.0.1 (MikroTik, the anchor's
secret). The daemon starts pinned to the server core; the time from start to ``/readyz`` and
its RSS then are the "1M contracts loaded in < 60 s using < 2 GiB" figures.

Tests (``--tests``, comma separated):

``pap``, ``chap``
    radclient through the anchor's ``load.sh`` (``PROCS`` streams, each ``-p 64``), ``N``
    requests per run; req/s and server CPU µs per request from ``/proc/PID/stat``.
    ``pap`` also runs this script's own closed-loop client (same requests, built with
    ``radius_contracts.radius.codec``), so PAP figures exist from both clients.
``mschapv2``, ``mschapv2-hot``
    the closed-loop Python client with MS-CHAPv2 (radclient cannot do it), over all 10,000
    users, and over the first 2,000 only: the server caches the hashes and DES key schedules
    of 4,096 passwords, so the first always misses that cache and the second always hits.
    FreeRADIUS's ``files`` site here has no mschap module, so it has no such rows.
``latency``
    an open-loop PAP sender at each ``--rate`` (default 10,000, 5,000, 2,000 req/s) for
    ``--latency-seconds``, over 32 sockets so thousands of Identifiers can be in flight;
    p50/p99/max from send to reply, lost requests, and the rate the client really sent at
    (``sent/s``; it spins on its own core and keeps 10,000/s with µs of lag).

``--freeradius`` (default on) runs the same tests against FreeRADIUS ``files`` first, via the
anchor's ``setup-freeradius.sh``. Every run is bounded (fixed counts, timeouts) and every
server is stopped at the end. Rows are written to ``OUT/results.json`` and ``OUT/results.csv``.

Server CPU is utime + stime of all the server's threads. Each run starts once the server is
idle and ends once it is idle again, so work it defers (auth log batches) is charged to the
requests that caused it (``in run`` shows the part spent while they were answered). The
machine may be shared: ``other%`` is what other processes used meanwhile, and each run first
waits up to ``--quiet-wait`` seconds for them to calm down. Context switches per request
(printed per run) show threads of the server competing for its core.

Diagnostics: ``--py-spy SECONDS`` samples the daemon under PAP load and prints where its time
goes; ``--starve-auth-log`` runs the daemon with an auth log that drops nearly everything, to
show what writing it costs; ``--src DIR`` runs the daemon from a copy of the checkout.
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import hashlib
import json
import os
import select
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radius_contracts.aaa import mschap
from radius_contracts.radius import codec, hiding

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ANCHOR = ROOT.parent / "shared" / "bench-anchor"
ANCHOR_USERS = 10_000  # gen_data.py's subscribers sub00001..sub10000
FR_RUN = Path("/tmp/fr-run-files")  # where setup-freeradius.sh keeps the files server's PID
FR_DATA = Path("/tmp/perf-data")  # setup-freeradius.sh reads its users from here
FR_AUTH_PORT = 31812
CLK_TCK = os.sysconf("SC_CLK_TCK")
TESTS = ("pap", "chap", "mschapv2", "mschapv2-hot", "latency")
# The pure-Python MS-CHAPv2 path keeps the hashes and DES key schedules of the last 4,096
# passwords (aaa.mschap.PREPARED_CACHE_SIZE): cycling 10,000 users misses every time, 2,000
# always hit. The C check (aaa/_mschap.c) keeps nothing, so there both cost the same.
HOT_USERS = 2_000
PLANS = (("10M", "100M"), ("30M", "300M"), ("100M", "1G"))

# Attributes every request carries, as in gen_data.py's COMMON block.
COMMON = b"".join(
    (
        codec.attribute(codec.NAS_IP_ADDRESS, socket.inet_aton("127.0.0.1")),
        codec.attribute(codec.NAS_IDENTIFIER, b"perf-bras"),
        codec.attribute(codec.NAS_PORT_TYPE, (15).to_bytes(4, "big")),  # Ethernet
        codec.attribute(codec.SERVICE_TYPE, (2).to_bytes(4, "big")),  # Framed-User
        codec.attribute(codec.FRAMED_PROTOCOL, (1).to_bytes(4, "big")),  # PPP
        codec.attribute(codec.CALLED_STATION_ID, b"pppoe-svc"),
    )
)


# -- subscribers and requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    index: int  # 1-based, as in gen_data.py
    name: str
    password: str
    ip: str | None


def make_data(anchor: Path, data: Path, requests: int) -> list[User]:
    """The anchor's users and radclient files in ``data`` (made once per request count)."""
    stamp = data / "bench-stamp"
    wanted = f"{ANCHOR_USERS} {requests} r0 1"
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run(
            [sys.executable, str(anchor / "gen_data.py"), str(data), *wanted.split()],
            check=True,
            timeout=300,
        )
        stamp.write_text(wanted)
    raw: dict[str, dict[str, Any]] = json.loads((data / "users.json").read_text())
    users = [
        User(int(name[3:]), name, str(entry["password"]), entry.get("ip"))
        for name, entry in raw.items()
    ]
    users.sort(key=lambda user: user.index)
    return users


def _mac(i: int) -> bytes:
    return b"02:00:00:%02x:%02x:%02x" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


def _per_user(user: User) -> bytes:
    return codec.attribute(codec.NAS_PORT, user.index.to_bytes(4, "big")) + codec.attribute(
        codec.CALLING_STATION_ID, _mac(user.index)
    )


def pap_request(user: User, identifier: int, secret: bytes) -> bytes:
    authenticator = codec.new_authenticator()
    hidden = hiding.hide_user_password(user.password.encode(), secret, authenticator)
    body = b"".join(
        (
            codec.attribute(codec.USER_NAME, user.name.encode()),
            codec.attribute(codec.USER_PASSWORD, hidden),
            _per_user(user),
            COMMON,
        )
    )
    return codec.encode_request(
        codec.Code.ACCESS_REQUEST, identifier, body, secret, authenticator=authenticator
    )


def mschapv2_request(user: User, identifier: int, secret: bytes) -> bytes:
    auth_challenge, peer_challenge = os.urandom(16), os.urandom(16)
    name = user.name.encode()
    nt_response = mschap.generate_nt_response(auth_challenge, peer_challenge, name, user.password)
    response = os.urandom(1) + b"\0" + peer_challenge + bytes(8) + nt_response
    body = b"".join(
        (
            codec.attribute(codec.USER_NAME, name),
            codec.vendor_attribute(codec.VENDOR_MICROSOFT, codec.MS_CHAP_CHALLENGE, auth_challenge),
            codec.vendor_attribute(codec.VENDOR_MICROSOFT, codec.MS_CHAP2_RESPONSE, response),
            _per_user(user),
            COMMON,
        )
    )
    return codec.encode_request(codec.Code.ACCESS_REQUEST, identifier, body, secret)


Builder = Callable[[User, int, bytes], bytes]
BUILDERS: dict[str, Builder] = {
    "pap": pap_request,
    "mschapv2": mschapv2_request,
    "mschapv2-hot": mschapv2_request,
}


def build_packets(
    users: Sequence[User], count: int, sockets: int, builder: Builder, secret: bytes
) -> list[bytes]:
    """``count`` requests cycling over ``users``; packet k goes out on socket k % ``sockets``
    with Identifier (k // sockets) % 256. Every packet has a fresh Request Authenticator, so
    none is taken for a retransmit by the server's duplicate cache."""
    return [builder(users[k % len(users)], (k // sockets) % 256, secret) for k in range(count)]


# -- process accounting ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) and of its children (the daemon's worker
    processes with ``--workers``) in seconds."""
    total = 0.0
    for process in (pid, *children(pid)):
        with suppress(OSError):  # a child that just exited
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (FreeRADIUS has none; our daemon its workers)."""
    found: list[int] = []
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of all of ``pid``'s threads and children."""
    total = 0
    tasks = [t for p in (pid, *children(pid)) for t in Path(f"/proc/{p}/task").glob("*/status")]
    for status in tasks:
        with suppress(OSError):
            for line in status.read_text().splitlines():
                if "ctxt_switches:" in line:
                    total += int(line.split()[1])
    return total


def memory_kib(pid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the clients ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured run against one server."""

    server: str
    contracts: int
    client: str  # radclient | python | python-open
    test: str
    rep: int
    n: int
    wall_s: float
    rps: float
    srv_cpu_s: float
    ok: int
    rejected: int
    lost: int
    bad: int = 0  # replies with a wrong Response Authenticator or an unexpected code
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    achieved_rate: float | None = None  # open loop: the rate the client really sent at
    lag_p99_ms: float | None = None  # open loop: how late sends were against the schedule
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def us_per_request(self) -> float:
        return self.srv_cpu_s / self.n * 1e6 if self.n else 0.0


def _reply_ok(reply: bytes, request: bytes, secret: bytes) -> bool:
    """RFC 2865 §3 Response Authenticator over the request's authenticator."""
    expected = hashlib.md5(reply[:4] + request[4:20] + reply[20:] + secret).digest()
    return reply[4:20] == expected


@contextmanager
def _sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            sock.bind(("127.0.0.1", 0))
            sock.connect(("127.0.0.1", port))
            sock.setblocking(False)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


class _Tally:
    __slots__ = ("bad", "ok", "rejected", "stray")

    def __init__(self) -> None:
        self.ok = self.rejected = self.bad = self.stray = 0

    def reply(self, reply: bytes, request: bytes, secret: bytes) -> None:
        if not _reply_ok(reply, request, secret):
            self.bad += 1
        elif reply[0] == codec.Code.ACCESS_ACCEPT:
            self.ok += 1
        elif reply[0] == codec.Code.ACCESS_REJECT:
            self.rejected += 1
        else:
            self.bad += 1


def closed_loop(
    port: int,
    packets: Sequence[bytes],
    sockets: int,
    window: int,
    secret: bytes,
    *,
    timeout: float = 2.0,
    max_seconds: float = 120.0,
) -> tuple[float, _Tally, int]:
    """Send ``packets`` keeping ``window`` requests in flight per socket, like ``radclient -p``.

    Returns (wall seconds, tally, lost). A request unanswered after ``timeout`` is lost.
    """
    assert 0 < window < 256
    streams = [list(packets[i::sockets]) for i in range(sockets)]
    tally = _Tally()
    lost = 0
    with _sockets(port, sockets) as socks:
        poller = select.epoll()
        index = {sock.fileno(): i for i, sock in enumerate(socks)}
        for sock in socks:
            poller.register(sock.fileno(), select.EPOLLIN)
        pending: list[dict[int, tuple[bytes, float]]] = [{} for _ in socks]
        position = [0] * sockets
        remaining = len(packets)
        started = time.perf_counter()
        try:
            while remaining:
                now = time.perf_counter()
                if now - started > max_seconds:
                    lost += remaining
                    break
                for i in range(sockets):
                    waiting, stream, k = pending[i], streams[i], position[i]
                    send = socks[i].send
                    while len(waiting) < window and k < len(stream):
                        packet = stream[k]
                        k += 1
                        if packet[1] in waiting:  # its namesake never came back
                            del waiting[packet[1]]
                            lost += 1
                            remaining -= 1
                        send(packet)
                        waiting[packet[1]] = (packet, now)
                    position[i] = k
                events = poller.poll(0.05)
                if not events:
                    cutoff = time.perf_counter() - timeout
                    for waiting in pending:
                        for ident in [i for i, (_, t) in waiting.items() if t < cutoff]:
                            del waiting[ident]
                            lost += 1
                            remaining -= 1
                    continue
                for fd, _mask in events:
                    i = index[fd]
                    sock, waiting = socks[i], pending[i]
                    while True:
                        try:
                            reply = sock.recv(4096)
                        except BlockingIOError:
                            break
                        except ConnectionRefusedError:
                            continue  # ICMP port unreachable: the server is gone
                        entry = waiting.pop(reply[1], None)
                        if entry is None:
                            tally.stray += 1
                            continue
                        remaining -= 1
                        tally.reply(reply, entry[0], secret)
        finally:
            poller.close()
        wall = time.perf_counter() - started
    return wall, tally, lost


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def open_loop(
    port: int,
    packets: Sequence[bytes],
    sockets: int,
    rate: float,
    secret: bytes,
    *,
    drain: float = 1.0,
) -> dict[str, Any]:
    """Send packet k at start + k/``rate`` on socket k % ``sockets`` whatever the replies do.

    The loop spins (the client has its own core): sends are a few µs late at most unless the
    client cannot keep up, which ``lag_p99_ms`` and ``achieved_rate`` show. Latency is from the
    actual send to the reply being read.
    """
    n = len(packets)
    sent_at = [0.0] * n
    latency: list[float] = []
    tally = _Tally()
    overrun = 0
    with _sockets(port, sockets) as socks:
        poller = select.epoll()
        index = {sock.fileno(): i for i, sock in enumerate(socks)}
        for sock in socks:
            poller.register(sock.fileno(), select.EPOLLIN)
        slots: list[dict[int, int]] = [{} for _ in socks]
        sends = [sock.send for sock in socks]
        clock = time.perf_counter
        start = clock() + 0.01
        k = 0
        answered = 0
        end = float("inf")
        try:
            while True:
                now = clock()
                if k < n:
                    due = min(n, int((now - start) * rate) + 1)
                    while k < due:
                        s = k % sockets
                        packet = packets[k]
                        sends[s](packet)
                        sent_at[k] = clock()
                        if slots[s].get(packet[1]) is not None:
                            overrun += 1  # an earlier request with this id is still unanswered
                        slots[s][packet[1]] = k
                        k += 1
                    if k == n:
                        end = clock() + drain
                elif answered >= n or now > end:
                    break
                for fd, _mask in poller.poll(0):
                    i = index[fd]
                    sock, slot = socks[i], slots[i]
                    while True:
                        try:
                            reply = sock.recv(4096)
                        except BlockingIOError:
                            break
                        except ConnectionRefusedError:
                            continue
                        received = clock()
                        j = slot.pop(reply[1], None)
                        if j is None:
                            tally.stray += 1
                            continue
                        answered += 1
                        latency.append(received - sent_at[j])
                        tally.reply(reply, packets[j], secret)
        finally:
            poller.close()
    lags = [sent_at[j] - (start + j / rate) for j in range(n)]
    span = sent_at[-1] - sent_at[0]
    return {
        "n": n,
        "wall_s": span,
        "latency": latency,
        "tally": tally,
        "lost": n - answered,
        "overrun": overrun,
        "achieved_rate": (n - 1) / span if span > 0 else 0.0,
        "lag_p99_ms": percentile(lags, 0.99) * 1000,
        "lag_max_ms": max(lags) * 1000,
    }


# -- servers --------------------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    contracts: int
    pid: int
    auth_port: int
    acct_port: int


@dataclass
class Loaded:
    contracts: int
    populate_s: float
    ready_s: float
    rss_ready_mib: float
    rss_peak_mib: float = 0.0


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(
    state_dir: Path,
    auth_port: int,
    acct_port: int,
    api_port: int,
    extra: Sequence[str] = (),
    workers: int = 1,
) -> Path:
    lines = [
        f"state_dir = {_toml_string(str(state_dir))}",
        "[radius]",
        'bind = "127.0.0.1"',
        f"auth_port = {auth_port}",
        f"acct_port = {acct_port}",
        f"workers = {workers}",
        "[api]",
        'host = "127.0.0.1"',
        f"port = {api_port}",
        "[logging]",
        'level = "WARNING"',
        *extra,
    ]
    config = state_dir / "bench.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


# The writer flushes when 5,000 outcomes are queued or every flush_interval: with at most 1,000
# queued (the oldest dropped) it writes 1,000 rows a minute, next to nothing.
STARVED_AUTH_LOG = ("[auth_log]", "max_pending = 1000", "flush_interval = 60")


def _clean_env() -> dict[str, str]:
    # The environment wins over the config file: keep the caller's RADIUS_CONTRACTS_* out.
    return {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}


def populate(
    database: Path,
    users: Sequence[User],
    total: int,
    secret: str,
    simultaneous_use: int | None = 1,
) -> float:
    """The anchor's users, then filler contracts up to ``total``, and the bench NAS."""
    started = time.perf_counter()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        row = connection.execute("SELECT id FROM manufacturers WHERE name = 'MikroTik'").fetchone()
        if row is None:
            raise SystemExit("no MikroTik manufacturer: did migrate seed the defaults?")
        audit = (now, "bench", "bench", now, "bench", "bench")
        with connection:
            connection.execute(
                "INSERT INTO nas (name, address, secret, manufacturer_id, coa_port,"
                " require_message_authenticator, active, created_at, created_by, created_via,"
                " updated_at, updated_by, updated_via) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                ("bench-bras", "127.0.0.1", secret, row[0], 3799, 1, 1, *audit),
            )

            def rows() -> Iterator[tuple[Any, ...]]:
                for user in users:
                    yield (
                        f"A{user.index:08d}",
                        user.name,
                        user.name.lower(),
                        user.password,
                        "50M",
                        "500M",
                        user.ip,
                        f"Anchor {user.index}",
                        '{"plan": "anchor"}',
                        simultaneous_use,
                    )
                for i in range(len(users) + 1, total + 1):
                    upload, download = PLANS[i % len(PLANS)]
                    ip = (
                        f"100.{64 + (i >> 16) % 64}.{(i >> 8) % 256}.{i % 256}"
                        if i % 5 == 0
                        else None
                    )
                    yield (
                        f"F{i:08d}",
                        f"filler.{i:07d}@bench",
                        f"filler.{i:07d}@bench",
                        f"fp-{i:07d}-x",
                        upload,
                        download,
                        ip,
                        f"Customer {i}",
                        '{"plan": "filler"}',
                        simultaneous_use,
                    )

            connection.executemany(
                "INSERT INTO contracts (number, status, auto_extend, customer_name,"
                " customer_custom_fields, custom_fields, username, username_key, password,"
                " max_upload, max_download, ipv4, simultaneous_use, created_at, created_by,"
                " created_via, updated_at, updated_by, updated_via)"
                " VALUES (?1, 'active', 0, ?8, '{}', ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?10,"
                f" '{now}', 'bench', 'bench', '{now}', 'bench', 'bench')",
                rows(),
            )
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return time.perf_counter() - started


def prepare_state(
    state_dir: Path,
    users: Sequence[User],
    total: int,
    secret: str,
    simultaneous_use: int | None = 1,
) -> float:
    """Fresh state directory: migrate (schema + defaults), then the bulk insert."""
    config = write_config(state_dir, 1, 1, 1)  # ports are irrelevant to migrate
    subprocess.run(
        [sys.executable, "-m", "radius_contracts", "migrate", "--config", str(config)],
        check=True,
        timeout=300,
        env=_clean_env(),
        stdout=subprocess.DEVNULL,
    )
    return populate(state_dir / "radius-contracts.db", users, total, secret, simultaneous_use)


@contextmanager
def our_daemon(
    state_dir: Path,
    contracts: int,
    cpu: int | str,
    loaded: Loaded,
    extra: Sequence[str] = (),
    workers: int = 1,
) -> Iterator[Server]:
    """``radius-contracts serve`` pinned to ``cpu`` (a taskset list, e.g. "0" or "0,1"); fills
    in ``loaded``'s timing and RSS."""
    auth_port = _free_port(socket.SOCK_DGRAM)
    acct_port = _free_port(socket.SOCK_DGRAM)
    api_port = _free_port(socket.SOCK_STREAM)
    config = write_config(state_dir, auth_port, acct_port, api_port, extra, workers)
    log = state_dir / "daemon.log"
    command = [
        "taskset",
        "-c",
        str(cpu),
        sys.executable,
        "-m",
        "radius_contracts",
        "serve",
        "--config",
        str(config),
    ]
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_clean_env())
    try:
        deadline = started + 300
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the daemon exited with {process.returncode}:\n{log.read_text()}")
            with suppress(OSError, urllib.error.URLError):
                url = f"http://127.0.0.1:{api_port}/readyz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            if time.perf_counter() > deadline:
                raise SystemExit(f"the daemon was not ready in 300 s:\n{log.read_text()}")
            time.sleep(0.05)
        loaded.ready_s = time.perf_counter() - started
        loaded.rss_ready_mib = memory_kib(process.pid)["VmRSS"] / 1024
        yield Server("radius-contracts", contracts, process.pid, auth_port, acct_port)
        loaded.rss_peak_mib = memory_kib(process.pid)["VmHWM"] / 1024
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def freeradius(anchor: Path, cpu: int | str, data: Path) -> Iterator[Server]:
    """FreeRADIUS ``files`` via the anchor's setup script, pinned to ``cpu``; always stopped."""
    script = str(anchor / "setup-freeradius.sh")
    env = {**os.environ, "SRV_CPU": str(cpu), "NUSERS": str(ANCHOR_USERS)}
    subprocess.run(["bash", script, "config", "files"], check=True, timeout=300, env=env)
    ours, theirs = data / "users.authorize", FR_DATA / "users.authorize"
    if not filecmp.cmp(ours, theirs, shallow=False):
        print(f"! {theirs} differs from {ours}: FreeRADIUS holds other users than we do")
    try:
        subprocess.run(["bash", script, "start", "files"], check=True, timeout=120, env=env)
        pid = int((FR_RUN / "server.pid").read_text())
        yield Server("freeradius-files", ANCHOR_USERS, pid, FR_AUTH_PORT, FR_AUTH_PORT + 1)
    finally:
        subprocess.run(["bash", script, "stop", "files"], timeout=60, env=env, check=False)


# -- the tests ------------------------------------------------------------------------------------


@dataclass
class Options:
    anchor: Path
    data: Path
    out: Path
    secret: bytes
    requests: int
    repeats: int
    procs: int
    sockets: int
    window: int
    rates: list[float]
    latency_seconds: float
    latency_sockets: int
    client_cpu: int
    quiet_wait: float
    tests: tuple[str, ...]


def host_cpu_seconds() -> float:
    """CPU time all processes on the host spent (user, nice, system; not irq or softirq)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()
    return (int(fields[1]) + int(fields[2]) + int(fields[3])) / CLK_TCK


def own_cpu_seconds() -> float:
    """This process and its waited-for children (radclient, load.sh)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class Meter:
    """Server CPU for one run, including the work it defers past the run (auth log writes),
    and how busy other processes on the host were meanwhile (this machine is shared).

    ``start`` waits until the server is idle (and, up to ``quiet_wait`` seconds, until other
    processes use less than half a core); ``stop`` marks the end of the requests; ``finish``
    waits until the server is idle again and takes the totals.
    """

    def __init__(self, pid: int, quiet_wait: float) -> None:
        self.pid = pid
        self.quiet_wait = quiet_wait
        self.server_run = self.server_total = self.other_pct = self.client_run = 0.0
        self.switches = 0

    def _settle(self, quiet: bool) -> None:
        deadline = time.perf_counter() + 60 + (self.quiet_wait if quiet else 0)
        patience = time.perf_counter() + self.quiet_wait
        while time.perf_counter() < deadline:
            s0, h0, o0 = cpu_seconds(self.pid), host_cpu_seconds(), own_cpu_seconds()
            time.sleep(0.5)
            server = cpu_seconds(self.pid) - s0
            other = host_cpu_seconds() - h0 - server - (own_cpu_seconds() - o0)
            if server <= 0.02 and (not quiet or other < 0.25 or time.perf_counter() > patience):
                return

    def start(self) -> None:
        self._settle(quiet=True)
        self._t0 = time.perf_counter()
        self._s0 = cpu_seconds(self.pid)
        self._h0 = host_cpu_seconds()
        self._o0 = own_cpu_seconds()
        self._c0 = context_switches(self.pid)

    def stop(self) -> None:
        self.server_run = cpu_seconds(self.pid) - self._s0
        self.client_run = own_cpu_seconds() - self._o0
        self.switches = context_switches(self.pid) - self._c0

    def finish(self) -> None:
        self._settle(quiet=False)
        self.server_total = cpu_seconds(self.pid) - self._s0
        host = host_cpu_seconds() - self._h0
        other = host - self.server_total - (own_cpu_seconds() - self._o0)
        self.other_pct = max(0.0, other) / (time.perf_counter() - self._t0) * 100

    def note(self, run: Run) -> Run:
        run.srv_cpu_s = self.server_total
        run.extra["srv_cpu_run_s"] = self.server_run
        run.extra["other_pct"] = self.other_pct
        run.extra["switches_per_req"] = self.switches / run.n if run.n else 0.0
        run.extra["client_cpu_s"] = self.client_run
        return run


def radclient_runs(server: Server, tests: Sequence[str], opts: Options) -> list[Run]:
    """The anchor's load.sh, once per test and repeat: PROCS radclient streams on the client
    core. Its req/s, counts and in-run server CPU; our Meter adds the deferred server CPU."""
    results = opts.out / "load_sh.csv"
    env = {
        **os.environ,
        "RC_CPU": str(opts.client_cpu),
        "PROCS": str(opts.procs),
        "REPEATS": "1",
        "DATA": str(opts.data),
        "RESULTS": str(results),
        "SECRET": opts.secret.decode(),
        "N": str(opts.requests),
    }
    runs: list[Run] = []
    for test in tests:
        for rep in range(1, opts.repeats + 1):
            label = f"{server.label}-{server.contracts}-{test}-{rep}-{os.getpid()}"
            command = ["bash", str(opts.anchor / "load.sh"), label, str(server.auth_port),
                       str(server.acct_port), str(server.pid)]  # fmt: skip
            meter = Meter(server.pid, opts.quiet_wait)
            meter.start()
            subprocess.run(
                command, env={**env, "TESTS": test}, timeout=180, check=False,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            meter.stop()
            meter.finish()
            with results.open() as fh:
                rows = [row for row in csv.DictReader(fh) if row["label"] == label]
            if not rows:
                print(f"  ! load.sh wrote no result for {label}")
                continue
            row = rows[-1]

            def count(name: str, row: dict[str, str] = row) -> int:
                return int(row[name]) if row[name].isdigit() else 0

            run = meter.note(
                Run(
                    server=server.label,
                    contracts=server.contracts,
                    client="radclient",
                    test=test,
                    rep=rep,
                    n=int(row["n"]),
                    wall_s=float(row["wall_s"]),
                    rps=float(row["rps"]),
                    srv_cpu_s=0.0,
                    ok=count("ok"),
                    rejected=count("rejected"),
                    lost=count("lost"),
                    extra={"rc_cpu_s": float(row["rc_user_s"]) + float(row["rc_sys_s"])},
                )
            )
            report(run)
            runs.append(run)
    return runs


def report(run: Run) -> None:
    run_us = run.extra["srv_cpu_run_s"] / run.n * 1e6
    print(
        f"  {run.client:<9} {run.test:<12} rep {run.rep}: {run.rps:8,.0f} req/s, server CPU "
        f"{run.us_per_request:5.1f} µs/req ({run_us:5.1f} during the run), ok {run.ok} "
        f"rej {run.rejected} lost {run.lost} bad {run.bad}, "
        f"{run.extra['switches_per_req']:.2f} context switches/req; other processes "
        f"{run.extra['other_pct']:.0f} % of a core",
        flush=True,
    )


def python_runs(server: Server, test: str, users: Sequence[User], opts: Options) -> list[Run]:
    """Closed loop, ``sockets`` x ``window`` in flight, ``requests`` per repeat."""
    runs: list[Run] = []
    if test == "mschapv2-hot":
        users = users[:HOT_USERS]
    for rep in range(1, opts.repeats + 1):
        packets = build_packets(users, opts.requests, opts.sockets, BUILDERS[test], opts.secret)
        meter = Meter(server.pid, opts.quiet_wait)
        meter.start()
        wall, tally, lost = closed_loop(
            server.auth_port, packets, opts.sockets, opts.window, opts.secret
        )
        meter.stop()
        meter.finish()
        n = len(packets)
        run = meter.note(
            Run(
                server=server.label,
                contracts=server.contracts,
                client="python",
                test=test,
                rep=rep,
                n=n,
                wall_s=wall,
                rps=n / wall,
                srv_cpu_s=0.0,
                ok=tally.ok,
                rejected=tally.rejected,
                lost=lost,
                bad=tally.bad,
            )
        )
        report(run)
        runs.append(run)
    return runs


def latency_run(server: Server, users: Sequence[User], rate: float, opts: Options) -> Run:
    count = int(rate * opts.latency_seconds)
    packets = build_packets(users, count, opts.latency_sockets, pap_request, opts.secret)
    meter = Meter(server.pid, opts.quiet_wait)
    meter.start()
    result = open_loop(server.auth_port, packets, opts.latency_sockets, rate, opts.secret)
    meter.stop()
    meter.finish()
    latency: list[float] = result["latency"]
    tally: _Tally = result["tally"]
    run = meter.note(
        Run(
            server=server.label,
            contracts=server.contracts,
            client="python-open",
            test=f"lat{rate:g}",
            rep=1,
            n=count,
            wall_s=result["wall_s"],
            rps=tally.ok / result["wall_s"],
            srv_cpu_s=0.0,
            ok=tally.ok,
            rejected=tally.rejected,
            lost=result["lost"],
            bad=tally.bad,
            p50_ms=percentile(latency, 0.5) * 1000 if latency else None,
            p99_ms=percentile(latency, 0.99) * 1000 if latency else None,
            max_ms=max(latency) * 1000 if latency else None,
            achieved_rate=result["achieved_rate"],
            lag_p99_ms=result["lag_p99_ms"],
            extra={"lag_max_ms": result["lag_max_ms"], "overrun": result["overrun"]},
        )
    )
    print(
        f"  open loop {rate:,.0f}/s: sent at {run.achieved_rate:,.0f}/s (send lag p99 "
        f"{run.lag_p99_ms:.2f} ms, max {result['lag_max_ms']:.1f} ms), p50 {run.p50_ms or 0:.2f} "
        f"ms p99 {run.p99_ms or 0:.2f} ms max {run.max_ms or 0:.1f} ms, lost {run.lost}, bad "
        f"{run.bad}, server CPU {run.us_per_request:.1f} µs/req; other processes "
        f"{run.extra['other_pct']:.0f} % of a core",
        flush=True,
    )
    return run


def sanity(server: Server, users: Sequence[User], opts: Options) -> None:
    """One PAP and one MS-CHAPv2 request must be accepted before anything is timed."""
    checks = [pap_request(users[0], 1, opts.secret)]
    if server.label == "radius-contracts" and {"mschapv2", "mschapv2-hot"} & set(opts.tests):
        checks.append(mschapv2_request(users[1], 2, opts.secret))
    _wall, tally, lost = closed_loop(server.auth_port, checks, 1, 4, opts.secret, timeout=3)
    if tally.ok != len(checks):
        raise SystemExit(
            f"{server.label}: sanity requests not accepted (ok {tally.ok}, rejected "
            f"{tally.rejected}, lost {lost}, bad {tally.bad})"
        )


def warm_up(server: Server, users: Sequence[User], opts: Options) -> None:
    """Every user once, untimed: the per-contract reply caches are filled as in steady state."""
    packets = build_packets(users, len(users), opts.sockets, pap_request, opts.secret)
    closed_loop(server.auth_port, packets, opts.sockets, opts.window, opts.secret)


def run_all(server: Server, users: Sequence[User], opts: Options) -> list[Run]:
    sanity(server, users, opts)
    warm_up(server, users, opts)
    runs: list[Run] = []
    radclient_tests = [t for t in ("pap", "chap") if t in opts.tests]
    if radclient_tests:
        runs += radclient_runs(server, radclient_tests, opts)
    if "pap" in opts.tests:
        runs += python_runs(server, "pap", users, opts)
    for test in ("mschapv2", "mschapv2-hot"):
        if test in opts.tests and server.label == "radius-contracts":
            runs += python_runs(server, test, users, opts)
    if "latency" in opts.tests:
        for rate in opts.rates:
            runs.append(latency_run(server, users, rate, opts))
    return runs


# -- profile --------------------------------------------------------------------------------------

# Where the server's samples go, by the innermost frame (first match wins). The auth log's
# SQLAlchemy work runs in greenlets (their stacks have no event loop frames) and its SQLite
# calls in aiosqlite's thread, so those two are told apart by the whole stack.
# aiosqlite's worker thread waiting for its queue: py-spy does not always see that as idle.
IDLE_FRAMES = ("aiosqlite/core.py:59)", "Condition.wait (threading.py")
AREAS: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("auth log: SQLite in aiosqlite's thread", lambda s, f: "_connection_worker_thread" in s),
    ("auth log: SQLAlchemy insert (greenlet)", lambda s, f: "sqlalchemy/" in s),
    ("UDP receive (recvfrom)", lambda s, f: f.startswith("_SelectorDatagramTransport._read_ready")),
    ("UDP send (sendto)", lambda s, f: "_SelectorDatagramTransport.sendto" in s),
    ("codec: decode, authenticators, encode", lambda s, f: "radius/codec.py" in f),
    ("listener: _received, _access_fields", lambda s, f: "radius/protocol.py" in f),
    ("duplicate cache", lambda s, f: "radius/dedup.py" in f),
    ("auth log: queueing events", lambda s, f: "aaa/auth_log.py" in f),
    ("MS-CHAPv2 / DES / MD4", lambda s, f: "aaa/mschap.py" in f or "Crypto/" in f),
    ("handler, authenticate, render", lambda s, f: "radius_contracts/aaa/" in f),
    ("other radius_contracts", lambda s, f: "radius_contracts/" in f),
    ("event loop, selectors, timers", lambda s, f: "asyncio/" in f or "selectors.py" in f),
)


def profile(server: Server, users: Sequence[User], opts: Options, seconds: float) -> None:
    """py-spy on the daemon while the Python client sends PAP; prints where the time goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("! py-spy not found (.venv/bin/pip install py-spy); no profile")
        return
    raw = opts.out / f"py-spy-{server.contracts}.txt"
    command = [py_spy, "record", "--pid", str(server.pid), "--duration", str(int(seconds)),
               "--rate", "200", "--format", "raw", "--output", str(raw)]  # fmt: skip
    print(f"\n  py-spy for {int(seconds)} s under closed-loop PAP load", flush=True)
    meter = Meter(server.pid, opts.quiet_wait)
    meter.start()
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sent = 0
    try:
        time.sleep(1)  # py-spy attaches
        deadline = time.perf_counter() + seconds - 1.5
        while time.perf_counter() < deadline:
            packets = build_packets(users, opts.requests, opts.sockets, pap_request, opts.secret)
            closed_loop(server.auth_port, packets, opts.sockets, opts.window, opts.secret)
            sent += len(packets)
        spy.wait(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    meter.stop()
    meter.finish()
    per_request = meter.server_total / max(1, sent) * 1e6
    print(f"  {sent:,} requests while profiled, server CPU {per_request:.0f} µs/req")
    if not raw.exists():
        print(f"! py-spy wrote nothing: {spy.stderr.read().decode() if spy.stderr else ''}")
        return
    print_profile(raw)


def _idle(leaf: str) -> bool:
    return any(marker in leaf for marker in IDLE_FRAMES)


def _function(frame: str) -> str:
    """``name (file:line)`` → ``name (file)``: time per function, not per line."""
    head, _, line = frame.rpartition(":")
    return f"{head})" if line.rstrip(")").isdigit() else frame


def print_profile(raw: Path, top: int = 20) -> None:
    """Areas, then the hottest frames by self time and radius_contracts frames inclusive."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    areas: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [frame for frame in stack.split(";") if frame]
        if not frames or not count_text.isdigit() or _idle(frames[-1]):
            continue
        count = int(count_text)
        samples += count
        area = next((name for name, match in AREAS if match(stack, frames[-1])), "other")
        areas[area] = areas.get(area, 0) + count
        frames = [_function(frame) for frame in frames]
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if not samples:
        print("! empty profile")
        return

    def show(title: str, table: dict[str, int], limit: int) -> None:
        print(f"  {title}:")
        for frame, count in sorted(table.items(), key=lambda item: -item[1])[:limit]:
            print(f"    {count / samples * 100:5.1f} %  {frame}")

    print(f"\nprofile {raw}: {samples} busy samples (all threads; % of the busy samples)")
    show("by area (innermost frame)", areas, len(areas))
    show(f"top {top} by self time", own, top)
    ours = {f: c for f, c in inclusive.items() if "radius_contracts/" in f and "cli.py" not in f}
    ours = {f: c for f, c in ours.items() if "__main__.py" not in f}
    show(f"top {top} radius_contracts frames, inclusive", ours, top)


# -- report ---------------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[Run]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.server, run.contracts, run.client, run.test), []).append(run)
    rows: list[dict[str, Any]] = []
    for (server, contracts, client, test), group in groups.items():
        rows.append(
            {
                "server": server,
                "contracts": contracts,
                "client": client,
                "test": test,
                "reps": len(group),
                "n": group[0].n,
                "rps": _median([r.rps for r in group]),
                "srv_us_per_req": _median([r.us_per_request for r in group]),
                "ok": sum(r.ok for r in group),
                "rejected": sum(r.rejected for r in group),
                "lost": sum(r.lost for r in group),
                "bad": sum(r.bad for r in group),
                "p50_ms": _median([r.p50_ms for r in group]),
                "p99_ms": _median([r.p99_ms for r in group]),
                "max_ms": _median([r.max_ms for r in group]),
                "achieved_rate": _median([r.achieved_rate for r in group]),
                "lag_p99_ms": _median([r.lag_p99_ms for r in group]),
                "srv_us_in_run": _median([r.extra["srv_cpu_run_s"] / r.n * 1e6 for r in group]),
                "other_pct": _median([r.extra["other_pct"] for r in group]),
                "rc_cpu_us_per_req": _median(
                    [r.extra["rc_cpu_s"] / r.n * 1e6 for r in group if "rc_cpu_s" in r.extra]
                ),
                # The load generator's own CPU: radclient's, or this script's for its clients.
                "client_us_per_req": _median(
                    [
                        r.extra["rc_cpu_s" if "rc_cpu_s" in r.extra else "client_cpu_s"] / r.n * 1e6
                        for r in group
                    ]
                ),
            }
        )
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: Sequence[dict[str, Any]], loads: Sequence[Loaded]) -> None:
    header = (
        f"{'server':<17} {'contracts':>9} {'client':<11} {'test':<12} {'req/s':>8} "
        f"{'srv µs/req':>10} {'in run':>6} {'ok':>7} {'rej':>4} {'lost':>5} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'sent/s':>7} {'other%':>6} {'cli µs':>6}"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['server']:<17} {row['contracts']:>9,} {row['client']:<11} {row['test']:<12} "
            f"{_fmt(row['rps'], ',.0f'):>8} {_fmt(row['srv_us_per_req'], '.1f'):>10} "
            f"{_fmt(row['srv_us_in_run'], '.1f'):>6} "
            f"{row['ok']:>7} {row['rejected']:>4} {row['lost'] + row['bad']:>5} "
            f"{_fmt(row['p50_ms'], '.2f'):>7} {_fmt(row['p99_ms'], '.2f'):>7} "
            f"{_fmt(row['max_ms'], '.1f'):>7} {_fmt(row['achieved_rate'], ',.0f'):>7} "
            f"{_fmt(row['other_pct'], '.0f'):>6} {_fmt(row['client_us_per_req'], '.1f'):>6}"
        )
    print(
        "(medians over repeats; ok/rej/lost summed, lost includes bad replies; srv µs/req "
        "includes work deferred past the run\n (auth log writes), 'in run' does not; other% = "
        "CPU of other processes on the host during the run, in % of one core; cli µs = the load\n"
        " generator's CPU per request, radclient's or this script's)"
    )
    if loads:
        print(
            f"\n{'contracts':>9} {'bulk insert s':>13} {'start→ready s':>13} "
            f"{'RSS ready MiB':>13} {'RSS peak MiB':>12}"
        )
        for load in loads:
            print(
                f"{load.contracts:>9,} {load.populate_s:>13.1f} {load.ready_s:>13.1f} "
                f"{load.rss_ready_mib:>13.0f} {load.rss_peak_mib:>12.0f}"
            )


def print_verdicts(rows: Sequence[dict[str, Any]], loads: Sequence[Loaded]) -> None:
    def find(server: str, client: str, test: str, contracts: int | None = None) -> Any:
        for row in rows:
            if (row["server"], row["client"], row["test"]) == (server, client, test) and (
                contracts is None or row["contracts"] == contracts
            ):
                return row
        return None

    ours = sorted({r["contracts"] for r in rows if r["server"] == "radius-contracts"})
    lines: list[str] = []
    for contracts in ours:
        for test in ("pap", "chap"):
            mine = find("radius-contracts", "radclient", test, contracts)
            fr = find("freeradius-files", "radclient", test)
            if mine and fr and mine["rps"] and fr["rps"]:
                ratio = mine["rps"] / fr["rps"]
                lines.append(
                    f"{'PASS' if ratio >= 1.0 else 'FAIL'}  {test.upper()} radclient req/s "
                    f"{contracts:,}: {mine['rps']:,.0f} = {ratio:.2f}x FreeRADIUS files "
                    f"({fr['rps']:,.0f}) (target ≥ 1.0x)"
                )
        for client in ("radclient", "python"):
            mine = find("radius-contracts", client, "pap", contracts)
            if mine and mine["srv_us_per_req"] is not None:
                us = mine["srv_us_per_req"]
                lines.append(
                    f"{'PASS' if us <= 50 else 'FAIL'}  PAP server CPU {contracts:,} ({client}): "
                    f"{us:.1f} µs/req (target ≤ 50)"
                )
        mine = find("radius-contracts", "python-open", "lat10000", contracts)
        if mine and mine["p99_ms"] is not None:
            ok = mine["p99_ms"] < 5 and not mine["lost"] and not mine["bad"]
            lines.append(
                f"{'PASS' if ok else 'FAIL'}  p99 at 10,000 req/s {contracts:,}: "
                f"{mine['p99_ms']:.2f} ms, lost {mine['lost'] + mine['bad']} of {mine['n']:,} "
                "(target < 5 ms, none lost)"
            )
    if len(ours) >= 2:
        small, big = ours[0], ours[-1]
        for client, test in (
            ("radclient", "pap"),
            ("radclient", "chap"),
            ("python", "pap"),
            ("python", "mschapv2"),
            ("python", "mschapv2-hot"),
        ):
            a, b = (
                find("radius-contracts", client, test, small),
                find("radius-contracts", client, test, big),
            )
            if a and b and a["rps"] and b["rps"]:
                drop = 1 - b["rps"] / a["rps"]
                lines.append(
                    f"{'PASS' if drop <= 0.10 else 'FAIL'}  {test.upper()} {client} req/s at "
                    f"{big:,} vs {small:,}: {b['rps']:,.0f} vs {a['rps']:,.0f} "
                    f"({-drop * 100:+.1f} %, target: at most 10 % slower)"
                )
    for load in loads:
        ok = load.ready_s < 60 and load.rss_ready_mib < 2048
        lines.append(
            f"{'PASS' if ok else 'FAIL'}  {load.contracts:,} contracts: ready in "
            f"{load.ready_s:.1f} s, RSS {load.rss_ready_mib:,.0f} MiB (targets < 60 s, < 2 GiB)"
        )
    if lines:
        print("\n" + "\n".join(lines))


def describe_source(src: Path | None) -> str:
    """Which code the daemon runs: a --src tree, or this checkout's commit (+ dirty)."""
    if src is not None:
        return str(src)
    result = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return f"{ROOT} at {result.stdout.strip() or 'unknown commit'}"


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--contracts",
        type=int,
        action="append",
        help="contracts in the database (repeatable; "
        "default 10000 and 1000000); the first 10,000 are the anchor's users",
    )
    parser.add_argument(
        "--tests", default=",".join(TESTS), help=f"comma separated, of {', '.join(TESTS)}"
    )
    parser.add_argument(
        "--freeradius",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the same tests against FreeRADIUS files first",
    )
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run (N)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per test (median)")
    parser.add_argument("--procs", type=int, default=2, help="radclient streams (load.sh PROCS)")
    parser.add_argument("--sockets", type=int, default=2, help="Python closed loop: sockets")
    parser.add_argument("--window", type=int, default=64, help="Python closed loop: per socket")
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="open loop req/s (repeatable; default 10000, 5000 and 2000)",
    )
    parser.add_argument("--latency-seconds", type=float, default=5, help="open loop duration")
    parser.add_argument("--latency-sockets", type=int, default=32, help="open loop sockets")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="before each run, wait up to this long for other processes to use < 50 %% of a core",
    )
    parser.add_argument(
        "--server-cpu",
        default="0",
        help="the servers' cores, as taskset takes them: 0, or 0,1 to give them both (with "
        "--workers 2 for ours; FreeRADIUS's threads use what they get)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="our daemon's [radius] workers (processes)"
    )
    parser.add_argument(
        "--simultaneous-use",
        type=lambda text: None if text == "none" else int(text),
        default=1,
        help="every contract's simultaneous_use (none: no limit). With --workers above 1 a "
        "limit is decided in the database (login claims), a transaction per login",
    )
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--secret", default="perfsecret123", help="the anchor's SECRET")
    parser.add_argument("--anchor", type=Path, default=DEFAULT_ANCHOR)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rc-bench-auth"))
    parser.add_argument(
        "--py-spy",
        type=float,
        default=0,
        metavar="SECONDS",
        help="profile our daemon under PAP load for this long (per count)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the state directories")
    parser.add_argument(
        "--starve-auth-log",
        action="store_true",
        help="experiment: [auth_log] max_pending = 1000, flush_interval = 60, so outcomes are "
        "dropped and at most 1,000 a minute written; shows what writing the auth log costs",
    )
    parser.add_argument(
        "--src",
        type=Path,
        help="run the daemon from this copy of the checkout (DIR/src on PYTHONPATH, and its "
        "dictionaries/), e.g. one made with `git archive HEAD src dictionaries | tar -x -C DIR` "
        "while the work tree is being edited",
    )
    args = parser.parse_args()

    tests = tuple(t.strip() for t in args.tests.split(",") if t.strip())
    unknown = set(tests) - set(TESTS)
    if unknown:
        parser.error(f"unknown tests: {', '.join(sorted(unknown))}")
    counts: list[int] = args.contracts or [10_000, 1_000_000]
    args.out.mkdir(parents=True, exist_ok=True)
    opts = Options(
        anchor=args.anchor,
        data=args.out / "data",
        out=args.out,
        secret=args.secret.encode(),
        requests=args.requests,
        repeats=args.repeats,
        procs=args.procs,
        sockets=args.sockets,
        window=args.window,
        rates=args.rate or [10_000.0, 5_000.0, 2_000.0],
        latency_seconds=args.latency_seconds,
        latency_sockets=args.latency_sockets,
        client_cpu=args.client_cpu,
        quiet_wait=args.quiet_wait,
        tests=tests,
    )
    source = describe_source(args.src)
    if args.src:
        os.environ["PYTHONPATH"] = str(args.src.resolve() / "src")
    # This process is a client: it, radclient and py-spy stay off the server's core.
    os.sched_setaffinity(0, {args.client_cpu})
    print(
        f"radius-contracts Access-Request benchmark: {os.cpu_count()} CPUs, server on core "
        f"{args.server_cpu} ({args.workers} worker(s)), clients on core {args.client_cpu}, "
        "load average "
        f"{os.getloadavg()[0]:.2f}; tests {', '.join(tests)}; daemon from {source}; "
        f"out {args.out}{'; auth log STARVED' if args.starve_auth_log else ''}",
        flush=True,
    )
    users = make_data(args.anchor, opts.data, args.requests)
    runs: list[Run] = []
    loads: list[Loaded] = []
    try:
        if args.freeradius:
            print("\n== FreeRADIUS files (10,000 users)", flush=True)
            with freeradius(args.anchor, args.server_cpu, opts.data) as server:
                runs += run_all(server, users, opts)
        for count in counts:
            if count < len(users):
                parser.error(f"--contracts must be at least {len(users)} (the anchor's users)")
            print(f"\n== radius-contracts, {count:,} contracts", flush=True)
            state_dir = Path(tempfile.mkdtemp(prefix=f"rc-auth-{count}-", dir=args.out))
            try:
                populate_s = prepare_state(
                    state_dir, users, count, args.secret, args.simultaneous_use
                )
                print(f"  migrate + bulk insert: contracts in {populate_s:.1f} s", flush=True)
                loaded = Loaded(count, populate_s, 0.0, 0.0)
                extra = STARVED_AUTH_LOG if args.starve_auth_log else ()
                with our_daemon(
                    state_dir, count, args.server_cpu, loaded, extra, args.workers
                ) as server:
                    print(
                        f"  ready in {loaded.ready_s:.1f} s, RSS {loaded.rss_ready_mib:,.0f} MiB "
                        f"(pid {server.pid}, auth port {server.auth_port})",
                        flush=True,
                    )
                    runs += run_all(server, users, opts)
                    if args.py_spy:
                        profile(server, users, opts, args.py_spy)
                loads.append(loaded)
            finally:
                if not args.keep:
                    shutil.rmtree(state_dir, ignore_errors=True)
    finally:
        rows = summarize(runs)
        (args.out / "results.json").write_text(
            json.dumps(
                {
                    "source": source,
                    "starved_auth_log": args.starve_auth_log,
                    "summary": rows,
                    "runs": [asdict(r) for r in runs],
                    "loads": [asdict(load) for load in loads],
                },
                indent=1,
            )
        )
        if rows:
            with (args.out / "results.csv").open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        print_table(rows, loads)
        print_verdicts(rows, loads)
        print(f"\nrows in {args.out / 'results.csv'} and {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
