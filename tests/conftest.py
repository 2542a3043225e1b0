"""Fixtures: real databases (SQLite always, PostgreSQL whenever reachable) and a running daemon.

The daemon runs in a background thread with its own event loop, exactly as ``serve`` builds it,
and tests talk to it over real HTTP on a loopback port.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from radius_contracts.daemon import Daemon
from radius_contracts.db import migrate
from radius_contracts.db.engine import create_engine
from radius_contracts.domain import TokenRole
from radius_contracts.services.base import SYSTEM
from radius_contracts.settings import SchedulerSettings, Settings, load_settings
from radius_contracts.startup import BOOTSTRAP_TOKEN_FILE

# CI provides PostgreSQL here (trust auth); override to point the suite elsewhere.
PG_ENV = "RADIUS_CONTRACTS_TEST_PG"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_admin_url() -> str:
    return os.environ.get(PG_ENV, PG_DEFAULT)


async def _pg_reachable(url: str) -> str | None:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


async def admin_sql(url: str, sql: str) -> None:
    """Run one statement (e.g. CREATE DATABASE, which cannot run in a transaction)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards.

    Unreachable PostgreSQL skips these tests on a developer machine, but fails them under CI
    (CI=true), where a silently skipped database would hide a broken half of the suite.
    """
    admin = _pg_admin_url()
    problem = asyncio.run(_pg_reachable(admin))
    if problem:
        message = f"PostgreSQL at {admin} is unreachable ({problem}); set {PG_ENV}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"rc_test_{os.getpid()}_{secrets.token_hex(3)}"

    asyncio.run(admin_sql(admin, f'CREATE DATABASE "{name}"'))
    base, _, _db = admin.rpartition("/")
    yield f"{base}/{name}"
    asyncio.run(admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class RunningDaemon:
    """A daemon serving on loopback, with tokens to talk to it."""

    settings: Settings
    daemon: Daemon
    loop: asyncio.AbstractEventLoop
    base_url: str
    admin_token: str
    readonly_token: str = ""
    clients: list[httpx.Client] = field(default_factory=list)

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the daemon's loop (e.g. a service call) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30)
        self.clients.append(client)
        return client


def start_daemon(
    settings: Settings,
    clock: Callable[[], datetime] | None = None,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
) -> tuple[RunningDaemon, threading.Thread]:
    """Start a daemon in a thread of its own, on ``loop`` (a new asyncio loop by default;
    ``serve`` runs on uvloop where it is installed)."""
    loop = loop or asyncio.new_event_loop()
    daemon = Daemon(settings) if clock is None else Daemon(settings, clock=clock)
    started = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def run() -> None:
            try:
                await daemon.start()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                await daemon.shutdown()
                return
            started.set()
            await daemon.wait()

        loop.run_until_complete(run())
        loop.close()

    thread = threading.Thread(target=main, name="daemon", daemon=True)
    thread.start()
    if not started.wait(60):
        raise RuntimeError("daemon did not start within 60 s")
    if failure:
        raise failure[0]
    token = (settings.state_dir / BOOTSTRAP_TOKEN_FILE).read_text().strip()
    running = RunningDaemon(
        settings=settings,
        daemon=daemon,
        loop=loop,
        base_url=f"http://127.0.0.1:{daemon.api_port}",
        admin_token=token,
    )
    assert daemon.services is not None
    _row, running.readonly_token = running.run(
        daemon.services.tokens.create(SYSTEM, f"reader-{secrets.token_hex(3)}", TokenRole.READ_ONLY)
    )
    return running, thread


def stop_daemon(running: RunningDaemon, thread: threading.Thread) -> None:
    for client in running.clients:
        client.close()
    running.loop.call_soon_threadsafe(running.daemon.stop)
    thread.join(30)


def make_settings(state_dir: Path, database_url: str | None) -> Settings:
    overrides: dict[str, Any] = {
        "state_dir": state_dir,
        "api": {"host": "127.0.0.1", "port": 0},
        # Ephemeral loopback ports, so daemons of parallel sessions never collide; a short
        # reject delay keeps reject tests quick (test_radius_auth checks the delay itself).
        "radius": {"bind": "127.0.0.1", "auth_port": 0, "acct_port": 0, "reject_delay": 0.3},
    }
    if database_url:
        overrides["database"] = {"url": database_url}
    return load_settings(None, **overrides)


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def migrated_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, label: str
) -> Iterator[str]:
    """For a fixture parametrised "sqlite"/"postgres": the URL of a new, migrated database
    (a PostgreSQL one is dropped afterwards). Use as ``yield from migrated_database(...)``."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(label) / f'{label}.db'}"
        asyncio.run(_migrate(url))
        yield url
        return
    server: str = request.getfixturevalue("postgres_url")
    name = f"rc_{label}_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(server, f'CREATE DATABASE "{name}"'))
    url = f"{server.rpartition('/')[0]}/{name}".replace("postgresql://", "postgresql+asyncpg://")
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def pg_cluster(
    postgres_url: str,
    tmp_path: Path,
    count: int,
    before_next: Callable[[RunningDaemon], None] | None = None,
) -> Iterator[list[RunningDaemon]]:
    """``count`` daemons, node-1 … node-N, on a PostgreSQL database of their own.

    ``before_next`` runs with node-1 once it is up, before the others start.
    """
    name = f"rc_cluster_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    url = f"{postgres_url.rpartition('/')[0]}/{name}"

    def settings(n: int) -> Settings:
        named = {"scheduler": SchedulerSettings(node_name=f"node-{n}")}
        return make_settings(tmp_path / f"node-{n}", url).model_copy(update=named)

    started: list[tuple[RunningDaemon, threading.Thread]] = []
    try:
        started.append(start_daemon(settings(1)))
        first = started[0][0]
        if before_next is not None:
            before_next(first)
        token = (first.settings.state_dir / BOOTSTRAP_TOKEN_FILE).read_text()
        for n in range(2, count + 1):
            later = settings(n)
            # The database has its admin token already: the one node-1 wrote down.
            later.state_dir.mkdir()
            (later.state_dir / BOOTSTRAP_TOKEN_FILE).write_text(token)
            started.append(start_daemon(later))
        yield [running for running, _thread in started]
    finally:
        for running, thread in started:
            stop_daemon(running, thread)
        asyncio.run(admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    """One daemon per database backend for the whole session; tests use unique names."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = make_settings(tmp_path_factory.mktemp(f"state-{request.param}"), url)
    running, thread = start_daemon(settings)
    yield running
    stop_daemon(running, thread)


@pytest.fixture
def api(daemon: RunningDaemon) -> httpx.Client:
    """An HTTP client with the admin token."""
    return daemon.client(daemon.admin_token)


@pytest.fixture
def readonly_api(daemon: RunningDaemon) -> httpx.Client:
    return daemon.client(daemon.readonly_token)


@pytest.fixture
def uniq() -> str:
    """A short unique suffix: tests share one database per backend."""
    return secrets.token_hex(4)


class Factory:
    """Creates valid objects through the API, each with a unique name, and returns their JSON."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{secrets.token_hex(4)}-{self.count}"

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.post(path, json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def manufacturer(self, **fields: Any) -> dict[str, Any]:
        return self._post("/api/v1/manufacturers", {"name": self.name("mf"), **fields})

    def pop(self, **fields: Any) -> dict[str, Any]:
        return self._post("/api/v1/pops", {"name": self.name("pop"), "city": "Lisbon", **fields})

    def nas(self, **fields: Any) -> dict[str, Any]:
        if "manufacturer_id" not in fields:
            fields["manufacturer_id"] = self.manufacturer()["id"]
        body = {
            "name": self.name("nas"),
            "address": self.address(),
            "secret": "s3cret-" + secrets.token_hex(8),
            **fields,
        }
        return self._post("/api/v1/nas", body)

    def address(self) -> str:
        """A random TEST-NET-style address; the 10/8 space keeps collisions unlikely."""
        return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"

    def pool(self, **fields: Any) -> dict[str, Any]:
        # 100.64.0.0/10 split into random /24s; IPv6 from a random /48 of 2001:db8::/32.
        if fields.get("family", "ipv4") == "ipv4":
            ranges = [f"100.{64 + secrets.randbelow(64)}.{secrets.randbelow(256)}.0/24"]
        else:
            ranges = [f"2001:db8:{secrets.randbelow(65536):x}::/48"]
        body = {"name": self.name("pool"), "family": "ipv4", "ranges": ranges, **fields}
        return self._post("/api/v1/radius/pools", body)

    def layout(self, **fields: Any) -> dict[str, Any]:
        body = {
            "name": self.name("layout"),
            "manufacturer_id": self.manufacturer()["id"],
            "attributes": [
                {"attribute": "Mikrotik-Rate-Limit", "template": "{max_upload}/{max_download}"}
            ],
            **fields,
        }
        return self._post("/api/v1/radius/layouts", body)

    def contract(self, **fields: Any) -> dict[str, Any]:
        config = {
            "username": self.name("user"),
            "password": "pw-" + secrets.token_hex(6),
            "max_upload": "10M",
            "max_download": "50M",
            **fields.pop("config", {}),
        }
        body = {"number": self.name("C"), "config": config, **fields}
        return self._post("/api/v1/contracts", body)


@pytest.fixture
def make(api: httpx.Client) -> Factory:
    return Factory(api)


LO_SECRET = "loopback-nas-secret"


def manufacturer_named(api: httpx.Client, name: str) -> dict[str, Any]:
    items = api.get("/api/v1/manufacturers", params={"q": name}).json()["items"]
    found: dict[str, Any] = next(m for m in items if m["name"] == name)
    return found


def add_nas(
    api: httpx.Client, secret: str, address: str = "127.0.0.1", **fields: Any
) -> dict[str, Any]:
    """A MikroTik NAS (shipped layouts) at ``address``, created through ``api``."""
    body = {
        "name": f"nas-{secrets.token_hex(4)}",
        "address": address,
        "secret": secret,
        "manufacturer_id": manufacturer_named(api, "MikroTik")["id"],
        **fields,
    }
    response = api.post("/api/v1/nas", json=body)
    assert response.status_code == 201, response.text
    nas: dict[str, Any] = response.json()
    return nas


@pytest.fixture(scope="session")
def lo_nas(daemon: RunningDaemon) -> dict[str, Any]:
    """The NAS at 127.0.0.1 (where radclient sends from): a MikroTik, shipped layouts."""
    return add_nas(daemon.client(daemon.admin_token), LO_SECRET, name="lo-mikrotik")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """For `serve` as a child process: None (the SQLite file in state_dir), or a new, empty
    PostgreSQL database the daemon migrates and seeds itself, as on a first install. Test files
    that need another kind of database define their own ``database_url``."""
    if request.param == "sqlite":
        yield None
        return
    server: str = request.getfixturevalue("postgres_url")
    name = f"rc_daemon_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(server, f'CREATE DATABASE "{name}"'))
    yield f"{server.rpartition('/')[0]}/{name}"
    asyncio.run(admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
