"""An idle daemon is quiet: its jobs' turns are DEBUG, and INFO is for what a job did.

`radius-contracts serve` runs as a service does, logging JSON to stderr, with the jobs' minute
shortened to a second ([accounting] jobs_interval = 1; session_refresh too): the scheduler
really fires every job several times while the test watches, and nothing it does is faked.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import admin_sql

CLI = [sys.executable, "-m", "radius_contracts"]
IDLE = 4.5  # seconds watched: every interval job gets 4 turns or more


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    server: str = request.getfixturevalue("postgres_url")
    name = f"rc_idle_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(server, f'CREATE DATABASE "{name}"'))
    yield f"{server.rpartition('/')[0]}/{name}"
    asyncio.run(admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def serve(
    tmp_path: Path, database: str | None, level: str
) -> tuple[subprocess.Popen[bytes], Path, str]:
    port = free_port()
    config = tmp_path / "rc.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        + (f'[database]\nurl = "{database}"\n' if database else "")
        + f"[api]\nport = {port}\n"
        + '[radius]\nbind = "127.0.0.1"\nauth_port = 0\nacct_port = 0\n'
        + "[accounting]\njobs_interval = 1\nsession_refresh = 1\n"
        + f'[logging]\nformat = "json"\nlevel = "{level}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CLI, "serve", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    return process, log, f"http://127.0.0.1:{port}"


def wait_healthy(process: subprocess.Popen[bytes], log: Path, base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "serve did not come up"
        time.sleep(0.1)


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(30)


def test_an_idle_daemon_logs_no_info_line(tmp_path: Path, database: str | None) -> None:
    process, log, base = serve(tmp_path, database, "INFO")
    try:
        wait_healthy(process, log, base)
        # Startup has its INFO lines (index loaded, ready, …), and the daily job's first turn
        # comes right away: let both pass, then watch.
        time.sleep(1.5)
        watched_from = len(log.read_bytes())
        time.sleep(IDLE)
        idle = log.read_bytes()[watched_from:].decode()
        token = (tmp_path / "state" / "admin-token").read_text().strip()
        jobs = httpx.get(
            f"{base}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
    finally:
        stop(process)
    # The scheduler did run the jobs while it was watched ...
    turns = {job["name"]: job["runs"] for job in jobs}
    for name in ("stale-sessions", "expire-leases", "forget-logins"):
        assert turns[name] >= 4, turns
    # ... and not one line of INFO (or more) came of it, from the scheduler or from us.
    loud = [e for e in events(idle) if e["level"] != "debug" and "/healthz" not in e["msg"]]
    assert loud == [], loud


def test_job_turns_are_logged_at_debug(tmp_path: Path) -> None:
    process, log, base = serve(tmp_path, None, "DEBUG")
    try:
        wait_healthy(process, log, base)
        time.sleep(2.5)
    finally:
        stop(process)
    logged = events(log.read_text())
    scheduler = [e for e in logged if e["logger"].startswith("apscheduler")]
    runs = [e for e in scheduler if e["msg"].startswith("Running job")]
    assert runs and {e["level"] for e in runs} == {"debug"}
    ours = [e for e in logged if e["msg"].startswith("job stale-sessions ran in")]
    assert ours and ours[0]["level"] == "debug"
