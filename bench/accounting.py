"""Accounting-Request benchmark: durable Start/Interim/Stop, radius-contracts against FreeRADIUS.

Run by hand (not part of the test suite); it prints its figures::

    .venv/bin/python bench/accounting.py                       # FreeRADIUS, SQLite FULL/NORMAL, PG
    .venv/bin/python bench/accounting.py --database sqlite --sqlite-synchronous FULL \\
        --tests radclient,latency --no-freeradius
    .venv/bin/python bench/accounting.py --database sqlite --py-spy 20   # where the time goes
    .venv/bin/python bench/accounting.py --database sqlite --py-spy 20 --py-spy-load 2000

Same layout as ``bench/auth.py`` (whose helpers it imports): servers on core 0
(``--server-cpu``), every client on core 1 (``--client-cpu``), FreeRADIUS from
``../shared/bench-anchor`` in the same sitting, server CPU from ``/proc/PID/stat``.

The request stream is realistic: each session is a Start, 0 to 2 x ``--interims`` Interim-Updates
(``--interims`` on average) with growing counters (every sixth session moves over 4 GiB, so its
counters carry Acct-*-Gigawords), and a Stop with its terminate cause; Acct-Session-Time grows
by ``--interval`` (60 s) per Interim and Event-Timestamp agrees with it (a Start is at most
five minutes old), Acct-Delay-Time is 0. Every session has its own Acct-Session-Id (fresh for
every run), so every request is a distinct packet. Sessions are staggered: request ``j`` of
session ``i`` comes at position ~``i + j * GAP`` of the stream, so Starts, Interims and Stops
of different sessions are mixed as from a busy BRAS, while a session's own requests are
``GAP`` positions apart; every client sends all of a session's requests through one socket (one
radclient stream), so none overtakes another, as from a NAS.
The same stream (re-tagged for each run) goes to FreeRADIUS and to our daemon.

Tests (``--tests``, comma separated):

``radclient``
    closed loop as in the anchor's ``load.sh``: ``--procs`` radclient streams (a session stays
    in one stream), each running its part as consecutive ``radclient -p 64`` runs over request
    files of 2,500 (radclient slows down badly on bigger ones).
``python``
    this script's closed-loop UDP client, ``--sockets`` x ``--window`` requests in flight
    (default 2 x 64, as many as radclient keeps); latency from send to Accounting-Response.
``wide``
    the same client with 8 sockets x 128 in flight: what group commit does with more
    concurrency than radclient offers (a real BRAS has thousands of sessions reporting).
``latency``
    open loop at each ``--rate`` (default 5,000 and 10,000/s) for ``--latency-seconds``, over
    32 sockets; p50/p99/max from send to the Accounting-Response, lost requests, the rate the
    client really sent at.

Servers: FreeRADIUS ``files`` (accounting to a flat detail file, the 15.3k/s yardstick) and
``sql`` (rlm_sql on SQLite with WAL and a busy timeout; ``sql-stock`` = the stock rollback
journal) via the anchor's ``setup-freeradius.sh``; then our daemon (``radius-contracts serve``,
a fresh state directory each) on SQLite with ``synchronous = FULL`` and ``NORMAL``, and on
PostgreSQL (a scratch database created on ``--pg-url``'s server and dropped afterwards; its
backends are pinned to the server core too, unless ``--no-pin-pg``, and their CPU is shown as
``db µs``). ``--py-spy SECONDS`` profiles each of our daemons under ``--py-spy-load`` (the
``wide`` closed loop by default, or an open-loop rate).

After each run against our daemon the database is checked against what was acknowledged:
every session with an answered request must exist once, with at least the counters of its
latest answered request, stopped with the Stop's exact counters and terminate cause if the
Stop was answered; and the daily usage totals must have grown by exactly the traffic of the
run's sessions (nothing counted twice). The batch sizes seen come from ``/metrics`` (the
histogram's growth during the run). Against FreeRADIUS the detail file (or radacct table) is
counted the same way.

Server CPU is utime + stime of all the server's threads, from idle to idle (``in run``: only
while the requests were answered); ``other%`` is what other processes on the host used
meanwhile (for PostgreSQL that includes its backends). Every load loop is bounded by a count
and a time limit, every server is stopped at the end. Rows go to ``OUT/results.{csv,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg

import auth as auth_bench
from auth import (
    ANCHOR_USERS,
    COMMON,
    DEFAULT_ANCHOR,
    Loaded,
    Meter,
    Server,
    User,
    _clean_env,
    _sockets,
    cpu_seconds,
    describe_source,
    make_data,
    our_daemon,
    percentile,
    populate,
    write_config,
)
from radius_contracts.radius import codec

TESTS = ("radclient", "python", "wide", "latency")
FR_MODES = ("files", "sql", "sql-stock")
FR_LABELS = {"files": "fr-detail", "sql": "fr-sql-wal", "sql-stock": "fr-sql-stock"}
FR_ACCT_PORT = 31813
INTERVAL = 60  # seconds between a session's Interim-Updates (Acct-Interim-Interval)
GAP = 1_000  # stream positions between consecutive requests of one session
CHUNK = 2_500  # radclient requests per file (load.sh's CHUNK)
WIDE = (8, 128)  # sockets x window of the "wide" test
START, STOP, INTERIM = 1, 2, 3
TERMINATE_CAUSES = (1, 1, 2, 4)  # User-Request, User-Request, Lost-Carrier, Idle-Timeout
CAUSE_NAMES = {1: "User-Request", 2: "Lost-Carrier", 4: "Idle-Timeout"}
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


# -- the request stream ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcctReq:
    """One Accounting-Request of the stream."""

    session: int  # index of its session in the stream
    step: int  # 0 Start, 1.. Interims, last the Stop
    status: int
    user: User
    session_id: str
    event_time: int
    session_time: int | None = None
    input_octets: int | None = None  # 64-bit; Gigawords on the wire above 2**32
    output_octets: int | None = None
    terminate_cause: int | None = None

    def attributes(self) -> list[tuple[str, int, str | int]]:
        """(radclient name, attribute number, value): the one source of both encodings."""
        user = self.user
        attrs: list[tuple[str, int, str | int]] = [
            ("User-Name", codec.USER_NAME, user.name),
            ("Acct-Status-Type", codec.ACCT_STATUS_TYPE, self.status),
            ("Acct-Session-Id", codec.ACCT_SESSION_ID, self.session_id),
            ("NAS-Port", codec.NAS_PORT, user.index),
            ("Calling-Station-Id", codec.CALLING_STATION_ID, _mac(user.index)),
            ("Acct-Authentic", codec.ACCT_AUTHENTIC, 1),  # RADIUS
            ("Acct-Delay-Time", codec.ACCT_DELAY_TIME, 0),
            ("Event-Timestamp", codec.EVENT_TIMESTAMP, self.event_time),
        ]
        if user.ip:
            attrs.append(("Framed-IP-Address", codec.FRAMED_IP_ADDRESS, "ip:" + user.ip))
        if self.status != START:
            assert self.input_octets is not None and self.output_octets is not None
            attrs.append(("Acct-Session-Time", codec.ACCT_SESSION_TIME, self.session_time or 0))
            for name, low, high, value in (
                ("Input", codec.ACCT_INPUT_OCTETS, codec.ACCT_INPUT_GIGAWORDS, self.input_octets),
                (
                    "Output",
                    codec.ACCT_OUTPUT_OCTETS,
                    codec.ACCT_OUTPUT_GIGAWORDS,
                    self.output_octets,
                ),
            ):
                attrs.append((f"Acct-{name}-Octets", low, value & 0xFFFFFFFF))
                if value >> 32:
                    attrs.append((f"Acct-{name}-Gigawords", high, value >> 32))
            attrs.append(("Acct-Input-Packets", codec.ACCT_INPUT_PACKETS, self.input_octets // 500))
            attrs.append(
                ("Acct-Output-Packets", codec.ACCT_OUTPUT_PACKETS, self.output_octets // 1200)
            )
        if self.status == STOP:
            attrs.append(
                ("Acct-Terminate-Cause", codec.ACCT_TERMINATE_CAUSE, self.terminate_cause or 1)
            )
        return attrs


def _mac(i: int) -> str:
    return f"02:00:00:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


# The anchor's COMMON block (NAS-IP-Address 127.0.0.1, NAS-Identifier, NAS-Port-Type,
# Service-Type, Framed-Protocol, Called-Station-Id), as radclient lines.
COMMON_TEXT = (
    'NAS-IP-Address = 127.0.0.1\nNAS-Identifier = "perf-bras"\nNAS-Port-Type = 15\n'
    'Service-Type = 2\nFramed-Protocol = 1\nCalled-Station-Id = "pppoe-svc"\n'
)


def build_stream(
    users: Sequence[User],
    requests: int,
    interims: int,
    tag: str,
    *,
    interval: int = INTERVAL,
    now: float | None = None,
) -> list[AcctReq]:
    """About ``requests`` requests: sessions of a Start, 0..2*``interims`` Interims, a Stop.

    A session's Interims come every ``interval`` seconds by its Acct-Session-Time, and its
    Event-Timestamps agree (Start at now - its duration, Stop at now): the store ties late and
    repeated records to their session by the start time they imply (within a minute). With
    the default 60 s (RFC 2869's minimum) a Start is at most five minutes old; with 300 s it is
    up to 25 minutes old, so the stale-session job (15 minutes without an update, by default)
    closes sessions midway. 0 sets every Event-Timestamp to now while Acct-Session-Time still
    grows by 300 s per Interim: records that contradict each other, for experiments.
    """
    spread = 2 * interims + 1  # Interim counts 0..2*interims, cycling: mean ``interims``
    sessions = max(1, round(requests / (2 + interims)))
    now = time.time() if now is None else now
    step_s = interval or 300
    keyed: list[tuple[int, int, AcctReq]] = []
    for i in range(sessions):
        user = users[i % len(users)]
        count = (i * 7) % spread
        duration = (count + 1) * step_s - i % (step_s * 2 // 3)  # the Stop's Acct-Session-Time
        started = int(now) - duration - 5 if interval else int(now)
        # Bytes per interval: every sixth session moves 4.5 GB (6 is prime to the default
        # spread of 5), so its counters pass 4 GiB and carry Gigawords.
        per_in = (2_000 + (i * 7919) % 120_000) * 300
        per_out = 4_500_000_000 if i % 6 == 1 else (20_000 + (i * 104_729) % 2_000_000) * 300
        session_id = f"{tag}-{i:08d}"
        steps = [(START, 0)] + [(INTERIM, j * step_s) for j in range(1, count + 1)]
        steps.append((STOP, duration))
        for step, (status, elapsed) in enumerate(steps):
            req = AcctReq(
                session=i,
                step=step,
                status=status,
                user=user,
                session_id=session_id,
                event_time=started + elapsed if interval else started,
                session_time=None if status == START else elapsed,
                input_octets=None if status == START else per_in * elapsed // step_s,
                output_octets=None if status == START else per_out * elapsed // step_s,
                terminate_cause=TERMINATE_CAUSES[i % len(TERMINATE_CAUSES)]
                if status == STOP
                else None,
            )
            keyed.append((i + step * GAP, step, req))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [req for _key, _step, req in keyed]


def _value_bytes(value: str | int) -> bytes:
    if isinstance(value, int):
        return value.to_bytes(4, "big")
    if value.startswith("ip:"):
        return socket.inet_aton(value[3:])
    return value.encode()


def encode(req: AcctReq, identifier: int, secret: bytes) -> bytes:
    body = b"".join(codec.attribute(code, _value_bytes(v)) for _, code, v in req.attributes())
    return codec.encode_request(
        codec.Code.ACCOUNTING_REQUEST,
        identifier,
        body + COMMON,
        secret,
        message_authenticator=False,
    )


@dataclass
class Packets:
    """Encoded requests and the client socket each goes out on."""

    data: list[bytes]
    socket: list[int]

    def __len__(self) -> int:
        return len(self.data)


def encode_stream(reqs: Sequence[AcctReq], sockets: int, secret: bytes) -> Packets:
    """A session's requests all go out on socket session % ``sockets``, in stream order, so
    none overtakes another of its session (as from a NAS); Identifiers count up per socket."""
    sent = [0] * sockets
    data: list[bytes] = []
    assigned: list[int] = []
    for req in reqs:
        s = req.session % sockets
        data.append(encode(req, sent[s] % 256, secret))
        assigned.append(s)
        sent[s] += 1
    return Packets(data, assigned)


def radclient_text(req: AcctReq) -> str:
    lines = []
    for name, _code, value in req.attributes():
        if isinstance(value, int):
            lines.append(f"{name} = {value}")
        elif value.startswith("ip:"):
            lines.append(f"{name} = {value[3:]}")
        else:
            lines.append(f'{name} = "{value}"')
    return "\n".join(lines) + "\n" + COMMON_TEXT + "\n"


# -- clients --------------------------------------------------------------------------------------


@dataclass
class ClientResult:
    n: int
    wall_s: float
    answered: bytearray  # 1 where request k got a valid Accounting-Response
    latency: list[float]
    bad: int = 0  # replies with a wrong code or Response Authenticator
    stray: int = 0
    achieved_rate: float | None = None
    lag_p99_ms: float | None = None
    overrun: int = 0
    rc_cpu_s: float | None = None  # radclient's own CPU
    reported_ok: int | None = None  # radclient: its count (answered only marks whole streams)

    @property
    def ok(self) -> int:
        return sum(self.answered) if self.reported_ok is None else self.reported_ok

    @property
    def lost(self) -> int:
        return self.n - self.ok


def _valid(reply: bytes, request: bytes, secret: bytes) -> bool:
    """An Accounting-Response whose Response Authenticator matches (RFC 2866 §3)."""
    if len(reply) < 20 or reply[0] != codec.Code.ACCOUNTING_RESPONSE:
        return False
    expected = hashlib.md5(reply[:4] + request[4:20] + reply[20:] + secret).digest()
    return reply[4:20] == expected


def closed_loop(
    port: int,
    stream: Packets,
    sockets: int,
    window: int,
    secret: bytes,
    *,
    timeout: float = 3.0,
    max_seconds: float = 120.0,
) -> ClientResult:
    """Keep ``window`` requests in flight per socket (like ``radclient -p``), no retransmits.

    A request stays in flight until answered or ``timeout`` (then it is lost); everything left
    at ``max_seconds`` is lost too. Should a request be outstanding so long that its socket's
    Identifiers wrap around, a reply goes to the outstanding request it authenticates.
    """
    assert 0 < window < 256
    packets = stream.data
    n = len(packets)
    result = ClientResult(n, 0.0, bytearray(n), [])
    streams: list[list[int]] = [[] for _ in range(sockets)]
    for k, s in enumerate(stream.socket):
        streams[s].append(k)
    clock = time.perf_counter
    with _sockets(port, sockets) as socks:
        poller = select.epoll()
        index = {sock.fileno(): i for i, sock in enumerate(socks)}
        for sock in socks:
            poller.register(sock.fileno(), select.EPOLLIN)
        pending: list[dict[int, list[tuple[int, float]]]] = [{} for _ in socks]
        inflight = [0] * sockets
        position = [0] * sockets
        finished = 0  # answered or given up
        started = clock()
        sweep = started + 0.05
        try:
            while finished < n:
                now = clock()
                if now - started > max_seconds:
                    break
                for i in range(sockets):
                    waiting, mine, p = pending[i], streams[i], position[i]
                    send = socks[i].send
                    while inflight[i] < window and p < len(mine):
                        k = mine[p]
                        p += 1
                        packet = packets[k]
                        send(packet)
                        waiting.setdefault(packet[1], []).append((k, clock()))
                        inflight[i] += 1
                    position[i] = p
                if now >= sweep:
                    cutoff = now - timeout
                    for i, waiting in enumerate(pending):
                        for entries in waiting.values():
                            expired = [e for e in entries if e[1] < cutoff]
                            for entry in expired:
                                entries.remove(entry)
                            inflight[i] -= len(expired)
                            finished += len(expired)
                    sweep = now + 0.05
                for fd, _mask in poller.poll(0.01):
                    i = index[fd]
                    sock, waiting = socks[i], pending[i]
                    while True:
                        try:
                            reply = sock.recv(4096)
                        except BlockingIOError:
                            break
                        except ConnectionRefusedError:
                            continue  # ICMP port unreachable: the server is gone
                        received = clock()
                        entries = waiting.get(reply[1])
                        if not entries:
                            result.stray += 1
                            continue
                        entry = next(
                            (e for e in entries if _valid(reply, packets[e[0]], secret)), None
                        )
                        if entry is None:
                            result.bad += 1
                            continue
                        entries.remove(entry)
                        inflight[i] -= 1
                        finished += 1
                        result.answered[entry[0]] = 1
                        result.latency.append(received - entry[1])
        finally:
            poller.close()
        result.wall_s = clock() - started
    return result


def open_loop(
    port: int,
    stream: Packets,
    sockets: int,
    rate: float,
    secret: bytes,
    *,
    drain: float = 2.0,
) -> ClientResult:
    """Send packet k at start + k/``rate`` on its socket, whatever the replies do.

    Spins on its own core (as bench/auth.py's open loop); ``lag_p99_ms`` and ``achieved_rate``
    show whether it kept the schedule. Ends ``drain`` seconds after the last send at the latest.
    When replies take so long that a socket's 256 Identifiers wrap around (``overrun``), a
    reply is matched to whichever outstanding request with its Identifier it authenticates.
    """
    packets, assigned = stream.data, stream.socket
    n = len(packets)
    result = ClientResult(n, 0.0, bytearray(n), [])
    sent_at = [0.0] * n
    with _sockets(port, sockets) as socks:
        poller = select.epoll()
        index = {sock.fileno(): i for i, sock in enumerate(socks)}
        for sock in socks:
            poller.register(sock.fileno(), select.EPOLLIN)
        slots: list[dict[int, list[int]]] = [{} for _ in socks]
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
                        s = assigned[k]
                        packet = packets[k]
                        sends[s](packet)
                        sent_at[k] = clock()
                        waiting = slots[s].setdefault(packet[1], [])
                        if waiting:
                            result.overrun += 1  # an earlier request with this id is unanswered
                        waiting.append(k)
                        k += 1
                    if k == n:
                        end = clock() + drain
                elif answered >= n or now > end:
                    break
                for fd, _mask in poller.poll(0):
                    sock, slot = socks[index[fd]], slots[index[fd]]
                    while True:
                        try:
                            reply = sock.recv(4096)
                        except BlockingIOError:
                            break
                        except ConnectionRefusedError:
                            continue
                        received = clock()
                        waiting = slot.get(reply[1])
                        if not waiting:
                            result.stray += 1
                            continue
                        answered += 1
                        j = next((j for j in waiting if _valid(reply, packets[j], secret)), None)
                        if j is None:
                            result.bad += 1
                            continue
                        waiting.remove(j)
                        result.answered[j] = 1
                        result.latency.append(received - sent_at[j])
        finally:
            poller.close()
    lags = [sent_at[j] - (start + j / rate) for j in range(n)]
    span = sent_at[-1] - sent_at[0]
    result.wall_s = span
    result.achieved_rate = (n - 1) / span if span > 0 else 0.0
    result.lag_p99_ms = percentile(lags, 0.99) * 1000
    return result


_SUMMARY = re.compile(r"^\s*(Accepted|Rejected|Lost)\s*:\s*(\d+)", re.MULTILINE)


@dataclass
class RadclientFiles:
    """The request files of each radclient stream, and which requests each stream holds."""

    workdir: Path
    parts: list[list[int]]
    files: list[list[Path]]


def radclient_files(reqs: Sequence[AcctReq], procs: int, workdir: Path) -> RadclientFiles:
    """Session i goes to stream i % ``procs`` (its requests stay in order, in one stream);
    each stream's part is cut into files of CHUNK requests."""
    workdir.mkdir(parents=True, exist_ok=True)
    parts: list[list[int]] = [[] for _ in range(procs)]
    for k, req in enumerate(reqs):
        parts[req.session % procs].append(k)
    files: list[list[Path]] = []
    for s, ks in enumerate(parts):
        files.append([])
        for c in range(0, len(ks), CHUNK):
            path = workdir / f"s{s}_{c // CHUNK:04d}.txt"
            path.write_text("".join(radclient_text(reqs[k]) for k in ks[c : c + CHUNK]))
            files[s].append(path)
    return RadclientFiles(workdir, parts, files)


def radclient_loop(
    port: int,
    n: int,
    prepared: RadclientFiles,
    secret: bytes,
    *,
    parallel: int,
    client_cpu: int,
    run_timeout: float = 120.0,
) -> ClientResult:
    """The streams at once, each its files one after the other (``radclient -p``, no retries).

    Every radclient run is killed after ``run_timeout``. radclient only reports counts, so
    ``answered`` marks the requests of the streams that lost nothing (which ones a stream
    lost is unknown); ``reported_ok`` is radclient's own count.
    """
    procs = len(prepared.parts)
    counts = [{"Accepted": 0, "Rejected": 0, "Lost": 0} for _ in range(procs)]
    failures: list[str] = []

    def stream(s: int) -> None:
        for path in prepared.files[s]:
            command = ["taskset", "-c", str(client_cpu), "radclient", "-q", "-s",
                       "-p", str(parallel), "-c", "1", "-r", "1", "-t", "3", "-f", str(path),
                       f"127.0.0.1:{port}", "acct", secret.decode()]  # fmt: skip
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=run_timeout, check=False
                )
            except subprocess.TimeoutExpired:
                failures.append(f"{path.name}: timed out")
                continue
            found = dict(_SUMMARY.findall(done.stdout + done.stderr))
            if not found:
                failures.append(f"{path.name}: rc={done.returncode} {done.stderr.strip()[:200]}")
            for key, value in found.items():
                counts[s][key] += int(value)

    times0 = os.times()
    started = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(s,)) for s in range(procs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    times1 = os.times()
    for problem in failures:
        print(f"  ! radclient {problem}")
    result = ClientResult(n, wall, bytearray(n), [])
    for s, ks in enumerate(prepared.parts):
        if counts[s]["Accepted"] == len(ks):
            for k in ks:
                result.answered[k] = 1
    result.reported_ok = sum(c["Accepted"] for c in counts)
    if result.reported_ok != sum(result.answered):
        print(f"  ! radclient: {n - result.reported_ok} requests lost; their streams unchecked")
    result.bad = sum(c["Rejected"] for c in counts)
    result.rc_cpu_s = (times1.children_user - times0.children_user) + (
        times1.children_system - times0.children_system
    )
    return result


# -- servers --------------------------------------------------------------------------------------


@dataclass
class Target:
    """A server under test, and how to look into what it recorded."""

    label: str
    server: Server
    kind: str  # freeradius | sqlite | postgres
    api_port: int | None = None
    sqlite_path: Path | None = None
    pg_url: str | None = None
    pg_db: str | None = None
    fr_run: Path | None = None
    log: Path | None = None
    pg_vacuum: bool = False  # VACUUM ANALYZE between runs (the server's autovacuum is off)


@contextmanager
def freeradius(anchor: Path, mode: str, cpu: int, busy_timeout: int) -> Iterator[Target]:
    """FreeRADIUS via the anchor's setup script, pinned to ``cpu``; always stopped."""
    script = str(anchor / "setup-freeradius.sh")
    base = "sql" if mode.startswith("sql") else "files"
    env = {**os.environ, "SRV_CPU": str(cpu), "NUSERS": str(ANCHOR_USERS)}
    if mode == "sql":
        env.update(SQLITE_JOURNAL="WAL", SQLITE_BUSY_TIMEOUT=str(busy_timeout))
    subprocess.run(["bash", script, "config", base], check=True, timeout=300, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    run_dir = Path(f"/tmp/fr-run-{base}")
    try:
        subprocess.run(["bash", script, "start", base], check=True, timeout=120, env=env)
        pid = int((run_dir / "server.pid").read_text())
        server = Server(FR_LABELS[mode], ANCHOR_USERS, pid, FR_ACCT_PORT - 1, FR_ACCT_PORT)
        yield Target(FR_LABELS[mode], server, "freeradius", fr_run=run_dir)
    finally:
        subprocess.run(["bash", script, "stop", base], timeout=60, env=env, check=False)


async def _pg_execute(url: str, sql: str) -> str:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        if sql.upper().startswith("SHOW "):
            return str(await connection.fetchval(sql))
        return str(await connection.execute(sql, timeout=600))
    finally:
        await connection.close()


@contextmanager
def scratch_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database on ``admin_url``'s server, dropped afterwards."""
    name = f"rc_bench_acct_{os.getpid()}"
    asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}", name
    finally:
        asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _populate_pg(url: str, users: Sequence[User], secret: str) -> None:
    """The anchor's users as contracts, and the bench NAS (as auth.populate does for SQLite)."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        maker = await connection.fetchval("SELECT id FROM manufacturers WHERE name = 'MikroTik'")
        now = datetime.now(UTC)
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO nas (name, address, secret, manufacturer_id, coa_port,"
                " require_message_authenticator, active, created_at, created_by, created_via,"
                " updated_at, updated_by, updated_via)"
                " VALUES ($1, $2, $3, $4, 3799, true, true, $5, 'bench', 'bench', $5, 'bench',"
                " 'bench')",
                "bench-bras", "127.0.0.1", secret, maker, now,
            )  # fmt: skip
            await connection.executemany(
                "INSERT INTO contracts (number, status, auto_extend, customer_name,"
                " customer_custom_fields, custom_fields, username, username_key, password,"
                " max_upload, max_download, ipv4, simultaneous_use, created_at, created_by,"
                " created_via, updated_at, updated_by, updated_via)"
                " VALUES ($1, 'active', false, $2, '{}', '{\"plan\": \"anchor\"}', $3, $4, $5,"
                " '50M', '500M', $6, 1, $7, 'bench', 'bench', $7, 'bench', 'bench')",
                [
                    (
                        f"A{u.index:08d}",
                        f"Anchor {u.index}",
                        u.name,
                        u.name.lower(),
                        u.password,
                        u.ip,
                        now,
                    )
                    for u in users
                ],
            )
    finally:
        await connection.close()


def prepare_state(
    state_dir: Path, users: Sequence[User], secret: str, extra: Sequence[str], pg_url: str | None
) -> None:
    """Fresh state: migrate (schema and defaults), then the anchor's users and the NAS."""
    config = write_config(state_dir, 1, 1, 1, extra)  # ports are irrelevant to migrate
    subprocess.run(
        [sys.executable, "-m", "radius_contracts", "migrate", "--config", str(config)],
        check=True,
        timeout=300,
        env=_clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if pg_url is None:
        populate(state_dir / "radius-contracts.db", users, len(users), secret)
    else:
        asyncio.run(_populate_pg(pg_url, users, secret))


QUOTA_PLAN = (
    "INSERT INTO plans (name, max_upload, max_download, quota_bytes, quota_period, quota_counts,"
    " quota_action, fup_max_upload, fup_max_download, windows, active, created_at, updated_at)"
    " VALUES ('bench-quota', '50M', '500M', 10000000000000000, 'month', 'both', 'fup', '5M',"
    " '20M', '[]', {true}, {now}, {now})"
)


def on_quota_plan(state_dir: Path, pg_url: str | None) -> None:
    """Every contract on a plan whose quota (10 PB a month) the run never reaches: each
    request's traffic is counted against it and checked, and no CoA is sent."""
    if pg_url is None:
        connection = sqlite3.connect(state_dir / "radius-contracts.db")
        with connection:
            connection.execute(QUOTA_PLAN.format(true=1, now="CURRENT_TIMESTAMP"))
            connection.execute("UPDATE contracts SET plan_id = (SELECT max(id) FROM plans)")
        connection.close()
        return
    plan = QUOTA_PLAN.format(true="true", now="now()")
    asyncio.run(_pg_execute(pg_url, plan))
    asyncio.run(_pg_execute(pg_url, "UPDATE contracts SET plan_id = (SELECT max(id) FROM plans)"))


def daemon_extra(kind: str, synchronous: str, pg_url: str | None, args: Any) -> list[str]:
    lines = ["[database]"]
    if kind == "postgres":
        assert pg_url is not None
        lines.append(f'url = "{pg_url}"')
    else:
        lines.append(f'sqlite_synchronous = "{synchronous}"')
    lines.append("[accounting]")
    if args.max_batch:
        lines.append(f"max_batch = {args.max_batch}")
    if args.max_pending:
        lines.append(f"max_pending = {args.max_pending}")
    return lines


@contextmanager
def our_server(
    label: str, kind: str, state_dir: Path, cpu: int, extra: Sequence[str], pg: tuple[str, str]
) -> Iterator[Target]:
    """auth.our_daemon (pinned, ready on /readyz), plus where its API and database are."""
    loaded = Loaded(ANCHOR_USERS, 0.0, 0.0, 0.0)
    vacuum = False
    if pg[0]:
        # Without autovacuum (this machine's CI config turns it off) every run leaves its dead
        # row versions and stale statistics to the next, which then runs slower and slower.
        vacuum = asyncio.run(_pg_execute(pg[0], "SHOW autovacuum")) == "off"
        if vacuum:
            print("  PostgreSQL autovacuum is off: VACUUM ANALYZE before every run", flush=True)
    with our_daemon(state_dir, ANCHOR_USERS, cpu, loaded, extra) as server:
        config = tomllib.loads((state_dir / "bench.toml").read_text())
        server.label = label
        yield Target(
            label,
            server,
            kind,
            api_port=int(config["api"]["port"]),
            sqlite_path=state_dir / "radius-contracts.db" if kind == "sqlite" else None,
            pg_url=pg[0] or None,
            pg_db=pg[1] or None,
            log=state_dir / "daemon.log",
            pg_vacuum=vacuum,
        )


# -- what the servers recorded --------------------------------------------------------------------


def metrics(target: Target) -> dict[str, float]:
    if target.api_port is None:
        return {}
    url = f"http://127.0.0.1:{target.api_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with suppress(ValueError):
                found[name] = float(value)
    return found


BATCH = "radius_contracts_accounting_batch_size"
PENDING = "radius_contracts_accounting_pending"


def wait_drained(target: Target, limit: float = 180.0) -> float:
    """Wait (at most ``limit`` s) until the daemon has committed everything queued; a run
    the server could not keep up with leaves a backlog that would spill into the next run.
    Returns the seconds waited."""
    started = time.perf_counter()
    if target.api_port is None:
        return 0.0
    while time.perf_counter() - started < limit:
        if metrics(target).get(PENDING, 0.0) == 0.0:
            break
        time.sleep(0.2)
    else:
        print(f"  ! {target.label}: accounting still pending after {limit:.0f} s", flush=True)
    return time.perf_counter() - started


def batch_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Batches committed between two /metrics reads: count, mean, histogram, commit time."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    count = delta(f"{BATCH}_count")
    bounds = [
        re.search(r'le="([^"]+)"', name).group(1)  # type: ignore[union-attr]
        for name in after
        if name.startswith(f"{BATCH}_bucket")
    ]
    histogram: dict[str, int] = {}
    previous = 0.0
    for bound in bounds:
        cumulative = delta(f'{BATCH}_bucket{{le="{bound}"}}')
        if cumulative - previous:
            histogram[f"≤{bound}" if bound != "+Inf" else ">max"] = int(cumulative - previous)
        previous = cumulative
    records = "radius_contracts_accounting_records_total"
    packets = "radius_contracts_radius_packets_total"
    by_outcome: dict[str, int] = {}
    for name in after:
        if name.startswith(packets) and delta(name):
            # {port="…",outcome="…"}: both ports summed
            outcome = name.split('outcome="', 1)[1].split('"', 1)[0]
            by_outcome[outcome] = by_outcome.get(outcome, 0) + int(delta(name))
    return {
        "batches": int(count),
        "mean": delta(f"{BATCH}_sum") / count if count else None,
        "histogram": histogram,
        "commit_ms_per_batch": (
            delta("radius_contracts_accounting_commit_seconds_total") / count * 1000
            if count
            else None
        ),
        "recorded": int(delta(f'{records}{{fate="recorded"}}')),
        "failed": int(delta(f'{records}{{fate="failed"}}')),
        "dropped": int(delta(f'{records}{{fate="dropped"}}')),
        "packets": by_outcome,
    }


Row = tuple[str, bool, int, int, int, str | None, int | None]
"""(acct_session_id, stopped, input_octets, output_octets, session_time, cause, contract_id)"""


async def _pg_rows(url: str, tag: str) -> tuple[list[Row], tuple[int, int, int]]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT acct_session_id, stopped_at IS NOT NULL, input_octets, output_octets,"
            " session_time, terminate_cause, contract_id FROM sessions"
            " WHERE acct_session_id LIKE $1",
            f"{tag}-%" if tag else "",
        )
        usage = await connection.fetchrow(
            "SELECT COALESCE(SUM(input_octets), 0), COALESCE(SUM(output_octets), 0),"
            " COALESCE(SUM(session_time), 0) FROM usage_daily"
        )
    finally:
        await connection.close()
    return [tuple(r) for r in rows], (int(usage[0]), int(usage[1]), int(usage[2]))  # type: ignore[misc]


def recorded(target: Target, tag: str) -> tuple[list[Row], tuple[int, int, int]]:
    """The sessions of run ``tag`` (none for "") in our database, and the usage totals."""
    if target.pg_url is not None:
        return asyncio.run(_pg_rows(target.pg_url, tag))
    assert target.sqlite_path is not None
    connection = sqlite3.connect(target.sqlite_path, timeout=30)
    try:
        rows = connection.execute(
            "SELECT acct_session_id, stopped_at IS NOT NULL, input_octets, output_octets,"
            " session_time, terminate_cause, contract_id FROM sessions"
            " WHERE acct_session_id LIKE ?",
            (f"{tag}-%" if tag else "",),
        ).fetchall()
        usage = connection.execute(
            "SELECT COALESCE(SUM(input_octets), 0), COALESCE(SUM(output_octets), 0),"
            " COALESCE(SUM(session_time), 0) FROM usage_daily"
        ).fetchone()
    finally:
        connection.close()
    return [(r[0], bool(r[1]), *r[2:]) for r in rows], tuple(usage)


def usage_totals(target: Target) -> tuple[int, int, int]:
    """Input octets, output octets and session time of all contracts' daily usage rows."""
    return recorded(target, "")[1]


def verify(
    target: Target,
    tag: str,
    reqs: Sequence[AcctReq],
    answered: bytearray,
    usage_before: tuple[int, int, int],
) -> dict[str, Any]:
    """Every acknowledged request is in the database; no traffic counted twice."""
    latest: dict[str, AcctReq] = {}
    for k, req in enumerate(reqs):
        if answered[k]:
            seen = latest.get(req.session_id)
            if seen is None or req.step > seen.step:
                latest[req.session_id] = req
    rows, usage_after = recorded(target, tag)
    by_id: dict[str, list[Row]] = {}
    for row in rows:
        by_id.setdefault(row[0], []).append(row)
    problems: dict[str, int] = {}
    examples: list[str] = []

    def problem(kind: str, session_id: str) -> None:
        problems[kind] = problems.get(kind, 0) + 1
        if len(examples) < 5:
            examples.append(f"{kind}: {session_id}")

    for session_id, req in latest.items():
        found = by_id.get(session_id)
        if not found:
            problem("missing", session_id)
            continue
        row = found[0]
        in_, out = req.input_octets or 0, req.output_octets or 0
        if row[6] is None:
            problem("no contract", session_id)
        if req.status == STOP:
            cause = CAUSE_NAMES.get(req.terminate_cause or 1)
            if not row[1]:
                problem("Stop acknowledged, session open", session_id)
            elif (row[2], row[3], row[4]) != (in_, out, req.session_time) or row[5] != cause:
                problem("Stop acknowledged, other counters", session_id)
        elif row[2] < in_ or row[3] < out or row[4] < (req.session_time or 0):
            problem("counters below the acknowledged", session_id)
    duplicates = sum(1 for found in by_id.values() if len(found) > 1)
    if duplicates:
        problems["sessions stored twice"] = duplicates
    sums = (
        sum(r[2] for r in rows if r[6] is not None),
        sum(r[3] for r in rows if r[6] is not None),
        sum(r[4] for r in rows if r[6] is not None),
    )
    grown = tuple(a - b for a, b in zip(usage_after, usage_before, strict=True))
    if grown != sums:
        problems["usage_daily != sessions"] = 1
        examples.append(f"usage grew by {grown} (in, out, time), sessions hold {sums}")
    return {
        "sessions_acked": len(latest),
        "stops_acked": sum(1 for r in latest.values() if r.status == STOP),
        "rows": len(rows),
        "problems": problems,
        "examples": examples,
    }


def verify_freeradius(target: Target, tag: str, answered: bytearray) -> dict[str, Any]:
    """FreeRADIUS: count the run's records in its detail file or radacct table."""
    assert target.fr_run is not None
    acked = sum(answered)
    if target.label == "fr-detail":
        needle = f'Acct-Session-Id = "{tag}-'.encode()
        count = sum(
            path.read_bytes().count(needle) for path in (target.fr_run / "radacct").rglob("detail*")
        )
        return {"records": count, "acked": acked, "ok": count >= acked}
    connection = sqlite3.connect(target.fr_run / "radius.db", timeout=30)
    try:
        rows, stopped = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(acctstoptime IS NOT NULL), 0) FROM radacct"
            " WHERE acctsessionid LIKE ?",
            (f"{tag}-%",),
        ).fetchone()
    finally:
        connection.close()
    return {"sessions": rows, "stopped": stopped, "acked": acked}


# -- PostgreSQL backends --------------------------------------------------------------------------


def pg_backends(database: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to ``database`` (our daemon's pool)."""
    found = []
    marker = f" {database} ".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with suppress(OSError):
            if marker in (proc / "cmdline").read_bytes().replace(b"\0", b" "):
                found.append(int(proc.name))
    return found


class BackendCpu:
    """CPU of the daemon's PostgreSQL backends, which run in processes of their own."""

    def __init__(self, target: Target, cpu: int | None) -> None:
        self.database = target.pg_db
        self.cpu = cpu  # None: leave them where the kernel puts them
        self.start: dict[int, float] = {}

    def _read(self) -> dict[int, float]:
        if self.database is None:
            return {}
        found = {}
        for pid in pg_backends(self.database):
            with suppress(OSError, ValueError):
                found[pid] = cpu_seconds(pid)
        return found

    def pin(self) -> None:
        """Put the backends on the server's core: they are part of the server here."""
        if self.database is None or self.cpu is None:
            return
        for pid in pg_backends(self.database):
            with suppress(OSError):
                os.sched_setaffinity(pid, {self.cpu})

    def begin(self) -> None:
        self.pin()
        self.start = self._read()

    def seconds(self) -> float:
        now = self._read()
        return sum(value - self.start.get(pid, 0.0) for pid, value in now.items())


# -- the tests ------------------------------------------------------------------------------------


@dataclass
class Options:
    secret: bytes
    requests: int
    interims: int
    repeats: int
    procs: int
    parallel: int
    sockets: int
    window: int
    rates: list[float]
    latency_seconds: float
    latency_sockets: int
    server_cpu: int
    client_cpu: int
    quiet_wait: float
    tests: tuple[str, ...]
    out: Path
    pg_cpu: int | None = None  # where the PostgreSQL backends go (None: anywhere)
    interval: int = INTERVAL  # seconds between a session's Interims (build_stream)
    users: list[User] = field(default_factory=list)


@dataclass
class AcctRun:
    server: str
    client: str  # radclient | python | wide | open
    test: str
    rep: int
    n: int
    wall_s: float
    rps: float
    srv_cpu_s: float
    srv_cpu_run_s: float
    db_cpu_s: float
    ok: int
    lost: int
    bad: int
    other_pct: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    achieved_rate: float | None = None
    lag_p99_ms: float | None = None
    rc_cpu_s: float | None = None
    batches: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def us_per_request(self) -> float:
        return self.srv_cpu_s / self.n * 1e6 if self.n else 0.0


_TAGS = itertools.count(1)


def new_tag(target: Target, test: str, rep: int) -> str:
    """Acct-Session-Ids are TAG-NNNNNNNN: fresh sessions for every run."""
    return f"{target.label}-{test}-{rep}-{os.getpid()}-{next(_TAGS)}"


class Client(Protocol):
    """A load generator: ``prepare`` (untimed) then the timed call."""

    def prepare(self, reqs: Sequence[AcctReq]) -> Any: ...

    def __call__(self, reqs: Sequence[AcctReq], prepared: Any) -> ClientResult: ...


def measured(target: Target, opts: Options, test: str, rep: int, go: Client) -> AcctRun:
    """One run: stream, quiet server, the client ``go(reqs)``, idle server, checks."""
    tag = new_tag(target, test, rep)
    count = opts.requests
    if test.startswith("open"):
        count = int(float(test[4:]) * opts.latency_seconds)
    reqs = build_stream(opts.users, count, opts.interims, tag, interval=opts.interval)
    prepared = go.prepare(reqs)
    wait_drained(target)
    if target.pg_vacuum and target.pg_url:
        asyncio.run(_pg_execute(target.pg_url, "VACUUM (ANALYZE)"))
    before = metrics(target)
    usage_before = usage_totals(target) if target.kind != "freeradius" else (0, 0, 0)
    meter = Meter(target.server.pid, opts.quiet_wait)
    backends = BackendCpu(target, opts.pg_cpu)
    meter.start()
    backends.begin()
    result: ClientResult = go(reqs, prepared)
    meter.stop()
    drained = wait_drained(target)  # its CPU, and the database's, belong to this run
    meter.finish()
    db_cpu = backends.seconds()
    after = metrics(target)
    if target.kind == "freeradius":
        check = verify_freeradius(target, tag, result.answered)
    else:
        check = verify(target, tag, reqs, result.answered, usage_before)
    latency = result.latency
    ok = result.ok
    run = AcctRun(
        server=target.label,
        client=test if not test.startswith("open") else "open",
        test=test,
        rep=rep,
        n=result.n,
        wall_s=result.wall_s,
        rps=(result.n if not test.startswith("open") else ok) / result.wall_s,
        srv_cpu_s=meter.server_total,
        srv_cpu_run_s=meter.server_run,
        db_cpu_s=db_cpu,
        ok=ok,
        lost=result.n - ok,
        bad=result.bad,
        other_pct=meter.other_pct,
        p50_ms=percentile(latency, 0.5) * 1000 if latency else None,
        p99_ms=percentile(latency, 0.99) * 1000 if latency else None,
        max_ms=max(latency) * 1000 if latency else None,
        achieved_rate=result.achieved_rate,
        lag_p99_ms=result.lag_p99_ms,
        rc_cpu_s=result.rc_cpu_s,
        batches={**batch_stats(before, after), "drain_s": drained} if before else {},
        check=check,
    )
    report(run)
    return run


def report(run: AcctRun) -> None:
    lat = ""
    if run.p99_ms is not None:
        lat = f", p50 {run.p50_ms:.2f} p99 {run.p99_ms:.2f} max {run.max_ms:.1f} ms"
    if run.achieved_rate is not None:
        lat += f" (sent at {run.achieved_rate:,.0f}/s, send lag p99 {run.lag_p99_ms:.2f} ms)"
    db = f" + db {run.db_cpu_s / run.n * 1e6:.1f}" if run.db_cpu_s else ""
    print(
        f"  {run.test:<9} rep {run.rep}: {run.n:,} req, {run.rps:8,.0f} req/s, server CPU "
        f"{run.us_per_request:5.1f}{db} µs/req ({run.srv_cpu_run_s / run.n * 1e6:5.1f} during "
        f"the run), ok {run.ok} lost {run.lost} bad {run.bad}{lat}; other processes "
        f"{run.other_pct:.0f} % of a core",
        flush=True,
    )
    b = run.batches
    if b.get("batches"):
        hist = " ".join(f"{k}:{v}" for k, v in b["histogram"].items())
        extra = {
            k: v for k, v in b["packets"].items() if k not in ("received", "accounting_responses")
        }
        print(
            f"      batches {b['batches']:,}, mean {b['mean']:.1f} records, commit "
            f"{b['commit_ms_per_batch']:.2f} ms/batch; sizes {hist}; recorded {b['recorded']:,} "
            f"failed {b['failed']} dropped {b['dropped']}"
            + (f"; packets {extra}" if extra else "")
            + (
                f"; still committing {b['drain_s']:.1f} s after the client stopped"
                if b.get("drain_s", 0) > 0.5
                else ""
            ),
            flush=True,
        )
    c = run.check
    if "problems" in c:
        verdict = "OK" if not c["problems"] else f"PROBLEMS {c['problems']} {c['examples']}"
        print(
            f"      durability: {c['sessions_acked']:,} sessions acknowledged ({c['stops_acked']:,}"
            f" Stops), {c['rows']:,} rows; {verdict}",
            flush=True,
        )
    elif c:
        print(f"      recorded: {c}", flush=True)


class RadclientGo:
    def __init__(self, target: Target, opts: Options) -> None:
        self.target, self.opts = target, opts

    def prepare(self, reqs: Sequence[AcctReq]) -> RadclientFiles:
        workdir = Path(tempfile.mkdtemp(prefix="radclient-", dir=self.opts.out))
        return radclient_files(reqs, self.opts.procs, workdir)

    def __call__(self, reqs: Sequence[AcctReq], prepared: RadclientFiles) -> ClientResult:
        opts = self.opts
        try:
            return radclient_loop(
                self.target.server.acct_port, len(reqs), prepared, opts.secret,
                parallel=opts.parallel, client_cpu=opts.client_cpu,
            )  # fmt: skip
        finally:
            shutil.rmtree(prepared.workdir, ignore_errors=True)


class ClosedGo:
    def __init__(self, target: Target, opts: Options, sockets: int, window: int) -> None:
        self.target, self.opts, self.sockets, self.window = target, opts, sockets, window

    def prepare(self, reqs: Sequence[AcctReq]) -> Packets:
        return encode_stream(reqs, self.sockets, self.opts.secret)

    def __call__(self, _reqs: Sequence[AcctReq], packets: Packets) -> ClientResult:
        port = self.target.server.acct_port
        return closed_loop(port, packets, self.sockets, self.window, self.opts.secret)


class OpenGo:
    def __init__(self, target: Target, opts: Options, rate: float) -> None:
        self.target, self.opts, self.rate = target, opts, rate

    def prepare(self, reqs: Sequence[AcctReq]) -> Packets:
        return encode_stream(reqs, self.opts.latency_sockets, self.opts.secret)

    def __call__(self, _reqs: Sequence[AcctReq], packets: Packets) -> ClientResult:
        port, opts = self.target.server.acct_port, self.opts
        return open_loop(port, packets, opts.latency_sockets, self.rate, opts.secret)


def sanity(target: Target, opts: Options) -> None:
    """A short session (Start, Stop) must be answered before anything is timed; then a
    warm-up of 2,000 requests, untimed."""
    reqs = build_stream(
        opts.users, 2, 0, f"{target.label}-sanity-{os.getpid()}", interval=opts.interval
    )
    result = closed_loop(target.server.acct_port, encode_stream(reqs, 1, opts.secret), 1, 4,
                         opts.secret, timeout=5)  # fmt: skip
    if result.ok != len(reqs):
        log = target.log.read_text()[-3000:] if target.log and target.log.exists() else ""
        raise SystemExit(
            f"{target.label}: sanity Accounting-Requests not answered (ok {result.ok} of "
            f"{len(reqs)}, bad {result.bad})\n{log}"
        )
    warm = build_stream(
        opts.users,
        2_000,
        opts.interims,
        f"{target.label}-warm-{os.getpid()}",
        interval=opts.interval,
    )
    closed_loop(target.server.acct_port, encode_stream(warm, 2, opts.secret), 2, 64, opts.secret)


def run_all(target: Target, opts: Options) -> list[AcctRun]:
    sanity(target, opts)
    BackendCpu(target, opts.pg_cpu).pin()
    runs: list[AcctRun] = []
    plans: list[tuple[str, Client]] = []
    if "radclient" in opts.tests:
        plans.append(("radclient", RadclientGo(target, opts)))
    if "python" in opts.tests:
        plans.append(("python", ClosedGo(target, opts, opts.sockets, opts.window)))
    if "wide" in opts.tests:
        plans.append(("wide", ClosedGo(target, opts, *WIDE)))
    if "latency" in opts.tests:
        for rate in opts.rates:
            plans.append((f"open{rate:g}", OpenGo(target, opts, rate)))
    for test, go in plans:
        for rep in range(1, opts.repeats + 1):
            runs.append(measured(target, opts, test, rep, go))
    return runs


# -- profile --------------------------------------------------------------------------------------

# Where the daemon's samples go, by stack (first match wins), for auth_bench.print_profile.
ACCT_AREAS = (
    ("SQLite, in aiosqlite's thread", lambda s, f: "_connection_worker_thread" in s),
    ("asyncpg (protocol, encoding)", lambda s, f: "asyncpg/" in s),
    ("SQLAlchemy (session, connection, greenlet)", lambda s, f: "sqlalchemy/" in s),
    ("store.accounting: load, decide, bind", lambda s, f: "store/accounting.py" in s),
    ("session view (after commit)", lambda s, f: "aaa/sessions.py" in s),
    ("UDP receive (recvfrom)", lambda s, f: f.startswith("_SelectorDatagramTransport._read_ready")),
    ("UDP send (sendto)", lambda s, f: "_SelectorDatagramTransport.sendto" in s),
    ("codec: decode, authenticators, encode", lambda s, f: "radius/codec.py" in f),
    ("listener: _received, _accounting_fields, done", lambda s, f: "radius/protocol.py" in f),
    ("duplicate cache", lambda s, f: "radius/dedup.py" in f),
    ("accounting handler and writer", lambda s, f: "aaa/accounting" in f),
    ("other radius_contracts", lambda s, f: "radius_contracts/" in f),
    ("event loop, selectors, timers", lambda s, f: "asyncio/" in f or "selectors.py" in f),
)


def profile(target: Target, opts: Options, seconds: float, load: str) -> None:
    """py-spy on the daemon under ``load``: "wide" or "python" (closed loops) or a rate."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("! py-spy not found (.venv/bin/pip install py-spy); no profile")
        return
    raw = opts.out / f"py-spy-{target.label}.txt"
    pid, duration = str(target.server.pid), str(int(seconds))
    command = [py_spy, "record", "--pid", pid, "--duration", duration, "--rate", "200",
               "--format", "raw", "--output", str(raw)]  # fmt: skip
    sockets, window = WIDE if load == "wide" else (opts.sockets, opts.window)
    rate = None if load in ("wide", "python") else float(load)
    what = f"open loop at {rate:,.0f}/s" if rate else f"closed loop ({sockets} x {window})"
    print(f"\n  py-spy for {int(seconds)} s under {what}", flush=True)
    meter = Meter(target.server.pid, opts.quiet_wait)
    meter.start()
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sent = 0
    started = time.perf_counter()
    try:
        time.sleep(1)  # py-spy attaches
        deadline = started + seconds - 1.5
        port = target.server.acct_port
        while time.perf_counter() < deadline:
            tag = new_tag(target, "spy", 0)
            if rate:
                count = int(rate * (deadline - time.perf_counter()))
                reqs = build_stream(opts.users, count, opts.interims, tag, interval=opts.interval)
                packets = encode_stream(reqs, opts.latency_sockets, opts.secret)
                result = open_loop(port, packets, opts.latency_sockets, rate, opts.secret)
                sent += result.ok
                break
            reqs = build_stream(
                opts.users, opts.requests, opts.interims, tag, interval=opts.interval
            )
            packets = encode_stream(reqs, sockets, opts.secret)
            result = closed_loop(port, packets, sockets, window, opts.secret)
            sent += result.ok
        spy.wait(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    meter.stop()
    meter.finish()
    print(
        f"  {sent:,} requests answered while profiled, server CPU "
        f"{meter.server_total / max(1, sent) * 1e6:.0f} µs/req"
    )
    if not raw.exists():
        print(f"! py-spy wrote nothing: {spy.stderr.read().decode() if spy.stderr else ''}")
        return
    auth_bench.AREAS = ACCT_AREAS  # print_profile classifies by this table
    auth_bench.print_profile(raw)


# -- report ---------------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[AcctRun]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[AcctRun]] = {}
    for run in runs:
        groups.setdefault((run.server, run.test), []).append(run)
    rows: list[dict[str, Any]] = []
    for (server, test), group in groups.items():
        histogram: dict[str, int] = {}
        for run in group:
            for bucket, count in run.batches.get("histogram", {}).items():
                histogram[bucket] = histogram.get(bucket, 0) + count
        rows.append(
            {
                "server": server,
                "test": test,
                "reps": len(group),
                "n": group[0].n,
                "rps": _median([r.rps for r in group]),
                "srv_us_per_req": _median([r.us_per_request for r in group]),
                "srv_us_in_run": _median([r.srv_cpu_run_s / r.n * 1e6 for r in group]),
                "db_us_per_req": _median([r.db_cpu_s / r.n * 1e6 for r in group]),
                "ok": sum(r.ok for r in group),
                "lost": sum(r.lost for r in group),
                "bad": sum(r.bad for r in group),
                "p50_ms": _median([r.p50_ms for r in group]),
                "p99_ms": _median([r.p99_ms for r in group]),
                "max_ms": _median([r.max_ms for r in group]),
                "achieved_rate": _median([r.achieved_rate for r in group]),
                "batch_mean": _median([r.batches.get("mean") for r in group]),
                "commit_ms": _median([r.batches.get("commit_ms_per_batch") for r in group]),
                "batch_histogram": histogram,
                "other_pct": _median([r.other_pct for r in group]),
                "rc_us_per_req": _median(
                    [r.rc_cpu_s / r.n * 1e6 for r in group if r.rc_cpu_s is not None]
                ),
                "problems": sum(len(r.check.get("problems", {})) for r in group),
            }
        )
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _find(rows: Sequence[dict[str, Any]], server: str, test: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["server"] == server and r["test"] == test), None)


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    header = (
        f"{'server':<17} {'test':<10} {'req/s':>8} {'x detail':>8} {'srv µs':>7} {'in run':>6} "
        f"{'db µs':>6} {'ok':>7} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'sent/s':>7} {'batch':>6} {'ms/cmt':>6} {'other%':>6} {'check':>5}"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        fr = _find(rows, "fr-detail", row["test"])
        ratio = row["rps"] / fr["rps"] if fr and fr["rps"] and row["rps"] else None
        check = (
            "-" if row["server"].startswith("fr-") else ("ok" if not row["problems"] else "FAIL")
        )
        print(
            f"{row['server']:<17} {row['test']:<10} {_fmt(row['rps'], ',.0f'):>8} "
            f"{_fmt(ratio, '.2f'):>8} {_fmt(row['srv_us_per_req'], '.1f'):>7} "
            f"{_fmt(row['srv_us_in_run'], '.1f'):>6} "
            f"{_fmt(row['db_us_per_req'] or None, '.1f'):>6} {row['ok']:>7} {row['lost']:>5} "
            f"{_fmt(row['p50_ms'], '.2f'):>7} {_fmt(row['p99_ms'], '.2f'):>7} "
            f"{_fmt(row['max_ms'], '.1f'):>7} {_fmt(row['achieved_rate'], ',.0f'):>7} "
            f"{_fmt(row['batch_mean'], '.1f'):>6} {_fmt(row['commit_ms'], '.2f'):>6} "
            f"{_fmt(row['other_pct'], '.0f'):>6} {check:>5}"
        )
    print(
        "(medians over repeats; ok/lost summed; x detail = req/s / FreeRADIUS detail file's with "
        "the same client; srv µs = server\n CPU per request idle to idle, 'in run' only while "
        "answering; db µs = PostgreSQL backends; batch = mean records per commit,\n ms/cmt = "
        "time per commit; p50/p99 of closed loops are under saturation, of open loops at the "
        "rate; check = durability)"
    )
    hist_rows = [r for r in rows if r["batch_histogram"]]
    if hist_rows:
        print("\nbatch sizes seen (commits per size bucket, all repeats):")
        for row in hist_rows:
            hist = "  ".join(f"{k}: {v}" for k, v in row["batch_histogram"].items())
            print(f"  {row['server']:<17} {row['test']:<10} {hist}")


def print_verdicts(rows: Sequence[dict[str, Any]]) -> None:
    lines: list[str] = []
    fr = _find(rows, "fr-detail", "radclient")
    fr_sql = _find(rows, "fr-sql-wal", "radclient")
    for row in rows:
        server = row["server"]
        if server.startswith("fr-"):
            continue
        if row["test"] == "radclient" and row["rps"]:
            rps = row["rps"]
            if server.startswith("rc-sqlite"):
                lines.append(
                    f"{'PASS' if rps >= 15_000 else 'FAIL'}  {server} radclient: {rps:,.0f} "
                    "durable req/s (target ≥ 15,000 on SQLite)"
                )
            if fr and fr["rps"]:
                ratio = rps / fr["rps"]
                lines.append(
                    f"{'PASS' if ratio >= 1.0 else 'FAIL'}  {server} radclient: {ratio:.2f}x "
                    f"FreeRADIUS detail file ({fr['rps']:,.0f}/s) (target ≥ 1.0x)"
                )
            if fr_sql and fr_sql["rps"]:
                ratio = rps / fr_sql["rps"]
                lines.append(
                    f"{'PASS' if ratio >= 8.0 else 'FAIL'}  {server} radclient: {ratio:.1f}x "
                    f"FreeRADIUS rlm_sql SQLite WAL ({fr_sql['rps']:,.0f}/s) (target ≥ 8x)"
                )
        if row["test"].startswith("open") and row["p99_ms"] is not None:
            ok = row["p99_ms"] < 20 and not row["lost"]
            lines.append(
                f"{'PASS' if ok else 'FAIL'}  {server} p99 at {float(row['test'][4:]):,.0f}/s: "
                f"{row['p99_ms']:.2f} ms, lost {row['lost']} (target < 20 ms, none lost)"
            )
        if row["problems"]:
            lines.append(f"FAIL  {server} {row['test']}: durability check found problems")
    if lines:
        print("\n" + "\n".join(lines))


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=20_000, help="requests per closed run")
    parser.add_argument("--interims", type=int, default=2, help="Interim-Updates per session, mean")
    parser.add_argument(
        "--interval",
        type=int,
        default=INTERVAL,
        help="seconds between a session's Interims, by Acct-Session-Time and Event-Timestamp "
        "(300: Starts up to 25 min old, which the stale-session job closes midway; 0: every "
        "Event-Timestamp now, contradicting Acct-Session-Time, for experiments)",
    )
    parser.add_argument(
        "--tests",
        default="radclient,python,latency",
        help=f"comma separated, of {', '.join(TESTS)}",
    )
    parser.add_argument(
        "--database", choices=("sqlite", "postgres", "both", "none"), default="both"
    )
    parser.add_argument(
        "--quota",
        choices=("off", "on", "both"),
        default="off",
        help="put every contract on a plan with a data quota (cap never reached, so every "
        "request is counted and checked); both: each database once without, once with",
    )
    parser.add_argument(
        "--sqlite-synchronous", default="FULL,NORMAL", help="comma separated: FULL, NORMAL"
    )
    parser.add_argument("--pg-url", default=PG_DEFAULT, help="PostgreSQL server (admin database)")
    parser.add_argument(
        "--freeradius", action=argparse.BooleanOptionalAction, default=True,
        help="run the same tests against FreeRADIUS first",
    )  # fmt: skip
    parser.add_argument(
        "--fr-modes", default="files,sql", help=f"FreeRADIUS setups, of {', '.join(FR_MODES)}"
    )
    parser.add_argument(
        "--fr-sql-busy-timeout", type=int, default=5000, help="ms, rlm_sql_sqlite (mode sql)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per test (median)")
    parser.add_argument("--procs", type=int, default=2, help="radclient streams (load.sh PROCS)")
    parser.add_argument("--parallel", type=int, default=64, help="radclient -p per stream")
    parser.add_argument("--sockets", type=int, default=2, help="Python closed loop: sockets")
    parser.add_argument("--window", type=int, default=64, help="Python closed loop: per socket")
    parser.add_argument(
        "--rate", type=float, action="append", help="open loop req/s (repeatable; 5000, 10000)"
    )
    parser.add_argument("--latency-seconds", type=float, default=5, help="open loop duration")
    parser.add_argument("--latency-sockets", type=int, default=32, help="open loop sockets")
    parser.add_argument(
        "--pin-pg",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the daemon's PostgreSQL backends to the server core (the server side gets "
        "one core, as FreeRADIUS with in-process SQLite does)",
    )
    parser.add_argument("--max-batch", type=int, help="[accounting] max_batch (daemon default)")
    parser.add_argument("--max-pending", type=int, help="[accounting] max_pending")
    parser.add_argument(
        "--quiet-wait", type=float, default=20,
        help="before each run, wait up to this long for other processes to use < 50 %% of a core",
    )  # fmt: skip
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--secret", default="perfsecret123", help="the anchor's SECRET")
    parser.add_argument("--anchor", type=Path, default=DEFAULT_ANCHOR)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rc-bench-acct"))
    parser.add_argument(
        "--py-spy",
        type=float,
        default=0,
        metavar="SECONDS",
        help="profile each of our daemons under --py-spy-load for this long",
    )
    parser.add_argument(
        "--py-spy-load",
        default="wide",
        help='load while profiling: "wide", "python" (closed loops) or an open-loop rate',
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the state directories")
    parser.add_argument(
        "--src", type=Path,
        help="run the daemon from this copy of the checkout (see bench/README.md)",
    )  # fmt: skip
    args = parser.parse_args()

    tests = tuple(t.strip() for t in args.tests.split(",") if t.strip())
    unknown = set(tests) - set(TESTS)
    if unknown:
        parser.error(f"unknown tests: {', '.join(sorted(unknown))}")
    fr_modes = [m.strip() for m in args.fr_modes.split(",") if m.strip()]
    if set(fr_modes) - set(FR_MODES):
        parser.error(f"--fr-modes: of {', '.join(FR_MODES)}")
    syncs = [s.strip().upper() for s in args.sqlite_synchronous.split(",") if s.strip()]
    if set(syncs) - {"FULL", "NORMAL"}:
        parser.error("--sqlite-synchronous: FULL and/or NORMAL")
    args.out.mkdir(parents=True, exist_ok=True)
    opts = Options(
        secret=args.secret.encode(),
        requests=args.requests,
        interims=args.interims,
        repeats=args.repeats,
        procs=args.procs,
        parallel=args.parallel,
        sockets=args.sockets,
        window=args.window,
        rates=args.rate or [5_000.0, 10_000.0],
        latency_seconds=args.latency_seconds,
        latency_sockets=args.latency_sockets,
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        quiet_wait=args.quiet_wait,
        tests=tests,
        out=args.out,
        pg_cpu=args.server_cpu if args.pin_pg else None,
        interval=args.interval,
    )
    source = describe_source(args.src)
    if args.src:
        os.environ["PYTHONPATH"] = str(args.src.resolve() / "src")
    os.sched_setaffinity(0, {args.client_cpu})  # this process is a client
    # SIGTERM unwinds like an exception, so every server is stopped and the scratch
    # database dropped (a background job started from a script ignores SIGINT).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    print(
        f"radius-contracts accounting benchmark: {os.cpu_count()} CPUs, server on core "
        f"{args.server_cpu}, clients on core {args.client_cpu}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; tests {', '.join(tests)}; "
        f"~{args.requests:,} requests per closed run, {args.interims} Interims per session on "
        f"average; daemon from {source}; out {args.out}",
        flush=True,
    )
    opts.users = make_data(args.anchor, args.out / "data", 2_000)
    sample = build_stream(
        opts.users, args.requests, args.interims, "sample", interval=opts.interval
    )
    kinds = {s: sum(1 for r in sample if r.status == s) for s in (START, INTERIM, STOP)}
    print(
        f"stream: {len(sample):,} requests = {kinds[START]:,} Start, {kinds[INTERIM]:,} "
        f"Interim-Update, {kinds[STOP]:,} Stop; "
        f"{sum(1 for r in sample if (r.output_octets or 0) >> 32):,} with Gigawords",
        flush=True,
    )
    configs: list[tuple[str, str, str]] = []
    if args.database in ("sqlite", "both"):
        configs += [(f"rc-sqlite-{s}", "sqlite", s) for s in syncs]
    if args.database in ("postgres", "both"):
        configs.append(("rc-postgres", "postgres", ""))
    quota = {"off": [False], "on": [True], "both": [False, True]}[args.quota]
    configs = [(label + ("+quota" if q else ""), kind, sync)
               for label, kind, sync in configs for q in quota]  # fmt: skip
    runs: list[AcctRun] = []
    try:
        if args.freeradius:
            for mode in fr_modes:
                print(f"\n== FreeRADIUS {mode} ({FR_LABELS[mode]})", flush=True)
                try:
                    with freeradius(
                        args.anchor, mode, args.server_cpu, args.fr_sql_busy_timeout
                    ) as target:
                        runs += run_all(target, opts)
                except (subprocess.CalledProcessError, SystemExit) as exc:
                    print(f"  ! FreeRADIUS {mode} failed: {exc}", flush=True)
        for label, kind, synchronous in configs:
            print(f"\n== {label}", flush=True)
            state_dir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=args.out))
            pg = scratch_database(args.pg_url) if kind == "postgres" else _no_database()
            try:
                with pg as (pg_url, pg_db):
                    extra = daemon_extra(kind, synchronous, pg_url or None, args)
                    prepare_state(state_dir, opts.users, args.secret, extra, pg_url or None)
                    if label.endswith("+quota"):
                        on_quota_plan(state_dir, pg_url or None)
                    with our_server(
                        label, kind, state_dir, args.server_cpu, extra, (pg_url, pg_db)
                    ) as target:
                        print(f"  pid {target.server.pid}, acct port {target.server.acct_port}",
                              flush=True)  # fmt: skip
                        runs += run_all(target, opts)
                        if args.py_spy:
                            profile(target, opts, args.py_spy, args.py_spy_load)
                    warnings = [
                        line
                        for line in (state_dir / "daemon.log").read_text().splitlines()
                        if " WARNING " in line or " ERROR " in line
                    ]
                    if warnings:
                        print(f"  daemon log: {len(warnings)} warnings/errors, e.g.")
                        for line in warnings[:5]:
                            print(f"    {line[:300]}")
            finally:
                if not args.keep:
                    shutil.rmtree(state_dir, ignore_errors=True)
    finally:
        rows = summarize(runs)
        (args.out / "results.json").write_text(
            json.dumps(
                {"source": source, "summary": rows, "runs": [asdict(r) for r in runs]},
                indent=1,
                default=str,
            )
        )
        if rows:
            with (args.out / "results.csv").open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        print_table(rows)
        print_verdicts(rows)
        print(
            f"\nload average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}; rows in "
            f"{args.out / 'results.csv'} and {args.out / 'results.json'}"
        )
    return 0


@contextmanager
def _no_database() -> Iterator[tuple[str, str]]:
    yield "", ""


if __name__ == "__main__":
    sys.exit(main())
