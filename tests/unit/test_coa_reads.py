"""The CoA planner's reads of open sessions (store.coa): the right rows, and few statement texts
whatever the number of ids, since the driver prepares and keeps one per text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from radius_contracts.db.models import Base
from radius_contracts.store.coa import open_sessions_of, open_sessions_on

NOW = "2026-12-07 12:00:00.000000"


async def test_open_sessions_are_read_with_few_statement_texts(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'coa.db'}")
    texts: set[str] = set()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM sessions" in statement:
            texts.add(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for n in range(1, 41):  # contract n on NAS n % 3; the even ones have closed
                stopped = NOW if n % 2 == 0 else None
                await connection.exec_driver_sql(
                    "INSERT INTO sessions (contract_id, nas_id, username, acct_session_id, "
                    "acct_unique_id, started_at, updated_at, stopped_at, session_time, "
                    "input_octets, output_octets, input_packets, output_packets) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0)",
                    (n, n % 3, f"u{n}", f"s{n}", f"s{n}", NOW, NOW, stopped),
                )
        sessions = async_sessionmaker(engine)
        async with sessions() as session:
            for count in range(1, 41):
                found = await open_sessions_of(session, range(1, count + 1))
                assert [t.contract_id for t in found] == list(range(1, count + 1, 2))
            on = await open_sessions_on(session, [1])
            assert sorted(t.contract_id for t in on) == [n for n in range(1, 41, 2) if n % 3 == 1]
    finally:
        await engine.dispose()
    # 40 list lengths, padded to 8, 16, 32 and 64 (and the by-NAS read's 8).
    assert len(texts) <= 5, len(texts)
