"""db.sqlite_connection through the daemon's SQLite engine: one thread hop per statement, and
results, streams and transactions exactly as aiosqlite's own connections give them."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from radius_contracts.db import sqlite_connection
from radius_contracts.db.engine import create_engine, session_factory

ROWS = 3 * sqlite_connection.PREFETCH + 7  # past the prefetch, and not a multiple of it


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE t (n INTEGER NOT NULL)")
        await connection.exec_driver_sql(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?) "
            "INSERT INTO t SELECT n FROM s",
            (ROWS,),
        )
    yield engine
    await engine.dispose()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """What crosses to a connection's thread, by function name."""
    seen: Counter[str] = Counter()
    crossing = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any) -> Any:
        seen[getattr(fn, "__name__", repr(fn))] += 1
        return await crossing(self, fn, *args)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_the_engine_connects_through_it(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_connection.Connection)


async def test_a_read_is_one_hop_and_a_write_two(engine: AsyncEngine, hops: Counter[str]) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        assert (await session.execute(text("SELECT n FROM t WHERE n = 5"))).scalar_one() == 5
    # aiosqlite's own: cursor, execute, fetchall, close and two rollbacks of nothing.
    assert sum(hops.values()) == 1, hops
    hops.clear()
    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO t (n) VALUES (0)"))
    assert sum(hops.values()) == 2, hops  # the INSERT, the COMMIT
    assert hops["commit"] == 1


async def test_every_row_comes_whatever_the_fetch(engine: AsyncEngine) -> None:
    wanted = list(range(1, ROWS + 1))
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql("SELECT n FROM t ORDER BY n")
        assert [row[0] for row in result.fetchall()] == wanted
        # A server-side cursor streams: the first rows came with the execute, the rest in
        # chunks, by fetchmany and fetchone alike.
        streamed = await connection.stream(text("SELECT n FROM t ORDER BY n"))
        got = [row[0] for row in await streamed.fetchmany(10)]
        got.append((await streamed.fetchone())[0])  # type: ignore[index]
        async for partition in streamed.partitions(100):
            got += [row[0] for row in partition]
        assert got == wanted
        # Left half-read: closing it resets the statement, and the connection goes on.
        partial = await connection.stream(text("SELECT n FROM t ORDER BY n"))
        assert len(await partial.fetchmany(sqlite_connection.PREFETCH + 3)) == (
            sqlite_connection.PREFETCH + 3
        )
        await partial.close()
        count = await connection.exec_driver_sql("SELECT count(*) FROM t")
        assert count.scalar_one() == ROWS


async def test_rollback_and_commit_still_do_their_work(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        await session.execute(text("INSERT INTO t (n) VALUES (-1)"))
        await session.rollback()
    async with sessions() as session:
        await session.execute(text("INSERT INTO t (n) VALUES (-2)"))
        await session.commit()
    async with sessions() as session:
        kept = await session.execute(text("SELECT n FROM t WHERE n < 0"))
        assert kept.scalars().all() == [-2]


async def test_errors_are_sqlite3_s(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        with pytest.raises(Exception, match="no such table"):
            await connection.exec_driver_sql("SELECT * FROM missing")
        # and the connection is still good for the next statement
        result = await connection.exec_driver_sql("SELECT count(*) FROM t")
        assert result.scalar_one() == ROWS
