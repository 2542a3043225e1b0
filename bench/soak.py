"""Soak: a steady mix of PAP and accounting for ``--minutes``, memory and latency per minute.

One `radius-contracts serve` on SQLite with ``--contracts`` (10,000) contracts. The same users
and the same Acct-Session-Ids come round again and again, as on a real network: every user
goes PAP → Start → Interim-Update → Stop, one step per round, and the users are staggered so
that at any moment a quarter of the traffic is each kind. The load is open loop at ``--rate``
requests per second (it does not slow down when the daemon does).

The retention jobs are forced to run during it: the auth log keeps at most ``--auth-log-rows``
rows (the daemon purges at start and every purge interval), the session jobs (stale sessions,
lease expiry) run every ``--jobs-interval`` seconds, and /metrics is scraped every 15 s as
Prometheus would.

Printed per minute: requests sent and answered, requests left unanswered (no reply within
``--timeout`` seconds), p50/p99/max latency, the RSS of the daemon and of its worker
processes, and where the slow requests came from: how many took over 25 ms as this client saw
them, and as the daemon measured them from arrival to reply (its
radius_request_duration_seconds, by port), how often its event loop woke over 20 ms late
(event_loop_lag_seconds) and how many accounting commits took over 20 ms. A slow request the
daemon did not see as slow waited in the client or the kernel.

At the end: RSS at minute 10 and at the end and whether it stayed within 5 %, and
whether every minute kept p99 under 20 ms.

``--old-history N`` gives the database N sessions closed before history_days and N daily
usage rows before usage_days: the history purge deletes them a few seconds after start (its
first turn comes within 5 s), so minute 1 shows what a backlog purge costs RADIUS.

``--report-every M`` sends the daemon SIGUSR2 every M minutes: it writes a memory report to
state_dir/memory-*.txt (RSS, the C heap's in-use and free-but-kept bytes, Python blocks, the
object types that grew; see radius_contracts.memory_debug). ``--tracemalloc N`` also starts it
with PYTHONTRACEMALLOC=N, so the reports name the source lines that grew; tracing makes the
daemon several times slower: use a low rate, and read such a run only for where memory goes.

    .venv/bin/python bench/soak.py --minutes 60
    .venv/bin/python bench/soak.py --minutes 15 --rate 200 --tracemalloc 1 --report-every 3 --keep
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from auth import _clean_env, _free_port, children, cpu_seconds, populate, write_config
from radius_contracts.radius import codec, hiding

SECRET = b"soak-secret"
SOCKETS = 32  # a user's requests always go through one socket, in order, as from one NAS port
STEPS = ("pap", "start", "interim", "stop")
_ACCESS_ACCEPT, _ACCESS_REJECT, _ACCOUNTING_RESPONSE = 2, 3, 5
COMMON = b"".join(
    (
        codec.attribute(codec.NAS_IP_ADDRESS, socket.inet_aton("127.0.0.1")),
        codec.attribute(codec.NAS_IDENTIFIER, b"soak-bras"),
        codec.attribute(codec.NAS_PORT_TYPE, (15).to_bytes(4, "big")),
        codec.attribute(codec.SERVICE_TYPE, (2).to_bytes(4, "big")),
    )
)


def username(i: int) -> bytes:
    return b"filler.%07d@bench" % i  # as bench/auth.py's populate() names its contracts


def password(i: int) -> bytes:
    return b"fp-%07d-x" % i


def station(i: int) -> bytes:
    return b"02:00:00:%02x:%02x:%02x" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


def request(user: int, step: int, identifier: int, cycle: int) -> bytes:
    """The ``step`` (index into STEPS) of ``user``'s cycle; its session id never changes."""
    common = (
        codec.attribute(codec.USER_NAME, username(user))
        + codec.attribute(codec.CALLING_STATION_ID, station(user))
        + codec.attribute(codec.NAS_PORT, user.to_bytes(4, "big"))
        + COMMON
    )
    if step == 0:
        authenticator = codec.new_authenticator()
        hidden = hiding.hide_user_password(password(user), SECRET, authenticator)
        return codec.encode_request(
            codec.Code.ACCESS_REQUEST,
            identifier,
            codec.attribute(codec.USER_PASSWORD, hidden) + common,
            SECRET,
            authenticator=authenticator,
        )
    octets = (cycle * 3 + step) * 1_000_000 % (1 << 32)
    attributes = [
        codec.attribute(codec.ACCT_STATUS_TYPE, (1, 3, 2)[step - 1].to_bytes(4, "big")),
        codec.attribute(codec.ACCT_SESSION_ID, b"soak-%05d" % user),
        codec.attribute(codec.ACCT_SESSION_TIME, (step * 10).to_bytes(4, "big")),
        codec.attribute(codec.ACCT_INPUT_OCTETS, octets.to_bytes(4, "big")),
        codec.attribute(codec.ACCT_OUTPUT_OCTETS, (octets * 3 % (1 << 32)).to_bytes(4, "big")),
    ]
    if step == 3:
        attributes.append(codec.attribute(codec.ACCT_TERMINATE_CAUSE, (1).to_bytes(4, "big")))
    return codec.encode_request(
        codec.Code.ACCOUNTING_REQUEST,
        identifier,
        b"".join(attributes) + common,
        SECRET,
        message_authenticator=False,
    )


@dataclass
class Minute:
    sent: int = 0
    answered: int = 0
    rejects: int = 0
    unanswered: int = 0
    latencies: list[float] = field(default_factory=list)
    acct: list[float] = field(default_factory=list)  # Accounting-Requests' share of latencies
    over: dict[str, int] = field(default_factory=dict)  # daemon-side counts, see WATCHED
    cpu: float = 0.0  # the daemon's (and its workers') CPU in the minute, % of one core


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def rss_mib(pid: int) -> float:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Load:
    """Open-loop sender and receiver on SOCKETS UDP sockets, one thread."""

    def __init__(self, auth_port: int, acct_port: int, contracts: int, timeout: float) -> None:
        self.ports = (auth_port, acct_port)
        self.contracts = contracts
        self.timeout = timeout
        self.sockets = []
        for _ in range(SOCKETS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.sockets.append(sock)
        self.by_fd = {sock.fileno(): n for n, sock in enumerate(self.sockets)}
        self.next_id = [0] * SOCKETS
        # (socket, identifier) → (sent at, minute it counts in, is accounting)
        self.in_flight: dict[tuple[int, int], tuple[float, int, bool]] = {}
        self.sent = 0

    def send(self, position: int, minute: Minute, minute_no: int) -> None:
        contracts = self.contracts
        user = position % contracts + 1
        cycle = position // contracts
        step = (cycle + user) % 4
        n = user % SOCKETS
        identifier = self.next_id[n]
        self.next_id[n] = (identifier + 1) % 256
        key = (n, identifier)
        if key in self.in_flight:  # the identifier came round: its request is lost
            self.in_flight.pop(key)
            minute.unanswered += 1
        data = request(user, step, identifier, cycle // 4)
        port = self.ports[0] if step == 0 else self.ports[1]
        self.in_flight[key] = (time.perf_counter(), minute_no, step != 0)
        with suppress(BlockingIOError):
            self.sockets[n].sendto(data, ("127.0.0.1", port))
        minute.sent += 1
        self.sent += 1

    def receive(self, until: float, minutes: list[Minute]) -> None:
        """Take replies until ``until`` (perf_counter)."""
        while True:
            wait = until - time.perf_counter()
            if wait <= 0:
                return
            ready, _, _ = select.select(self.sockets, [], [], wait)
            now = time.perf_counter()
            for sock in ready:
                n = self.by_fd[sock.fileno()]
                while True:
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        break
                    found = self.in_flight.pop((n, data[1]), None)
                    if found is None:
                        continue
                    sent_at, minute_no, accounting = found
                    minute = minutes[minute_no]
                    minute.answered += 1
                    minute.latencies.append(now - sent_at)
                    if accounting:
                        minute.acct.append(now - sent_at)
                    if data[0] == _ACCESS_REJECT:
                        minute.rejects += 1

    def expire(self, minutes: list[Minute]) -> None:
        limit = time.perf_counter() - self.timeout
        for key, (sent_at, minute_no, _acct) in list(self.in_flight.items()):
            if sent_at < limit:
                del self.in_flight[key]
                minutes[minute_no].unanswered += 1


def prepare(state: Path, contracts: int, old_history: int) -> None:
    config = write_config(state, 1, 1, 1)
    subprocess.run(
        [sys.executable, "-m", "radius_contracts", "migrate", "--config", str(config)],
        check=True,
        timeout=300,
        env=_clean_env(),
        stdout=subprocess.DEVNULL,
    )
    populate(state / "radius-contracts.db", [], contracts, SECRET.decode())
    if old_history:
        add_old_history(state / "radius-contracts.db", old_history)


def add_old_history(database: Path, rows: int) -> None:
    """``rows`` sessions closed 500 days ago and ``rows`` daily usage rows of days over 1,100
    days ago (past the defaults history_days 400 and usage_days 1,100), spread over the
    contracts as a year of history would be."""
    sqlite_time = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite form
    stopped = datetime.now(UTC) - timedelta(days=500)
    first_day = (datetime.now(UTC) - timedelta(days=1101)).date()
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        ids = [row[0] for row in connection.execute("SELECT id FROM contracts ORDER BY id")]
        with connection:
            connection.executemany(
                "INSERT INTO sessions (contract_id, username, acct_session_id, acct_unique_id,"
                " started_at, updated_at, stopped_at, session_time, input_octets,"
                " output_octets, input_packets, output_packets)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 3600, 1, 1, 1, 1)",
                (
                    (
                        ids[n % len(ids)], f"old{n}", f"OLD-{n}", f"OLD-{n}",
                        (stopped - timedelta(hours=1, seconds=n)).strftime(sqlite_time),
                        (stopped - timedelta(seconds=n)).strftime(sqlite_time),
                        (stopped - timedelta(seconds=n)).strftime(sqlite_time),
                    )
                    for n in range(rows)
                ),
            )  # fmt: skip
            connection.executemany(
                "INSERT INTO usage_daily (contract_id, day, input_octets, output_octets,"
                " session_time) VALUES (?, ?, 1, 1, 1)",
                (
                    (ids[n % len(ids)], (first_day - timedelta(days=n // len(ids))).isoformat())
                    for n in range(rows)
                ),
            )
    finally:
        connection.close()


def start_daemon(
    state: Path, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], int, int, int]:
    auth_port = _free_port(socket.SOCK_DGRAM)
    acct_port = _free_port(socket.SOCK_DGRAM)
    api_port = _free_port(socket.SOCK_STREAM)
    extra = [
        "[auth_log]",
        f"max_rows = {args.auth_log_rows}",
        "[accounting]",
        f"jobs_interval = {args.jobs_interval}",
        "interim_interval = 60",
    ]
    config = write_config(state, auth_port, acct_port, api_port, extra, args.workers)
    env = _clean_env()
    if args.tracemalloc:
        env["PYTHONTRACEMALLOC"] = str(args.tracemalloc)
    command = [sys.executable, "-m", "radius_contracts", "serve", "--config", str(config)]
    with (state / "daemon.log").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the daemon exited:\n{(state / 'daemon.log').read_text()}")
        url = f"http://127.0.0.1:{api_port}/readyz"
        with suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return process, auth_port, acct_port, api_port
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the daemon was not ready within 300 s")
        time.sleep(0.1)


def scrape(api_port: int) -> str:
    url = f"http://127.0.0.1:{api_port}/metrics"
    with suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
        text: str = r.read().decode()
        return text
    return ""


# (metric, label filter) → the daemon-side counts printed per minute: requests slower than
# SLOW (client side as well, to tell the daemon's delays from the client's and the kernel's),
# event loop stalls and accounting commits over STALL.
SLOW, STALL = "0.025", "0.02"
WATCHED = {
    "acct": ("radius_contracts_radius_request_duration_seconds", 'port="acct"', SLOW),
    "auth": ("radius_contracts_radius_request_duration_seconds", 'port="auth"', SLOW),
    "lag": ("radius_contracts_event_loop_lag_seconds", "", STALL),
    "commit": ("radius_contracts_accounting_commit_duration_seconds", "", STALL),
}


def over(metrics: str) -> dict[str, int]:
    """For each of WATCHED: observations above its bound so far (count minus that bucket)."""
    found: dict[str, int] = {}
    for key, (name, labels, bound) in WATCHED.items():
        total = at_bound = None
        for line in metrics.splitlines():
            if not line.startswith(name) or (labels and labels not in line):
                continue
            if line.startswith(name + "_count"):
                total = float(line.rsplit(" ", 1)[1])
            elif line.startswith(name + "_bucket") and f'le="{bound}"' in line:
                at_bound = float(line.rsplit(" ", 1)[1])
        if total is not None and at_bound is not None:
            found[key] = int(total - at_bound)
    return found


def run(args: argparse.Namespace, state: Path) -> int:
    print(f"state {state}: {args.contracts} contracts, {args.old_history} old history rows",
          flush=True)  # fmt: skip
    prepare(state, args.contracts, args.old_history)
    process, auth_port, acct_port, api_port = start_daemon(state, args)
    load = Load(auth_port, acct_port, args.contracts, args.timeout)
    minutes: list[Minute] = []
    rss: list[float] = []
    print(
        f"daemon {process.pid} ready, RSS {rss_mib(process.pid):.1f} MiB; "
        f"{args.rate:g} req/s for {args.minutes} min",
        flush=True,
    )
    print("min      sent  answered  unanswered  rejects   p50 ms   p99 ms acct p99   max ms  "
          "RSS MiB  workers MiB  CPU %   >25ms: client acct auth  stalls>20ms: loop commit",
          flush=True)  # fmt: skip
    cpu_before = cpu_seconds(process.pid)
    counted = over(scrape(api_port))
    interval = 1.0 / args.rate
    started = time.perf_counter()
    next_scrape = started + 15
    position = 0
    try:
        for minute_no in range(args.minutes):
            minute = Minute()
            minutes.append(minute)
            end = started + 60 * (minute_no + 1)
            while True:
                now = time.perf_counter()
                if now >= end:
                    break
                due = started + position * interval
                if due <= now:
                    # Catch up in a burst when this thread fell behind (never skip requests).
                    load.send(position, minute, minute_no)
                    position += 1
                    continue
                load.receive(min(due, end), minutes)
                if now >= next_scrape:
                    next_scrape += 15
                    scrape(api_port)
                    load.expire(minutes)
            if process.poll() is not None:
                print("the daemon exited", flush=True)
                return 1
            # The previous minute's late replies have had a minute: report that one.
            load.expire(minutes)
            mine = rss_mib(process.pid)
            workers = sum(rss_mib(pid) for pid in children(process.pid))
            rss.append(mine + workers)
            used = cpu_seconds(process.pid)  # its workers included
            minute.cpu, cpu_before = (used - cpu_before) / 60 * 100, used
            now_counted = over(scrape(api_port))
            minute.over = {k: v - counted.get(k, 0) for k, v in now_counted.items()}
            counted = now_counted
            if args.report_every and (minute_no + 1) % args.report_every == 0:
                process.send_signal(signal.SIGUSR2)
            shown = minutes[minute_no - 1] if minute_no else None
            if shown is not None:
                _row(minute_no, shown, rss[minute_no - 1], workers)
        load.receive(time.perf_counter() + args.timeout, minutes)
        load.expire(minutes)
        load.in_flight.clear()
        _row(len(minutes), minutes[-1], rss[-1], 0.0)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
    return verdict(minutes, rss)


def _row(number: int, minute: Minute, rss: float, workers: float) -> None:
    print(
        f"{number:3d} {minute.sent:9d} {minute.answered:9d} {minute.unanswered:11d} "
        f"{minute.rejects:8d} {percentile(minute.latencies, 0.5) * 1000:8.2f} "
        f"{percentile(minute.latencies, 0.99) * 1000:8.2f} "
        f"{percentile(minute.acct, 0.99) * 1000:8.2f} "
        f"{max(minute.latencies, default=float('nan')) * 1000:8.1f} {rss:8.1f} {workers:12.1f}"
        f" {minute.cpu:6.1f} {sum(x > float(SLOW) for x in minute.latencies):16d}"
        f" {minute.over.get('acct', -1):4d} {minute.over.get('auth', -1):4d}"
        f" {minute.over.get('lag', -1):17d} {minute.over.get('commit', -1):6d}",
        flush=True,
    )


def verdict(minutes: list[Minute], rss: list[float]) -> int:
    unanswered = sum(m.unanswered for m in minutes)
    worst = max(percentile(m.latencies, 0.99) for m in minutes) * 1000
    print(f"unanswered in all: {unanswered}; worst minute p99 {worst:.2f} ms")
    ok = unanswered == 0 and worst < 20
    if len(rss) > 10:
        base, last = rss[9], rss[-1]
        growth = (last - base) / base * 100
        print(f"RSS minute 10 {base:.1f} MiB, end {last:.1f} MiB: {growth:+.1f} % "
              f"(max {max(rss[9:]):.1f})")  # fmt: skip
        ok = ok and abs(growth) <= 5.0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="[radius] workers")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before unanswered")
    parser.add_argument("--auth-log-rows", type=int, default=50_000, help="[auth_log] max_rows")
    parser.add_argument("--jobs-interval", type=float, default=5.0)
    parser.add_argument(
        "--old-history", type=int, default=0, help="old sessions and usage rows to purge"
    )
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames; 0: no tracing")
    parser.add_argument("--report-every", type=int, default=0, help="minutes between SIGUSR2")
    parser.add_argument("--state", type=Path, help="state directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    args = parser.parse_args()
    if args.state is not None:
        args.state.mkdir(parents=True, exist_ok=False)
        return run(args, args.state)
    directory = tempfile.mkdtemp(prefix="rc-soak-")
    try:
        return run(args, Path(directory))
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            subprocess.run(["rm", "-rf", directory], check=False)


if __name__ == "__main__":
    sys.exit(main())
