"""Apply Alembic migrations from inside the daemon (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK = 0x52414449  # "RADI": any constant shared by every node works


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        # ConfigParser interpolation would read "%" in a password as a reference.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> bool:
    new = MigrationContext.configure(connection).get_current_revision() is None
    command.upgrade(alembic_config(connection=connection), "head")
    return new


async def upgrade(engine: AsyncEngine) -> bool:
    """Bring the schema to the newest revision; True when the database was new.

    New means it had no schema revision before, so the caller may fill in first-run data.
    On PostgreSQL several daemon nodes may start at once: a transaction-scoped advisory lock
    makes them migrate one after the other, and the later ones find nothing left to do (and
    a database that is not new).
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        return await connection.run_sync(_upgrade)
