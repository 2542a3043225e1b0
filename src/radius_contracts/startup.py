"""Start-up steps shared by the main process and the RADIUS worker processes: dictionaries,
the database and its schema, the first admin token, the heap settled after the index loads."""

from __future__ import annotations

import gc
import logging
import os
import resource
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from radius_contracts.db import migrate
from radius_contracts.db.engine import create_engine, is_sqlite, session_factory, sqlite_path
from radius_contracts.domain import TokenRole
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.services.base import SYSTEM, ServiceContext
from radius_contracts.services.defaults import seed_defaults
from radius_contracts.services.registry import Services
from radius_contracts.settings import Settings
from radius_contracts.state_files import make_private

__all__ = [
    "BOOTSTRAP_TOKEN_FILE",
    "BOOTSTRAP_TOKEN_NAME",
    "database_file",
    "engine_of",
    "ensure_admin_token",
    "load_catalog",
    "open_services",
    "raise_open_files_limit",
    "settle_heap",
]

log = logging.getLogger("radius_contracts.daemon")

BOOTSTRAP_TOKEN_NAME = "admin"  # noqa: S105  (names, not secrets)
BOOTSTRAP_TOKEN_FILE = "admin-token"  # noqa: S105


def load_catalog(settings: Settings) -> AttributeCatalog:
    return AttributeCatalog.load(settings.radius.dictionary, settings.radius.extra_dictionary_dirs)


async def open_services(settings: Settings, *, run_migrations: bool) -> Services:
    """Dictionaries, engine, schema and attribute catalogue: everything the use cases need."""
    catalog = load_catalog(settings)
    # Before the database, spool or token file can be created: see state_files.
    make_private(settings.state_dir, database_file(settings))
    database = settings.database

    def engine_for(statement_timeout: float | None) -> AsyncEngine:
        return create_engine(
            settings.database_url,
            echo=database.echo,
            pool_size=database.pool_size,
            sqlite_synchronous=database.sqlite_synchronous,
            connect_timeout=database.connect_timeout,
            statement_timeout=statement_timeout,
        )

    engine = engine_for(database.statement_timeout)
    new_database = False
    if run_migrations:
        # Migrations get an engine of their own without the statement timeout: building an
        # index over millions of sessions may rightly take longer than any query should.
        migrations = engine_for(None)
        try:
            new_database = await migrate.upgrade(migrations)
        finally:
            await migrations.dispose()
    context = ServiceContext(sessions=session_factory(engine), catalog=catalog, zone=settings.zone)
    services = Services.build(context)
    if run_migrations:
        added = await services.attributes.sync(catalog)
        if added:
            log.info("added %d dictionary attributes to the catalogue", added)
    if new_database:
        # After the sync: the default layouts are linted against the catalogue table.
        await seed_defaults(services)
    return services


def database_file(settings: Settings) -> Path | None:
    """The SQLite database file, or None on PostgreSQL (or an in-memory SQLite)."""
    if not is_sqlite(settings.database_url):
        return None
    path = sqlite_path(settings.database_url)
    return Path(path) if path and path != ":memory:" else None


def engine_of(services: Services) -> AsyncEngine:
    bind = services.context.sessions.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


async def ensure_admin_token(services: Services, state_dir: Path) -> Path | None:
    """On a database without an admin token, create one and write it to the state directory.

    The token goes to a 0600 file, never to the log: logs are often shipped elsewhere.
    """
    if await services.tokens.has_admin():
        return None
    path = state_dir / BOOTSTRAP_TOKEN_FILE
    _row, token = await services.tokens.create(SYSTEM, BOOTSTRAP_TOKEN_NAME, TokenRole.ADMIN)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    log.warning("created the first admin API token; it is in %s", path)
    return path


def raise_open_files_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: each API connection and each NAS socket is a
    descriptor, and the usual soft 1,024 let a thousand idle connections lock staff out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open files limit from %d: %s", soft, exc)


def settle_heap() -> None:
    """Keep the garbage collector off the authorization index.

    The index holds a few objects per contract, millions at scale, and they live as long as
    the process. Without this every full collection walks all of them (hundreds of ms at a
    million contracts: a latency spike for every packet in flight), and young collections
    run every 700 allocations of the packet path. Freezing moves what exists now out of the
    collector's sight; the higher threshold makes young collections rarer.

    Not too rare: each young collection walks every young object, and at 50,000 a busy
    minute made them 10-50 ms each (100,000 young objects, a reply cache generation of
    27,000 entries among them), a p99 of 15-25 ms at 10,000 req/s open loop after a burst
    of 25,000/s in bench/auth.py. At 2,000 that p99 was 2.2 ms, at the same req/s and CPU
    per request for PAP and accounting (5,000: 3-7 ms; 10,000: 10 ms).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(2_000, 20, 100)
    # The database driver's worker thread (aiosqlite) runs Python between SQLite calls. Each
    # time the event loop thread gives the GIL up for a syscall (recvfrom, sendto, epoll), it
    # may wait a whole switch interval to get it back: 5 ms by default, which showed as a p99
    # of 80-90 ms at 5,000 req/s while the auth log was being written. 2 ms bounded that;
    # the accounting writer's thread (Python between its statements) adds more such waits,
    # and 0.5 ms took a 3-minute soak at 2,000 req/s (3/4 accounting) from p99 13-19 ms to
    # 12-13 ms, p50 2.4 to 1.5 ms, on a 2-core VM. A forced switch costs a few µs.
    sys.setswitchinterval(0.0005)
