"""URL → AsyncEngine with the per-dialect settings the daemon relies on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from radius_contracts.db import sqlite_connection


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> str:
    """The database file of an SQLite URL (sqlite+aiosqlite:///path)."""
    return make_url(url).database or ""


def redacted_url(url: str) -> str:
    """``url`` fit for a log line: any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # an unparsable URL is shown by its scheme only
        return url.split("://", 1)[0] + "://…"


def _sqlite_pragmas(synchronous: str) -> Callable[[DBAPIConnection, ConnectionPoolEntry], None]:
    def on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_conn.cursor()
        # WAL lets the API read while accounting writes; foreign keys are off by default in
        # SQLite. Under WAL, synchronous=FULL syncs the log at every commit (an acknowledged
        # accounting record survives a power cut; group commit makes that one sync per
        # batch); NORMAL only survives crashes of the process. busy_timeout rides out a
        # concurrent writer.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    return on_connect


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    sqlite_synchronous: str = "FULL",
    connect_timeout: float = 5.0,
    statement_timeout: float | None = None,
) -> AsyncEngine:
    # hide_parameters keeps bound values (contract passwords, NAS secrets) out of SQL logs and
    # out of the text of database exceptions, which end up in the daemon's log.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if not is_sqlite(url):
        # asyncpg waits 60 s for a connection by default: an unreachable database would hold
        # every API request and accounting batch that long. pool_timeout bounds the wait for
        # a pooled connection when all are stuck. A database that vanishes mid-query (a host
        # gone, a partition: no reset ever arrives) would hold a statement until TCP gives up,
        # many minutes: command_timeout bounds every statement, the pool's ping included.
        connect_args: dict[str, Any] = {"timeout": connect_timeout}
        if statement_timeout is not None:
            connect_args["command_timeout"] = statement_timeout
        kwargs.update(
            pool_size=pool_size,
            pool_pre_ping=True,
            pool_timeout=connect_timeout * 2,
            connect_args=connect_args,
        )
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite_synchronous must be FULL or NORMAL, not {sqlite_synchronous}")
        event.listen(engine.sync_engine, "do_connect", _fewer_hops)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(sqlite_synchronous))
    return engine


def _fewer_hops(dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
    """Connect with db.sqlite_connection's aiosqlite connection (the URL's own arguments)."""
    dbapi: Any = dialect.loaded_dbapi
    return dbapi.connect(*cargs, async_creator_fn=sqlite_connection.connect, **cparams)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
