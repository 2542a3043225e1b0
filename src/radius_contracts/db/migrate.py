"""Apply Alembic migrations from inside the daemon (no alembic.ini needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK = 0x52414449  # "RADI": any constant shared by every node works


class BrokenForeignKeys(RuntimeError):
    """A migration left rows that point at nothing; it was rolled back."""


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        # ConfigParser interpolation would read "%" in a password as a reference.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def _check_foreign_keys(connection: AsyncConnection) -> None:
    # Each row: the table holding the reference, its rowid, the table it points at, which key.
    broken: list[tuple[str, int, str, int]] = [
        tuple(row) for row in await connection.exec_driver_sql("PRAGMA foreign_key_check")
    ]
    if broken:
        tables = sorted({f"{table} -> {parent}" for table, _rowid, parent, _fk in broken})
        raise BrokenForeignKeys(f"{len(broken)} rows point at nothing: {', '.join(tables)}")


@asynccontextmanager
async def migrating(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction that a migration may rebuild tables in, committed on exit.

    SQLite alters most things by rebuilding the table (batch mode: create a copy, copy the
    rows, DROP the original, rename the copy). With foreign keys enforced, that DROP first
    deletes every row and fires the ON DELETE actions of the tables pointing at it: cascades
    empty them, SET NULL cuts their references, RESTRICT fails the migration. So foreign keys
    are off while migrating (https://sqlite.org/lang_altertable.html#otheralter: the pragma is
    a no-op inside a transaction, hence before BEGIN), checked before the commit, and on again
    afterwards. The explicit BEGIN also makes the DDL part of the transaction: Python's sqlite3
    would only begin one at the first INSERT/UPDATE, so a failed migration could otherwise
    leave half its tables rebuilt. On PostgreSQL several daemon nodes may start at once: a
    transaction-scoped advisory lock makes them migrate one after the other.
    """
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()  # ends SQLAlchemy's autobegun transaction, not SQLite's
        try:
            async with connection.begin():
                if sqlite:
                    await connection.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK}
                    )
                yield connection
                if sqlite:
                    await _check_foreign_keys(connection)
        finally:
            if sqlite:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")


async def upgrade(engine: AsyncEngine, revision: str = "head") -> bool:
    """Bring the schema to the newest revision (or ``revision``); True when the database was new.

    New means it had no schema revision before, so the caller may fill in first-run data.
    Nodes that start together migrate one after the other (see ``migrating``); the later
    ones find nothing left to do (and a database that is not new).
    """

    def run(connection: Connection) -> bool:
        new = MigrationContext.configure(connection).get_current_revision() is None
        command.upgrade(alembic_config(connection=connection), revision)
        return new

    async with migrating(engine) as connection:
        return await connection.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the schema back to ``revision`` (tests, and an operator undoing an upgrade)."""

    def run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection=connection), revision)

    async with migrating(engine) as connection:
        await connection.run_sync(run)


@contextmanager
def ids_kept(connection: Connection, table: str) -> Iterator[None]:
    """Around a migration's rebuild of ``table`` (SQLite batch mode): its next id stays where
    it was. The copy's INSERT … SELECT would set it to the highest id still in the table, so
    ids of deleted rows would be handed out again (see migration 0005)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    read = "SELECT seq FROM sqlite_sequence WHERE name = ?"
    before = connection.exec_driver_sql(read, (table,)).scalar()
    yield
    if before is None:
        return
    after = connection.exec_driver_sql(read, (table,)).scalar()
    if after is None:
        connection.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, before)
        )
    elif after < before:
        connection.exec_driver_sql(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (before, table)
        )
