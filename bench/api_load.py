"""Management API load benchmark: create many contracts over HTTP, then time lists and lookups.

Run by hand (not part of the test suite); it prints its figures::

    .venv/bin/python bench/api_load.py                        # SQLite, 100,000 contracts
    .venv/bin/python bench/api_load.py --count 3000 --bulk-count 97000   # 100k, mostly bulk
    .venv/bin/python bench/api_load.py --count 20000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test

The daemon runs as a subprocess (``python -m radius_contracts serve``) with a temporary config
and state directory, so client and server do not share a GIL. With a PostgreSQL URL, a scratch
database is created next to the one named in the URL and dropped at the end.

1. Creation: ``--count`` contracts through ``POST /api/v1/contracts`` with realistic bodies
   (number, username, password, speeds, customer, a ``billing`` external reference; every fifth
   with a fixed IPv4 address, every twentieth suspended), ``--concurrency`` requests in flight,
   stopped after ``--max-seconds``. Prints contracts/s, the daemon's CPU per contract (from
   /proc: steadier than rates on a shared machine) and latency percentiles.
   Then ``--bulk-count`` more through ``PUT /api/v1/contracts/by-external/billing`` (bulk
   upsert, ``--bulk-size`` per request, one request at a time), with the same figures.
2. Reads at that size, sequentially, ``--samples`` each: list pages, deep offsets, filters,
   text search and the three lookups, with p50/p95/p99/max and PASS/FAIL against
   ``--target-ms`` (on p99). On PostgreSQL, ``VACUUM ANALYZE`` runs first, as autovacuum would
   after a bulk load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

FIRST_NAMES = (
    "Ana", "João", "Maria", "Pedro", "Sofia", "Tiago", "Inês", "Rui", "Marta", "Luís",
    "Carla", "Nuno", "Rita", "Paulo", "Joana", "Miguel", "Helena", "Bruno", "Sara", "Filipe",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins",
    "Jesus", "Sousa", "Fernandes", "Gonçalves", "Gomes", "Lopes", "Marques", "Alves",
    "Almeida", "Ribeiro", "Pinto", "Carvalho", "Teixeira", "Moreira", "Correia", "Mendes",
)  # fmt: skip
PLANS = (("Home 100", "10M", "100M"), ("Home 300", "30M", "300M"), ("Pro 1G", "100M", "1G"))
LIST = "/api/v1/contracts"
BULK = "/api/v1/contracts/by-external/billing"


# -- the daemon under test ------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_server(state_dir: Path, database_url: str | None) -> Server:
    """Start ``radius-contracts serve`` on a free loopback port and wait until it is ready."""
    port = _free_port()
    lines = [f"state_dir = {_toml_string(str(state_dir))}"]
    if database_url:
        lines += ["[database]", f"url = {_toml_string(database_url)}"]
    lines += [
        "[radius]",
        'bind = "127.0.0.1"',
        "auth_port = 0",
        "acct_port = 0",
        "[api]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "[logging]",
        'level = "WARNING"',  # no per-request log line: measure the API, not the terminal
    ]
    config = state_dir / "bench.toml"
    config.write_text("\n".join(lines) + "\n")
    # The environment wins over the config file: keep the caller's RADIUS_CONTRACTS_* out.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    log = state_dir / "daemon.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "radius_contracts", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the daemon exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the daemon did not get ready in 120 s:\n{log.read_text()}")
        time.sleep(0.2)
    token = (state_dir / "admin-token").read_text().strip()
    return Server(process=process, base_url=base_url, token=token, log=log)


def daemon_cpu_seconds(server: Server) -> float:
    """CPU time (user + system, every thread) the daemon process has used so far.

    Steadier than wall-clock rates on a shared machine: what one request costs the server.
    """
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (proc(5): fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


async def _admin_sql(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def scratch_database(url: str | None, *, keep: bool = False) -> Iterator[str | None]:
    """A fresh PostgreSQL database next to the one in ``url`` (dropped unless ``keep``)."""
    if not url:
        yield None
        return
    admin = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    base, _, _name = admin.rpartition("/")
    name = f"rc_bench_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin_sql(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        if keep:
            print(f"database kept: {base}/{name}")
        else:
            asyncio.run(_admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- phase 1: creation ----------------------------------------------------------------------------


def contract_body(i: int) -> dict[str, Any]:
    """A realistic contract, different for every ``i`` and the same on every run."""
    rng = random.Random(i)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    plan, upload, download = PLANS[i % len(PLANS)]
    config: dict[str, Any] = {
        "username": f"{first.lower()}.{last.lower()}.{i:07d}@isp.example",
        "password": secrets.token_urlsafe(12),
        "min_upload": "1M",
        "max_upload": upload,
        "min_download": "5M",
        "max_download": download,
        "simultaneous_use": 1,
    }
    if i % 5 == 0:  # business customers with a fixed address, from 100.64.0.0/10
        config["ipv4"] = f"100.{64 + (i >> 16) % 64}.{(i >> 8) % 256}.{i % 256}"
    return {
        "number": f"C{i:08d}",
        "status": "suspended" if i % 20 == 7 else "active",
        "start_date": f"20{20 + i % 5}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "customer": {
            "external_id": f"CUST-{i:08d}",
            "name": f"{first} {last}",
            "custom_fields": {"nif": f"{200000000 + i}", "segment": "residential"},
        },
        "custom_fields": {"plan": plan, "installation": "FTTH"},
        "external_refs": [{"app": "billing", "external_id": f"B-{i:09d}"}],
        "config": config,
    }


def bulk_item(i: int) -> dict[str, Any]:
    """``contract_body(i)`` as one item of the bulk upsert: the billing id beside the body."""
    body = contract_body(i)
    body["external_id"] = body.pop("external_refs")[0]["external_id"]
    return body


@dataclass
class CreationResult:
    created: list[int] = field(default_factory=list)  # numbers of the contracts made
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    cpu: float = 0.0  # daemon CPU seconds spent while creating


async def create_contracts(
    server: Server, count: int, concurrency: int, max_seconds: float
) -> CreationResult:
    result = CreationResult()
    numbers = iter(range(1, count + 1))
    cpu_before = daemon_cpu_seconds(server)
    started = time.perf_counter()
    deadline = started + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {server.token}", "X-Client-System": "billing"}
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            for i in numbers:  # shared iterator: each number goes to one worker
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                response = await client.post("/api/v1/contracts", json=contract_body(i))
                result.latencies.append(time.perf_counter() - t0)
                if response.status_code == 201:
                    result.created.append(i)
                else:
                    result.failed += 1
                    if len(result.failures) < 5:
                        result.failures.append(f"{response.status_code} {response.text[:200]}")

        async def progress() -> None:
            while True:
                await asyncio.sleep(30)
                done = len(result.created) + result.failed
                rate = done / (time.perf_counter() - started)
                print(f"  … {done:,} requests, {rate:,.0f}/s", flush=True)

        reporter = asyncio.create_task(progress())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        reporter.cancel()
    result.elapsed = time.perf_counter() - started
    result.cpu = daemon_cpu_seconds(server) - cpu_before
    return result


async def bulk_create_contracts(
    server: Server, first: int, count: int, chunk: int, max_seconds: float
) -> CreationResult:
    """``count`` contracts from number ``first`` on, ``chunk`` per bulk upsert, one at a time
    (a billing system's sync job), stopped after ``max_seconds``."""
    result = CreationResult()
    headers = {"Authorization": f"Bearer {server.token}", "X-Client-System": "billing"}
    cpu_before = daemon_cpu_seconds(server)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=300) as client:
        for start in range(first, first + count, chunk):
            if time.perf_counter() - started > max_seconds:
                break
            numbers = list(range(start, min(start + chunk, first + count)))
            t0 = time.perf_counter()
            response = await client.put(BULK, json=[bulk_item(i) for i in numbers])
            result.latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                result.failed += len(numbers)
                result.failures.append(f"{response.status_code} {response.text[:200]}")
                continue
            for i, outcome in zip(numbers, response.json()["results"], strict=True):
                if outcome["status"] == 201:
                    result.created.append(i)
                else:
                    result.failed += 1
                    if len(result.failures) < 5:
                        result.failures.append(str(outcome)[:200])
    result.elapsed = time.perf_counter() - started
    result.cpu = daemon_cpu_seconds(server) - cpu_before
    return result


# -- phase 2: reads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    label: str
    url: Callable[[int], str]  # sample number → URL (varied so no single row stays hot)


def scenarios(created: list[int], rng: random.Random) -> list[Scenario]:
    def pick() -> int:
        return rng.choice(created)

    size = len(created)
    deep = max(0, int(size * 0.9))

    def username(i: int) -> str:
        body = contract_body(i)
        return str(body["config"]["username"])

    terms = (*LAST_NAMES[:8], "0012", "joao.s")
    return [
        Scenario("list, first page (limit=50)", lambda k: f"{LIST}?limit=50"),
        Scenario(
            f"list, offset≈{deep:,} (limit=50)",
            lambda k: f"{LIST}?limit=50&offset={max(0, deep - k * 50)}",
        ),
        Scenario("list ?username=<x>", lambda k: f"{LIST}?username={username(pick())}"),
        Scenario(
            "GET by-external/billing/<id>",
            lambda k: f"/api/v1/contracts/by-external/billing/B-{pick():09d}",
        ),
        Scenario("GET by-number/<n>", lambda k: f"/api/v1/contracts/by-number/C{pick():08d}"),
        Scenario("list ?status=suspended (limit=50)", lambda k: f"{LIST}?status=suspended"),
        Scenario(
            "list ?q=<text> (limit=50)",
            lambda k: f"{LIST}?q={terms[k % len(terms)]}",
        ),
    ]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Timing:
    label: str
    samples: list[float]
    errors: int
    cpu_ms: float = 0.0  # daemon CPU per request (steadier than latency on a busy machine)

    def p(self, fraction: float) -> float:
        return percentile(self.samples, fraction) * 1000


def measure(server: Server, scenario: Scenario, samples: int) -> Timing:
    headers = {"Authorization": f"Bearer {server.token}"}
    times: list[float] = []
    errors = 0
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        for k in range(10):  # warm-up: connection, statement caches
            client.get(scenario.url(k))
        cpu_before = daemon_cpu_seconds(server)
        for k in range(samples):
            url = scenario.url(k)
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
            if response.status_code != 200:
                errors += 1
                if errors == 1:
                    print(f"  ! {url}: {response.status_code} {response.text[:200]}")
        cpu = daemon_cpu_seconds(server) - cpu_before
    return Timing(scenario.label, times, errors, cpu * 1000 / samples)


# -- main -----------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report_creation(made: CreationResult, per_request: int = 1) -> None:
    """Contracts/s, daemon CPU per contract (the steadier figure) and request latencies."""
    done = len(made.created) + made.failed
    rate = len(made.created) / made.elapsed if made.elapsed else 0.0
    cpu = made.cpu * 1000 / done if done else 0.0
    print(
        f"   created {len(made.created):,} ({made.failed:,} failed) in {made.elapsed:.1f} s "
        f"= {rate:,.0f} contracts/s; daemon CPU {made.cpu:.1f} s = {cpu:.2f} ms per contract "
        f"({done / made.cpu if made.cpu else 0:,.0f} contracts per CPU-second)"
    )
    if made.latencies:
        lat = made.latencies
        print(
            f"   request latency p50 {_ms(statistics.median(lat))} ms, "
            f"p99 {_ms(percentile(lat, 0.99))} ms, max {_ms(max(lat))} ms "
            f"over {len(lat):,} requests of {per_request} contract(s)"
        )
    for failure in made.failures:
        print(f"   ! {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=100_000, help="contracts to create")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument(
        "--bulk-count",
        type=int,
        default=0,
        help="contracts to add after those through the bulk upsert",
    )
    parser.add_argument("--bulk-size", type=int, default=1000, help="contracts per bulk request")
    parser.add_argument(
        "--max-seconds", type=float, default=900, help="stop creating after this long"
    )
    parser.add_argument("--database-url", help="postgresql://… (default: a fresh SQLite file)")
    parser.add_argument("--samples", type=int, default=200, help="timed requests per read")
    parser.add_argument("--target-ms", type=float, default=50, help="p99 target for reads")
    parser.add_argument(
        "--keep", action="store_true", help="keep the state directory (and PostgreSQL database)"
    )
    args = parser.parse_args()

    state_dir = Path(tempfile.mkdtemp(prefix="rc-bench-"))
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"radius-contracts API benchmark: {backend}, {args.count:,} contracts, concurrency "
        f"{args.concurrency}, {os.cpu_count()} CPUs, state in {state_dir}"
    )
    failed_reads = False
    try:
        with scratch_database(args.database_url, keep=args.keep) as url:
            server = start_server(state_dir, url)
            try:
                print("\n1. creating contracts (POST /api/v1/contracts)")
                made = asyncio.run(
                    create_contracts(server, args.count, args.concurrency, args.max_seconds)
                )
                report_creation(made)
                if args.bulk_count:
                    print(f"\n1b. bulk upsert (PUT {BULK}), {args.bulk_size} per request")
                    bulk = asyncio.run(
                        bulk_create_contracts(
                            server, args.count + 1, args.bulk_count, args.bulk_size,
                            args.max_seconds,
                        )
                    )  # fmt: skip
                    report_creation(bulk, per_request=args.bulk_size)
                    made.created += bulk.created
                if not made.created:
                    return 1
                if url:
                    # What autovacuum does after a bulk load; without statistics the planner
                    # sees an empty table (this machine's PostgreSQL runs with autovacuum off).
                    t0 = time.perf_counter()
                    asyncio.run(_admin_sql(url, "VACUUM ANALYZE"))
                    print(f"   VACUUM ANALYZE took {time.perf_counter() - t0:.1f} s")

                print(
                    f"\n2. reads at {len(made.created):,} contracts, {args.samples} sequential "
                    f"samples each (PASS: p99 ≤ {args.target_ms:g} ms)\n"
                )
                columns = " ".join(f"{name:>7}" for name in ("p50", "p95", "p99", "max", "CPU"))
                header = f"{'request':<40} {columns}  result"
                print(header)
                print("-" * len(header))
                for scenario in scenarios(made.created, random.Random(42)):
                    timing = measure(server, scenario, args.samples)
                    ok = timing.p(0.99) <= args.target_ms and not timing.errors
                    failed_reads |= not ok
                    verdict = "PASS" if ok else "FAIL"
                    if timing.errors:
                        verdict += f" ({timing.errors} errors)"
                    figures = [timing.p(0.5), timing.p(0.95), timing.p(0.99), timing.p(1.0)]
                    figures.append(timing.cpu_ms)
                    cells = " ".join(f"{value:>7.1f}" for value in figures)
                    print(f"{timing.label:<40} {cells}  {verdict}")
                print(
                    "\n(latencies in ms, measured from the client over loopback HTTP; CPU: the "
                    "daemon's per request, in ms)"
                )
            finally:
                stop_server(server)
    finally:
        if args.keep:
            print(f"state kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 1 if failed_reads else 0


if __name__ == "__main__":
    sys.exit(main())
