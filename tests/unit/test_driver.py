"""Driver-level SQL: IN lists and multi-row VALUES in few statement texts."""

import random
import sqlite3
from datetime import UTC, datetime, timedelta

from radius_contracts.store.driver import padded, read_sqlite_time, rows_in_values, sqlite_text


def test_padded_lists_match_the_same_values_in_few_lengths() -> None:
    lengths = set()
    for size in range(1, 1025):
        values = list(range(size))
        out = padded(values)
        assert out[:size] == values and set(out) == set(values)
        lengths.add(len(out))
    assert lengths == {8, 16, 32, 64, 128, 256, 512, 1024}
    assert padded([]) == []


def test_rows_in_values_inserts_every_row_once_in_order_in_few_statements() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (n INTEGER, label TEXT)")
    texts = set()
    total = 0
    for size in (0, 1, 2, 63, 64, 65, 127, 500, 1000):
        rows = [(total + i, f"row {total + i}") for i in range(size)]
        statements = list(rows_in_values("INSERT INTO t (n, label) VALUES", rows))
        for statement, params in statements:
            texts.add(statement)
            connection.execute(statement, params)
        # 64 rows per statement, the rest in halves: few statements per batch.
        assert len(statements) <= size // 64 + 6
        total += size
    assert connection.execute("SELECT n, label FROM t").fetchall() == [
        (n, f"row {n}") for n in range(total)
    ]
    # 64, 32, 16, 8, 4, 2 and 1 rows: the statement cache holds few texts per table.
    assert len(texts) == 7


def test_sqlite_text_is_sqlalchemys_form_whatever_changed_since_the_last_call() -> None:
    rng = random.Random(7)
    at = datetime(2026, 12, 31, 23, 59, 58, 999_999, tzinfo=UTC)
    steps = [timedelta(microseconds=1), timedelta(0), timedelta(seconds=1), timedelta(hours=1),
             timedelta(days=1), timedelta(days=366), -timedelta(days=400)]  # fmt: skip
    for _ in range(5000):
        at += rng.choice(steps) + timedelta(microseconds=rng.randrange(3))
        # What SQLAlchemy's SQLite DateTime stores (and reads back).
        assert sqlite_text(at) == at.strftime("%Y-%m-%d %H:%M:%S.%f"), at
    assert sqlite_text(datetime(2027, 1, 1, tzinfo=UTC)) == "2027-01-01 00:00:00.000000"


def test_sqlite_times_read_back_as_the_aware_utc_moments_written() -> None:
    rng = random.Random(11)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(2000):
        at += timedelta(seconds=rng.randrange(100_000), microseconds=rng.randrange(1_000_000))
        read = read_sqlite_time(sqlite_text(at))
        assert read == at and read.utcoffset() == timedelta(0)
    # Text that carries its own offset, or no fraction, is read as it says.
    assert read_sqlite_time("2026-12-07 22:48:53+02:00") == datetime(
        2026, 12, 7, 20, 48, 53, tzinfo=UTC
    )
    assert read_sqlite_time("2026-12-07 22:48:53").tzinfo is not None
