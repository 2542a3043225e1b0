"""Access-Request latency while the management API is flooded (issue 18).

Run by hand (not part of the test suite); it prints its figures::

    .venv/bin/python bench/api_flood.py                 # 8 s at rest, 8 s under flood
    .venv/bin/python bench/api_flood.py --workers 2 --rate 500 --seconds 10

The daemon runs as a subprocess (``python -m radius_contracts serve``) with a temporary state
directory and SQLite. A prober process sends PAP Access-Requests at ``--rate`` per second
(open loop, one outstanding socket per request slot) and records each round trip; first at
rest, then while flooder processes hit the API with, all at once:

- ``--big`` connections each sending a 50 MB body without a token (refused from the headers);
- ``--idle`` idle connections (closed by the daemon after its header timeout, then reopened);
- ``--listers`` clients calling ``GET /api/v1/contracts?limit=100`` with a token in a loop.

Everything is bounded by ``--seconds`` per phase. It prints p50/p99/max per phase, the
requests that got no answer, the daemon's CPU seconds and RSS, and the flood's own counts.
Wall-clock figures on a shared machine are noisy: compare the two phases of one run.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import re
import secrets
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

SECRET = b"flood-bench-secret"
USERS = 200


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def daemon(workers: int) -> Iterator[tuple[subprocess.Popen[bytes], str, int, str]]:
    """`serve` with a scratch state dir; yields (process, API base URL, auth port, token)."""
    tmp = Path(tempfile.mkdtemp(prefix="rc-flood-"))
    api, auth, acct = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config = tmp / "rc.toml"
    config.write_text(
        f'state_dir = "{tmp / "state"}"\n[api]\nport = {api}\n'
        f'[radius]\nbind = "127.0.0.1"\nauth_port = {auth}\nacct_port = {acct}\n'
        f'workers = {workers}\n[logging]\nlevel = "WARNING"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    log = (tmp / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "radius_contracts", "serve", "--config", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{api}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (tmp / "serve.log").read_text()[-2000:]
                raise SystemExit(f"the daemon did not start:\n{tail}")
            time.sleep(0.1)
        token = (tmp / "state" / "admin-token").read_text().strip()
        yield process, base, auth, token
    finally:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def provision(base: str, token: str) -> None:
    """A loopback NAS and USERS contracts (user-N / pw-N), through the API. No
    simultaneous-use limit: the prober logs each user in again and again, and with workers a
    limit is decided in the database (not the warm path this measures)."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        makers = api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
        maker = next(m for m in makers if m["name"] == "MikroTik")
        api.post("/api/v1/nas", json={
            "name": "bench", "address": "127.0.0.1", "secret": SECRET.decode(),
            "manufacturer_id": maker["id"], "require_message_authenticator": False,
        }).raise_for_status()  # fmt: skip
        for i in range(USERS):
            api.post("/api/v1/contracts", json={
                "number": f"F-{i}", "config": {"username": f"user-{i}", "password": f"pw-{i}",
                                               "max_upload": "10M", "max_download": "50M",
                                               "simultaneous_use": None},
            }).raise_for_status()  # fmt: skip
    time.sleep(1.5)  # the index (and worker processes) see every change within a second


def pap_request(identifier: int, user: int) -> bytes:
    """An Access-Request for user-N with User-Password hidden as RFC 2865 §5.2 says."""
    authenticator = secrets.token_bytes(16)
    password = f"pw-{user}".encode().ljust(16, b"\0")
    digest = hashlib.md5(SECRET + authenticator).digest()  # RFC 2865 §5.2
    hidden = bytes(a ^ b for a, b in zip(password, digest, strict=True))
    name = f"user-{user}".encode()
    attrs = bytes([1, 2 + len(name)]) + name + bytes([2, 18]) + hidden
    attrs += bytes([4, 6]) + socket.inet_aton("127.0.0.1")
    return struct.pack("!BBH", 1, identifier, 20 + len(attrs)) + authenticator + attrs


def probe(port: int, rate: float, seconds: float, out: Any) -> None:
    """Open loop: one request every 1/rate s over 64 sockets; round trips in ms to ``out``."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]
    for sock in sockets:
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
    sent_at: dict[tuple[int, int], float] = {}
    latencies: list[float] = []
    interval = 1.0 / rate
    start = time.monotonic()
    next_send = start
    n = 0
    while time.monotonic() - start < seconds + 1.0:
        now = time.monotonic()
        while next_send <= now and now - start < seconds:
            slot = n % len(sockets)
            identifier = (n // len(sockets)) % 256
            sockets[slot].send(pap_request(identifier, n % USERS))
            sent_at[(slot, identifier)] = time.monotonic()
            n += 1
            next_send += interval
        readable, _, _ = select.select(sockets, [], [], max(0.0, min(0.005, next_send - now)))
        for sock in readable:
            with suppress(BlockingIOError):
                reply = sock.recv(4096)
                at = sent_at.pop((sockets.index(sock), reply[1]), None)
                if at is not None and reply[0] == 2:
                    latencies.append((time.monotonic() - at) * 1000)
    out.put({"sent": n, "latencies": latencies})


def big_bodies(port: int, seconds: float, out: Any) -> None:
    """50 MB bodies without a token, one after another on new connections."""
    chunk = b"[" + b"1," * 32767 + b"1"
    head = (f"POST /api/v1/pops HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1048576}\r\n\r\n").encode()  # fmt: skip
    stop = time.monotonic() + seconds
    refused = sent = 0
    while time.monotonic() < stop:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(head)
            while time.monotonic() < stop and sent < 10**12:
                if select.select([s], [], [], 0)[0]:
                    refused += 1
                    break
                s.sendall(chunk)
                sent += len(chunk)
    out.put({"big_refused": refused, "big_bytes_sent": sent})


def idle(port: int, count: int, seconds: float, out: Any) -> None:
    """``count`` idle connections, reopened as the daemon closes them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 200)), hard))
    stop = time.monotonic() + seconds
    opened = 0
    held: list[socket.socket] = []
    while time.monotonic() < stop:
        held = [s for s in held if not _closed(s)]
        while len(held) < count and time.monotonic() < stop:
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                opened += 1
            except OSError:
                break
        time.sleep(0.5)
    for s in held:
        s.close()
    out.put({"idle_opened": opened})


def _closed(sock: socket.socket) -> bool:
    # recv with MSG_PEEK, not select(): select() stops at descriptor 1,024.
    try:
        if sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK):
            return False
    except BlockingIOError:
        return False
    except OSError:
        pass
    sock.close()
    return True


def lister(base: str, token: str, seconds: float, out: Any) -> None:
    """GET /api/v1/contracts?limit=100 in a loop (with a token)."""
    stop = time.monotonic() + seconds
    codes: dict[int, int] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        while time.monotonic() < stop:
            try:
                code = api.get("/api/v1/contracts", params={"limit": 100}, timeout=10).status_code
            except httpx.HTTPError:
                code = 0
            codes[code] = codes.get(code, 0) + 1
    out.put({f"list_{code}": count for code, count in codes.items()})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    match = re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def phase(name: str, pid: int, auth: int, opts: argparse.Namespace,
          flood: list[tuple[Any, tuple[Any, ...]]]) -> None:  # fmt: skip
    queue: Any = multiprocessing.Queue()
    cpu = cpu_seconds(pid)
    procs = [multiprocessing.Process(target=probe, args=(auth, opts.rate, opts.seconds, queue))]
    procs += [multiprocessing.Process(target=f, args=(*a, queue)) for f, a in flood]
    for p in procs:
        p.start()
    results = [queue.get(timeout=opts.seconds + 60) for _ in procs]
    for p in procs:
        p.join(10)
    merged: dict[str, Any] = {}
    for r in results:
        for key, value in r.items():
            merged[key] = merged.get(key, 0) + value if key != "latencies" else value
    lat = sorted(merged.pop("latencies"))
    sent = merged.pop("sent")
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
    print(f"{name:>6}: {sent} Access-Requests, {sent - len(lat)} unanswered; "
          f"p50 {statistics.median(lat) if lat else float('nan'):.2f} ms, p99 {p99:.2f} ms, "
          f"max {lat[-1] if lat else float('nan'):.2f} ms; daemon CPU "
          f"{cpu_seconds(pid) - cpu:.1f} s, RSS {rss_mib(pid):.0f} MiB; {merged}")  # fmt: skip


def api_costs(pid: int, base: str, token: str, count: int = 100) -> None:
    """Daemon CPU per API call, one call at a time: with one worker the API shares the event
    loop with RADIUS, so this is how long an Access-Request may wait behind each call. CPU
    time is steadier than wall-clock time on a loaded machine."""
    port = int(base.rsplit(":", 1)[1])
    head = (f"POST /api/v1/pops HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1048576}\r\n\r\n").encode()  # fmt: skip
    cpu = cpu_seconds(pid)
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head)
            s.recv(4096)
    refused = (cpu_seconds(pid) - cpu) / count * 1000
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        cpu = cpu_seconds(pid)
        for _ in range(count):
            api.get("/api/v1/contracts", params={"limit": 100}).raise_for_status()
        listed = (cpu_seconds(pid) - cpu) / count * 1000
    print(
        f" costs: daemon CPU per 50 MB POST refused without a token {refused:.2f} ms, per "
        f"GET /contracts?limit=100 {listed:.2f} ms (mean of {count})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300, help="Access-Requests per second")
    parser.add_argument("--seconds", type=float, default=8, help="length of each phase")
    parser.add_argument("--workers", type=int, default=1, help="[radius] workers")
    parser.add_argument("--big", type=int, default=4, help="50 MB unauthenticated senders")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections")
    parser.add_argument("--listers", type=int, default=8, help="clients listing contracts")
    opts = parser.parse_args()
    with daemon(opts.workers) as (process, base, auth, token):
        provision(base, token)
        api = int(base.rsplit(":", 1)[1])
        api_costs(process.pid, base, token)
        phase("rest", process.pid, auth, opts, [])
        flood: list[tuple[Any, tuple[Any, ...]]] = []
        flood += [(big_bodies, (api, opts.seconds))] * opts.big
        flood += [(idle, (api, opts.idle, opts.seconds))] if opts.idle else []
        flood += [(lister, (base, token, opts.seconds))] * opts.listers
        phase("flood", process.pid, auth, opts, flood)
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        refusals = re.findall(r'^radius_contracts_api_refusals_total\{reason="(\w+)"\} (\S+)$',
                              metrics, re.M)  # fmt: skip
        print("API refusals:", {reason: float(n) for reason, n in refusals if float(n)})


if __name__ == "__main__":
    main()
