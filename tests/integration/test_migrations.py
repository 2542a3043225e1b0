"""Alembic migrations and the ORM models describe the same schema, on both databases."""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from conftest import admin_sql
from radius_contracts.db import (
    migrate,
    models,  # noqa: F401  (registers the tables)
    search,
)
from radius_contracts.db.base import Base
from radius_contracts.db.engine import create_engine, sqlite_path
from radius_contracts.db.types import DateTimeUTC
from radius_contracts.store import auth_log as auth_log_store


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
    # The search objects (FTS5 table, trigram indexes) are not in the models: see db.search.
    opts = {"compare_type": True, "include_name": search.include_name}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, Base.metadata))


def _clauses(create_table: str) -> list[str]:
    """The column definitions and constraints of a CREATE TABLE, whitespace normalised."""
    body = create_table[create_table.index("(") + 1 : create_table.rindex(")")]
    clauses, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            clauses.append(body[start:i])
            start = i + 1
    clauses.append(body[start:])
    return [re.sub(r"\s+", " ", clause.replace('"', "")).strip() for clause in clauses]


def _sqlite_ddl(path: str) -> dict[str, Any]:
    """Every table's columns and constraints (in any order: ALTER TABLE appends columns),
    every index exactly, and whether the table is AUTOINCREMENT, by name."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT type, name, sql FROM sqlite_master"
            " WHERE sql IS NOT NULL AND name != 'alembic_version'"
        ).fetchall()
    return {
        name: sorted(_clauses(sql)) if kind == "table" else re.sub(r"\s+", " ", sql)
        for kind, name, sql in rows
    }


async def _models_ddl(tmp: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{tmp / 'models.db'}"
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()
    return _sqlite_ddl(sqlite_path(url))


async def _check(url: str, tmp: Path) -> None:
    # Alembic's comparison misses what SQLite keeps in the CREATE TABLE text alone (the
    # AUTOINCREMENT keyword, a partial index's WHERE): on SQLite the DDL is compared too.
    expected = await _models_ddl(tmp) if url.startswith("sqlite") else None
    engine = create_engine(url)
    try:
        assert await migrate.upgrade(engine) is True  # a new database
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        if expected is not None:
            assert _sqlite_ddl(sqlite_path(url)) == expected
        assert await migrate.upgrade(engine) is False  # nothing left to do
        await migrate.downgrade(engine, "0001")
        assert await migrate.upgrade(engine) is False  # had a revision: not new
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        if expected is not None:
            assert _sqlite_ddl(sqlite_path(url)) == expected
    finally:
        await engine.dispose()


def test_migrations_match_the_models(database_url: str, tmp_path: Path) -> None:
    asyncio.run(_check(database_url, tmp_path))


def test_every_table_with_a_surrogate_id_never_reuses_ids() -> None:
    """A new table with an id gets AUTOINCREMENT too (models and a migration, see 0005)."""
    for table in Base.metadata.tables.values():
        surrogate = [c.name for c in table.primary_key.columns] == ["id"]
        assert table.dialect_options["sqlite"]["autoincrement"] is surrogate, table.name


# The tables as revision 0004 left them: only the columns a row needs.
_NOW = datetime(2026, 11, 1, tzinfo=UTC)
_WHEN = DateTimeUTC()


def _stamps() -> tuple[sa.ColumnClause[Any], ...]:
    return sa.column("created_at", _WHEN), sa.column("updated_at", _WHEN)


_T = {
    "manufacturers": sa.table(
        "manufacturers",
        sa.column("id"),
        sa.column("name"),
        sa.column("active"),
        sa.column("coa_identifiers", sa.JSON),
        sa.column("coa_attributes", sa.JSON),
        sa.column("coa_deactivate", sa.JSON),
        sa.column("coa_disconnect_fallback"),
        *_stamps(),
    ),
    "nas": sa.table(
        "nas",
        sa.column("id"),
        sa.column("name"),
        sa.column("address"),
        sa.column("secret"),
        sa.column("manufacturer_id"),
        sa.column("coa_port"),
        sa.column("require_message_authenticator"),
        sa.column("active"),
        *_stamps(),
    ),
    "contracts": sa.table(
        "contracts",
        sa.column("id"),
        sa.column("number"),
        sa.column("status"),
        sa.column("auto_extend"),
        sa.column("customer_custom_fields", sa.JSON),
        sa.column("custom_fields", sa.JSON),
        sa.column("username"),
        sa.column("username_key"),
        *_stamps(),
    ),
    "contract_external_refs": sa.table(
        "contract_external_refs",
        sa.column("id"),
        sa.column("contract_id"),
        sa.column("app"),
        sa.column("external_id"),
    ),
    "sessions": sa.table(
        "sessions",
        sa.column("id"),
        sa.column("contract_id"),
        sa.column("nas_id"),
        sa.column("username"),
        sa.column("acct_session_id"),
        sa.column("acct_unique_id"),
        sa.column("started_at", _WHEN),
        sa.column("updated_at", _WHEN),
        *(sa.column(c) for c in ("session_time", "input_octets", "output_octets")),
        *(sa.column(c) for c in ("input_packets", "output_packets")),
    ),
    "auth_log": sa.table(
        "auth_log",
        sa.column("id"),
        sa.column("at", _WHEN),
        sa.column("contract_id"),
        sa.column("nas_id"),
        sa.column("result"),
        sa.column("reason"),
    ),
    # Revision 0009 moves the auth log into one table per UTC day (_NOW's here).
    "auth_log_day": sa.table(
        "auth_log_20261101",
        sa.column("id"),
        sa.column("at", _WHEN),
        sa.column("contract_id"),
        sa.column("nas_id"),
        sa.column("result"),
        sa.column("reason"),
        sa.column("count"),
    ),
    "audit_log": sa.table(
        "audit_log",
        sa.column("id"),
        sa.column("at", _WHEN),
        sa.column("action"),
        sa.column("entity"),
        sa.column("entity_id"),
        sa.column("changes", sa.JSON),
    ),
}


async def _add(connection: AsyncConnection, table: str, **values: Any) -> int:
    t = _T[table]
    if "created_at" in t.c:
        values = {"created_at": _NOW, "updated_at": _NOW, **values}
    result = await connection.execute(sa.insert(t).values(**values).returning(t.c.id))
    row_id: int = result.scalar_one()
    return row_id


async def _delete(connection: AsyncConnection, table: str, row_id: int, **audit: Any) -> None:
    await connection.execute(sa.delete(_T[table]).where(_T[table].c.id == row_id))
    if audit:
        await _add(connection, "audit_log", at=_NOW, entity=table, entity_id=row_id, **audit)


async def _fill_0004(connection: AsyncConnection) -> dict[str, Any]:
    """Rows at revision 0004, each kind's newest one deleted (and audited where the API would)."""
    policy = {"coa_identifiers": [], "coa_attributes": [], "coa_deactivate": {}}
    maker = await _add(
        connection,
        "manufacturers",
        name="maker",
        active=True,
        coa_disconnect_fallback=True,
        **policy,
    )

    async def nas(name: str) -> int:
        return await _add(
            connection,
            "nas",
            name=name,
            address=f"192.0.2.{len(name)}",
            secret="s3cret-value",
            manufacturer_id=maker,
            coa_port=3799,
            require_message_authenticator=True,
            active=True,
        )

    async def contract(number: str) -> int:
        fields = {"customer_custom_fields": {}, "custom_fields": {}}
        return await _add(
            connection,
            "contracts",
            number=number,
            status="active",
            auto_extend=False,
            username=number,
            username_key=number,
            **fields,
        )

    async def session(contract_id: int, nas_id: int, key: str) -> int:
        counters = dict.fromkeys(
            ("session_time", "input_octets", "output_octets", "input_packets", "output_packets"), 0
        )
        return await _add(
            connection,
            "sessions",
            contract_id=contract_id,
            nas_id=nas_id,
            username="kept",
            acct_session_id=key,
            acct_unique_id=key,
            started_at=_NOW,
            updated_at=_NOW,
            **counters,
        )

    kept_nas, gone_nas = await nas("kept"), await nas("deleted")
    kept, gone = await contract("kept"), await contract("deleted")
    for entity, row_id in (("nas", gone_nas), ("contracts", gone)):
        await _add(
            connection,
            "audit_log",
            at=_NOW,
            action="create",
            entity=entity,
            entity_id=row_id,
            changes={"name": "deleted"},
        )
    await _delete(connection, "nas", gone_nas, action="delete", changes={})
    await _delete(connection, "contracts", gone, action="delete", changes={})
    kept_session, gone_session = (
        await session(kept, kept_nas, "a"),
        await session(kept, kept_nas, "b"),
    )
    await _delete(connection, "sessions", gone_session)
    # A contract's disconnect lists the sessions it ended: the only record of that id.
    await _add(
        connection,
        "audit_log",
        at=_NOW,
        action="disconnect",
        entity="contracts",
        entity_id=kept,
        changes={"sessions": [gone_session]},
    )
    ref = await _add(
        connection, "contract_external_refs", contract_id=kept, app="b", external_id="1"
    )
    log = await _add(
        connection,
        "auth_log",
        at=_NOW,
        contract_id=kept,
        nas_id=kept_nas,
        result="accept",
        reason="ok",
    )
    return {
        "nas": (kept_nas, gone_nas),
        "contracts": (kept, gone),
        "sessions": (kept_session, gone_session),
        "ref": ref,
        "log": log,
    }


async def _check_ids_after_upgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine, "0004")
        async with engine.begin() as connection:
            before = await _fill_0004(connection)
        await migrate.upgrade(engine)
        async with engine.begin() as connection:
            # Every row survived the rebuilds with its references (foreign keys were off:
            # with them on, rebuilding contracts would have emptied the auth log).
            kept_nas, gone_nas = before["nas"]
            kept, gone = before["contracts"]
            kept_session, gone_session = before["sessions"]
            sessions = (
                await connection.execute(
                    sa.select(
                        _T["sessions"].c.id, _T["sessions"].c.contract_id, _T["sessions"].c.nas_id
                    )
                )
            ).all()
            assert [tuple(r) for r in sessions] == [(kept_session, kept, kept_nas)]
            refs = (await connection.execute(sa.select(_T["contract_external_refs"]))).all()
            assert [(r.id, r.contract_id) for r in refs] == [(before["ref"], kept)]
            log = (await connection.execute(sa.select(_T["auth_log_day"]))).all()
            assert [(r.id, r.contract_id, r.nas_id, r.at, r.count) for r in log] == [
                (before["log"], kept, kept_nas, _NOW, 1)
            ]
            # The deleted ones' ids, the newest of each, are not handed out again.
            new_nas = await _add(
                connection,
                "nas",
                name="new",
                address="192.0.2.99",
                secret="s3cret-value",
                manufacturer_id=1,
                coa_port=3799,
                require_message_authenticator=True,
                active=True,
            )
            assert new_nas > gone_nas
            new_contract = await _add(
                connection,
                "contracts",
                number="new",
                status="active",
                auto_extend=False,
                username="new",
                username_key="new",
                customer_custom_fields={},
                custom_fields={},
            )
            assert new_contract > gone
            counters = dict.fromkeys(
                ("session_time", "input_octets", "output_octets", "input_packets"), 0
            )
            new_session = await _add(
                connection,
                "sessions",
                contract_id=kept,
                nas_id=kept_nas,
                username="new",
                acct_session_id="c",
                acct_unique_id="c",
                started_at=_NOW,
                updated_at=_NOW,
                output_packets=0,
                **counters,
            )
            assert new_session > gone_session
            # The log's next id is past the moved ones (a new day continues the numbering).
            if connection.dialect.name == "sqlite":
                assert await auth_log_store.next_id(connection) > before["log"]
            else:
                next_log = await connection.scalar(sa.text("SELECT nextval('auth_log_ids')"))
                assert next_log > before["log"]
        # And back: the rows survive a downgrade too.
        await migrate.downgrade(engine, "0004")
        async with engine.connect() as connection:
            count = await connection.scalar(sa.select(sa.func.count()).select_from(_T["auth_log"]))
            assert count == 1
    finally:
        await engine.dispose()


def test_upgrade_keeps_rows_and_never_reuses_a_deleted_id(database_url: str) -> None:
    asyncio.run(_check_ids_after_upgrade(database_url))


async def _check_migrating_is_one_checked_transaction(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        with pytest.raises(migrate.BrokenForeignKeys, match="auth_log_20261101 -> contracts"):
            async with migrate.migrating(engine) as connection:
                await connection.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
                await auth_log_store.ensure_day(connection, _NOW.date())
                await _add(
                    connection,
                    "auth_log_day",
                    at=_NOW,
                    contract_id=12345,
                    result="x",
                    reason="",
                    count=1,
                )
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
            assert "scratch" not in tables  # the DDL was rolled back with the rest
            assert await auth_log_store.days(connection) == []  # made in it: rolled back too
            assert await connection.scalar(sa.text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()


def test_sqlite_migration_rolls_back_entirely_when_it_breaks_a_reference(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'checked.db'}"
    asyncio.run(_check_migrating_is_one_checked_transaction(url))
