"""db.writer: the async engine's SQLite writers queue on one lock instead of polling, and the
write thread (db.sqlite_writer) lets them go first."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from radius_contracts.db.engine import session_factory
from radius_contracts.db.sqlite_writer import SqliteWriter
from radius_contracts.db.writer import held, write_lock, write_transaction


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # Short, so a writer left to poll for the lock gives up within the test.
        cursor.execute("PRAGMA busy_timeout=100")
        cursor.close()

    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE t (n INTEGER NOT NULL)")
    yield engine
    await engine.dispose()


async def test_writers_of_one_engine_queue_rather_than_fail_on_the_lock(
    engine: AsyncEngine,
) -> None:
    """Each transaction holds SQLite's write lock longer than the others' busy_timeout: on
    their own connections they would fail with "database is locked"; queued, all commit."""
    sessions = session_factory(engine)

    async def write(n: int) -> None:
        async with write_transaction(sessions) as session:
            await session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.15)  # the write lock is held from the INSERT to the commit

    await asyncio.gather(*(write(n) for n in range(6)))
    async with sessions() as session:
        rows = (await session.execute(text("SELECT n FROM t ORDER BY rowid"))).scalars().all()
    assert rows == list(range(6))  # every one committed, in arrival order


async def test_the_lock_is_one_per_engine_and_none_on_postgresql(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    other = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    postgres = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        lock = write_lock(session_factory(engine))
        assert lock is not None
        assert write_lock(engine) is lock  # the engine or its sessionmaker: the same lock
        assert write_lock(other) is not None and write_lock(other) is not lock
        assert write_lock(postgres) is None
        assert write_lock(session_factory(postgres)) is None
    finally:
        await other.dispose()
        await postgres.dispose()


async def test_the_holder_may_take_it_again_and_others_wait_in_order(engine: AsyncEngine) -> None:
    lock = write_lock(engine)
    assert lock is not None
    order: list[str] = []

    async def other(name: str) -> None:
        async with held(lock):
            order.append(name)

    async with held(lock):
        waiting = [asyncio.create_task(other(name)) for name in ("b", "c", "d")]
        await asyncio.sleep(0.01)
        async with held(lock):  # a transaction opened inside another by the same task
            order.append("a, again")
        assert order == ["a, again"]  # the others still wait
    await asyncio.gather(*waiting)
    assert order == ["a, again", "b", "c", "d"]


async def test_the_write_thread_begins_nothing_while_an_engine_writer_holds_the_lock(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """An API write waiting for SQLite's lock would otherwise poll against a thread that
    commits back to back, and could lose every try ("database is locked")."""
    sessions = session_factory(engine)
    writer = SqliteWriter(str(tmp_path / "w.db"), "NORMAL", engine)
    order: list[str] = []
    reading = asyncio.Event()

    async def api_write() -> None:
        async with write_transaction(sessions) as session:
            await session.execute(text("SELECT count(*) FROM t"))  # reads first, no lock yet
            reading.set()
            await asyncio.sleep(0.1)
            await session.execute(text("INSERT INTO t (n) VALUES (1)"))
        order.append("api")

    def thread_work(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO t (n) VALUES (2)")
        order.append("thread")

    try:
        api = asyncio.create_task(api_write())
        await reading.wait()
        await writer.run(thread_work)
        await api
    finally:
        await asyncio.to_thread(writer.close)
    assert order == ["api", "thread"]


async def test_a_transaction_that_need_not_be_durable_skips_the_sync(tmp_path: Path) -> None:
    """The auth log's batches commit without waiting for the disk; accounting's still do, and
    the connection goes back to the configured level after each such batch (even a failed one)."""
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (n INTEGER NOT NULL)")
    writer = SqliteWriter(str(path), "FULL")
    seen: list[int] = []

    def work(connection: sqlite3.Connection) -> None:
        seen.append(connection.execute("PRAGMA synchronous").fetchone()[0])
        connection.execute("INSERT INTO t (n) VALUES (1)")

    def fails(connection: sqlite3.Connection) -> None:
        work(connection)
        raise ValueError("refused")

    try:
        await writer.run(work, durable=False)
        await writer.run(work)
        with pytest.raises(ValueError):
            await writer.run(fails, durable=False)
        await writer.run(work)
    finally:
        await asyncio.to_thread(writer.close)
    assert seen == [1, 2, 1, 2]  # NORMAL, FULL, NORMAL, FULL (sqlite's numbers for them)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 3  # the failed one undone


def _table(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (n INTEGER NOT NULL CHECK (n >= 0))")


def _insert(n: int) -> Callable[[sqlite3.Connection], int]:
    def work(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return n

    return work


def _rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [n for (n,) in db.execute("SELECT n FROM t ORDER BY rowid")]


async def test_a_chain_takes_the_next_work_itself_and_reports_each_commit_in_order(
    tmp_path: Path,
) -> None:
    """What ``following`` hands over runs on the thread, one transaction each, and the loop
    hears of each commit, in order, before the chain's await returns."""
    path = tmp_path / "c.db"
    _table(path)
    writer = SqliteWriter(str(path), "NORMAL")
    more = list(range(1, 6))
    threads: set[int] = set()
    committed: list[int] = []

    def following() -> Callable[[sqlite3.Connection], int] | None:
        threads.add(threading.get_ident())
        return _insert(more.pop(0)) if more else None

    try:
        failed = await writer.run_chain(_insert(0), following, committed.append)
    finally:
        await asyncio.to_thread(writer.close)
    assert failed is None
    assert committed == [0, 1, 2, 3, 4, 5]
    assert threading.get_ident() not in threads  # taken on the writer thread
    assert _rows(path) == [0, 1, 2, 3, 4, 5]


async def test_a_chain_stops_at_the_work_that_fails_and_hands_it_back(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _table(path)
    writer = SqliteWriter(str(path), "NORMAL")
    more = [1, -1, 2]  # -1 breaks the CHECK constraint
    committed: list[int] = []
    bad = None

    def following() -> Callable[[sqlite3.Connection], int] | None:
        nonlocal bad
        work = _insert(more.pop(0))
        if bad is None and not more[1:]:
            bad = work
        return work

    try:
        failed = await writer.run_chain(_insert(0), following, committed.append)
    finally:
        await asyncio.to_thread(writer.close)
    assert failed is not None
    assert failed[0] is bad
    assert isinstance(failed[1], sqlite3.IntegrityError)
    assert committed == [0, 1]
    assert more == [2]  # nothing after the failure was taken
    assert _rows(path) == [0, 1]  # the failed transaction rolled back


async def test_a_chain_gives_way_to_a_job_queued_behind_it(tmp_path: Path) -> None:
    """The auth log shares the thread: a chain that could go on for ever must let it in."""
    path = tmp_path / "c.db"
    _table(path)
    writer = SqliteWriter(str(path), "NORMAL")
    other_queued = threading.Event()
    taken = 0

    def following() -> Callable[[sqlite3.Connection], int] | None:
        nonlocal taken
        taken += 1
        if taken == 3:
            other_queued.wait(5)
        return _insert(taken) if taken < 1_000 else None

    try:
        chain = asyncio.create_task(writer.run_chain(_insert(0), following, lambda n: None))
        await asyncio.sleep(0.05)
        other = asyncio.create_task(writer.run(_insert(10_000)))
        await asyncio.sleep(0)  # the job is handed to the thread
        other_queued.set()
        assert await chain is None
        await other
    finally:
        await asyncio.to_thread(writer.close)
    # The work taken while the job arrived commits; then the job goes before anything more.
    assert taken == 3
    assert _rows(path) == [0, 1, 2, 3, 10_000]


async def test_a_chain_gives_way_to_an_engine_writer(engine: AsyncEngine, tmp_path: Path) -> None:
    """Like ``run``: an API write holding the lock goes before the chain's next transaction."""
    lock = write_lock(engine)
    assert lock is not None
    writer = SqliteWriter(str(tmp_path / "w.db"), "NORMAL", engine)
    holding = threading.Event()
    taken = 0

    def following() -> Callable[[sqlite3.Connection], int] | None:
        nonlocal taken
        taken += 1
        if taken == 2:
            holding.wait(5)
        return _insert(taken) if taken < 1_000 else None

    async def api_write() -> None:
        async with held(lock):
            holding.set()
            await asyncio.sleep(0.05)

    try:
        chain = asyncio.create_task(writer.run_chain(_insert(0), following, lambda n: None))
        await asyncio.sleep(0.02)
        api = asyncio.create_task(api_write())
        assert await chain is None
        await api
    finally:
        await asyncio.to_thread(writer.close)
    assert taken == 2  # the commit after the lock was taken ended the chain
    assert _rows(tmp_path / "w.db") == [0, 1, 2]
