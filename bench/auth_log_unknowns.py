"""How many auth log rows N random unknown usernames from one NAS leave, and what a drop costs.

A daemon runs in process (SQLite in a temporary state directory, or ``--database-url``);
FreeRADIUS's radclient sends N Access-Requests with random User-Names that match no contract, 100 in
flight, from 127.0.0.1 (one NAS). The script waits until the auth log has counted all N, then
prints the rows they left, per minute. With ``--drop-days D`` it then writes D old days of
100,000 rows each and times the retention run that drops them (a figure for this machine).

    .venv/bin/python bench/auth_log_unknowns.py --requests 10000
    .venv/bin/python bench/auth_log_unknowns.py --requests 2000 --drop-days 3

Needs radclient (freeradius-utils). Bounded: at most --requests requests, 300 s of waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SECRET = "auth-log-bench-secret"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--drop-days", type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.requests <= 100_000:
        parser.error("--requests: 1 to 100,000")

    from radius_contracts.daemon import Daemon
    from radius_contracts.settings import load_settings
    from radius_contracts.startup import BOOTSTRAP_TOKEN_FILE

    state = Path(tempfile.mkdtemp(prefix="auth-log-bench-"))
    overrides: dict[str, Any] = {
        "state_dir": state,
        "api": {"host": "127.0.0.1", "port": 0},
        "radius": {"bind": "127.0.0.1", "auth_port": 0, "acct_port": 0, "reject_delay": 0.05},
    }
    if args.database_url:
        overrides["database"] = {"url": args.database_url}
    settings = load_settings(None, **overrides)
    loop = asyncio.new_event_loop()
    daemon = Daemon(settings)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def run() -> None:
            await daemon.start()
            started.set()
            await daemon.wait()

        loop.run_until_complete(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not started.wait(120):
        raise RuntimeError("the daemon did not start")
    try:
        token = (state / BOOTSTRAP_TOKEN_FILE).read_text().strip()
        _unknowns(daemon, token, args.requests)
        if args.drop_days:
            _drop(daemon, loop, token, args.drop_days)
    finally:
        loop.call_soon_threadsafe(daemon.stop)
        thread.join(60)


def _unknowns(daemon: Any, token: str, count: int) -> None:
    import httpx

    base = f"http://127.0.0.1:{daemon.api_port}/api/v1"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        nas = {"name": "bench", "address": "127.0.0.1", "secret": SECRET, "manufacturer_id": 1}
        nas_id = api.post("/nas", json=nas).raise_for_status().json()["id"]
        since = datetime.now(UTC).isoformat()
        requests = [
            f'User-Name = "{secrets.token_hex(8)}"\nUser-Password = "x"\n'
            "Message-Authenticator = 0x00\n"
            for _ in range(count)
        ]
        binary = shutil.which("radclient")
        if binary is None:
            raise SystemExit("radclient is missing (apt-get install freeradius-utils)")
        began = time.monotonic()
        subprocess.run(
            [binary, "-q", "-p", "100", "-r", "1", "-t", "5",
             f"127.0.0.1:{daemon.auth_port}", "auth", SECRET],
            input="\n".join(requests), capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        sent = time.monotonic() - began
        deadline = time.monotonic() + 300
        while True:
            rows = []
            for offset in range(0, 1_000_000, 1000):
                params = {"nas_id": nas_id, "since": since, "limit": 1000, "offset": offset}
                page = api.get("/auth-log", params=params).json()
                rows += page["items"]
                if len(page["items"]) < 1000:
                    break
            counted = sum(row["count"] for row in rows)
            if counted >= count or time.monotonic() > deadline:
                break
            time.sleep(1)
    per_minute = collections.Counter(row["at"][:16] for row in rows)
    folded = sum(1 for row in rows if row["username"] is None)
    print(f"{count} random unknown usernames from one NAS, sent in {sent:.1f} s")
    print(f"outcomes counted {counted}, rows {len(rows)} ({folded} folding the rest of a minute)")
    for minute, rows_in in sorted(per_minute.items()):
        print(f"  {minute}Z  {rows_in} rows")


def _drop(daemon: Any, loop: asyncio.AbstractEventLoop, token: str, days: int) -> None:
    import httpx

    from radius_contracts.aaa.auth_log import AuthEvent

    base = f"http://127.0.0.1:{daemon.api_port}/api/v1"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        body = {"number": "B-1", "config": {"username": "bench-user", "password": "pw-bench"}}
        contract = api.post("/contracts", json=body).raise_for_status().json()["id"]
    service = daemon.services.auth_log
    now = datetime.now(UTC)
    for day in range(days):
        at = now - timedelta(days=400 + day)
        batch = [
            AuthEvent(at, contract, "bench-user", None, None, False, "wrong password", "pap")
            for n in range(1000)
        ]
        for _ in range(100):  # 100,000 rows a day
            future = asyncio.run_coroutine_threadsafe(service.write(batch), loop)
            future.result(120)
    began = time.monotonic()
    future = asyncio.run_coroutine_threadsafe(
        service.purge(older_than=now - timedelta(days=30), max_rows=10**9), loop
    )
    dropped = future.result(600)
    print(f"retention dropped {days} days ({dropped} rows) in {time.monotonic() - began:.3f} s")


if __name__ == "__main__":
    main()
