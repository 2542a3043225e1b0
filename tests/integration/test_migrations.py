"""Alembic migrations and the ORM models describe the same schema, on both databases."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from conftest import admin_sql
from radius_contracts.db import (
    migrate,
    models,  # noqa: F401  (registers the tables)
)
from radius_contracts.db.base import Base
from radius_contracts.db.engine import create_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    shared = request.getfixturevalue("postgres_url")  # skips when PostgreSQL is unreachable
    base, _, name = shared.rpartition("/")
    scratch = f"{name}_migrations_{secrets.token_hex(3)}"
    asyncio.run(admin_sql(shared, f'CREATE DATABASE "{scratch}"'))
    yield f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{scratch}"
    asyncio.run(admin_sql(shared, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _downgrade_to(revision: str) -> Any:
    def run(connection: Connection) -> None:
        command.downgrade(migrate.alembic_config(connection=connection), revision)

    return run


async def _check(url: str) -> None:
    engine = create_engine(url)
    try:
        assert await migrate.upgrade(engine) is True  # a new database
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        assert await migrate.upgrade(engine) is False  # nothing left to do
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade_to("0001"))
        assert await migrate.upgrade(engine) is False  # had a revision: not new
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


def test_migrations_match_the_models(database_url: str) -> None:
    asyncio.run(_check(database_url))
