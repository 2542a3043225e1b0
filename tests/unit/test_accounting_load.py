"""Accounting's load of a batch's sessions: the open one and the recently closed ones of each
key, by index ranges, whatever history the key has (store.accounting_sql.load_statements)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine

from radius_contracts.db.models import Base
from radius_contracts.store.accounting_records import INTERIM, LATE, SAME_START, AcctRecord
from radius_contracts.store.accounting_sql import LOADED, load_statements, statements_for

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _database(path: Path) -> sqlite3.Connection:
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA foreign_keys=OFF")  # sessions without their NAS rows
    return connection


def test_the_load_finds_open_and_recently_closed_sessions_and_no_older_ones(
    tmp_path: Path,
) -> None:
    db = _database(tmp_path / "load.db")
    sql = statements_for("sqlite", "qmark")
    hour, second = timedelta(hours=1), timedelta(seconds=1)
    # (name, nas, key, started, stopped)
    rows = [
        ("open", 1, "k", NOW - 5 * hour, None),
        ("closed, started lately", 1, "k", NOW - 30 * second, NOW - 20 * second),
        ("closed long after its start, just now", 1, "k", NOW - 3 * hour, NOW - 2 * second),
        *(("history", 1, "k", NOW - (10 + n) * hour, NOW - (9 + n) * hour) for n in range(50)),
        ("other key", 1, "x", NOW - timedelta(seconds=30), None),
        ("other NAS", 2, "k", NOW - timedelta(seconds=30), None),
        ("second key, open", 1, "k2", NOW - hour, None),
    ]
    for name, nas_id, key, started, stopped in rows:
        db.execute(
            "INSERT INTO sessions (nas_id, username, acct_session_id, acct_unique_id, started_at,"
            " updated_at, stopped_at, session_time, input_octets, output_octets, input_packets,"
            " output_packets) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0)",
            (nas_id, name, key, key, sql.time(started), sql.time(stopped or started),
             None if stopped is None else sql.time(stopped)),
        )  # fmt: skip
    # An Interim-Update that says its session started 10 s ago; the Start of k2 now.
    records = [
        AcctRecord(kind=INTERIM, nas_id=1, at=NOW, key="k", session_time=10),
        AcctRecord(kind=INTERIM, nas_id=1, at=NOW, key="k2", session_time=10),
    ]
    found = set()
    for statement, params in load_statements(sql, records):
        for row in db.execute(statement, params):
            found.add(dict(zip(LOADED, row, strict=True))["username"])
    assert found == {
        "open",
        "closed, started lately",
        "closed long after its start, just now",
        "second key, open",
    }
    # The same as the rule says, spelt as one condition.
    since = sql.time(NOW - timedelta(seconds=10) - SAME_START)
    closed = sql.time(NOW - LATE)
    expected = {
        name
        for (name,) in db.execute(
            "SELECT username FROM sessions WHERE nas_id = 1 AND acct_unique_id IN ('k', 'k2')"
            " AND (stopped_at IS NULL OR started_at >= ? OR stopped_at >= ?)",
            (since, closed),
        )
    }
    assert found == expected
    # Each part is an index range: none reads a key's whole history.
    for statement, params in load_statements(sql, records):
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement, params)]
        searches = [step for step in plan if step.startswith("SEARCH")]
        assert len(searches) == 3, plan
        # The open session by the partial unique index, or a range past the key.
        assert all(
            "uq_sessions_open_key" in step or "acct_unique_id=? AND" in step for step in searches
        ), plan
