"""Turn driver errors into the daemon's own errors, the same way on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from radius_contracts.errors import Conflict, StorageUnavailable

# sqlite: "UNIQUE constraint failed: contracts.username_key"
# postgresql: 'duplicate key value violates unique constraint "uq_contracts_username_key"'
#             DETAIL:  Key (username_key)=(alice) already exists.
_UNIQUE = (
    re.compile(r"UNIQUE constraint failed: (?P<columns>[\w., ]+)"),
    re.compile(r"Key \((?P<columns>[\w, ]+)\)=\((?P<value>.*)\) already exists"),
)
_FOREIGN_KEY = re.compile(r"FOREIGN KEY constraint failed|violates foreign key constraint")


def _columns(message: str) -> list[str] | None:
    for pattern in _UNIQUE:
        match = pattern.search(message)
        if match:
            return [c.strip().split(".")[-1] for c in match.group("columns").split(",")]
    return None


@contextmanager
def wrap_db_errors() -> Iterator[None]:
    """Re-raise IntegrityError as Conflict (naming the column) and lost connections as 503s."""
    try:
        yield
    except IntegrityError as exc:
        message = str(exc.orig)
        columns = _columns(message)
        if columns:
            raise Conflict(f"{', '.join(columns)} already exists", field=columns[-1]) from None
        if _FOREIGN_KEY.search(message):
            raise Conflict("the object is still referenced by other objects") from None
        raise Conflict("the change conflicts with existing data") from None
    except Exception as exc:
        if is_unavailable(exc):
            raise StorageUnavailable("the database is unreachable") from exc
        raise


# What a database that is down, restarting or unreachable raises on its way up: SQLAlchemy's
# wrappers, a pool with no connection to give, asyncpg's own connection errors (raised as they
# are while connecting) and the socket's (refused, reset, timed out); sqlite3's own from the
# SQLite write thread (db.sqlite_writer), as SQLAlchemy's OperationalError wraps them elsewhere.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    sqlite3.OperationalError,
    InterfaceError,
    PoolTimeout,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (rather than refused the data)."""
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError | InterfaceError):
        return exc.connection_invalidated
    return isinstance(exc, UNAVAILABLE)
