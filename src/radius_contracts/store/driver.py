"""Driver-level SQL pieces: the hot write paths (auth log, accounting, leases) skip
SQLAlchemy's per-row parameter processing and hand statements to the driver as they are."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

__all__ = [
    "padded",
    "placeholders",
    "read_sqlite_time",
    "rows_in_values",
    "sqlite_text",
    "timestamp",
]

T = TypeVar("T")

_SMALLEST_LIST = 8


def placeholders(paramstyle: str, count: int, start: int = 1) -> list[str]:
    """``count`` parameter markers in the driver's style: ``?`` (sqlite3) or ``$n`` (asyncpg)."""
    if paramstyle == "qmark":
        return ["?"] * count
    if paramstyle == "numeric_dollar":
        return [f"${n}" for n in range(start, start + count)]
    raise ValueError(f"no driver-level SQL for paramstyle {paramstyle}")


def padded(values: Sequence[T]) -> list[T]:
    """``values`` lengthened to the next power of two (at least 8) by repeating
    the last one, for an ``IN (…)`` list: the same rows match, and the statement's text takes
    one of a few lengths instead of one per batch size.

    Every connection keeps its last prepared statements (sqlite3: 128, asyncpg: 100); an IN
    list of each length is a statement of its own, tens of KiB each once prepared, so one
    per batch size filled those caches and the daemon's memory grew for hours (bench/soak.py).
    """
    if not values:
        return []
    size = _SMALLEST_LIST
    while size < len(values):
        size *= 2
    return [*values, *[values[-1]] * (size - len(values))]


_ROWS_PER_STATEMENT = 64


def rows_in_values(head: str, rows: Sequence[Sequence[Any]]) -> Iterator[tuple[str, list[Any]]]:
    """``head`` ("INSERT INTO t (a, b) VALUES") with many of ``rows`` per statement (SQLite's
    ``?`` marks): 64 at a time, the rest in chunks of 32, 16 … 1, so a table gets at most seven
    statement texts (see ``padded`` for why few).

    Why not ``executemany``: sqlite3 lets go of the GIL for every row's step and must win it back
    before the next. On the daemon's SQLite write thread, with the event loop running Python on
    the main thread, each row then waits up to the switch interval: 500 auth log rows took
    20 ms there (2 ms alone), and accounting queued behind them. A statement of 64 rows waits
    once.
    """
    if not rows:
        return
    width = len(rows[0])
    group = "(" + ", ".join("?" * width) + ")"
    start, size = 0, _ROWS_PER_STATEMENT
    while start < len(rows):
        while size > len(rows) - start:
            size //= 2
        chunk = rows[start : start + size]
        yield (
            f"{head} {', '.join([group] * size)}",
            [value for row in chunk for value in row],
        )
        start += size


def timestamp(dialect: str, at: datetime) -> datetime | str:
    """``at`` (aware, UTC) as the driver takes it for a DateTimeUTC column.

    SQLite has no datetime type: SQLAlchemy stores the naive UTC time as text in this form,
    and reads it back the same way. asyncpg takes the aware datetime.
    """
    if dialect == "sqlite":
        return sqlite_text(at)
    return at


# The last second sqlite_text formatted, and its text: one tuple, so that a thread reading it
# while another replaces it sees one whole pair (the GIL makes the assignment atomic).
_last_second: tuple[tuple[int, int, int, int, int, int], str] = ((0, 0, 0, 0, 0, 0), "")


def sqlite_text(at: datetime) -> str:
    """``at`` as SQLite's DateTimeUTC text, "YYYY-MM-DD HH:MM:SS.ffffff", without the offset
    its isoformat() adds (``at`` is UTC already).

    Every auth log row and accounting record formats one or more of these, most of them in the
    same second as the previous: the date and time up to the second are formatted once per
    second (``isoformat`` alone took 0.9 µs a call, a fifth of writing an auth log row)."""
    global _last_second
    second = (at.second, at.minute, at.hour, at.day, at.month, at.year)
    last = _last_second
    if last[0] == second:
        prefix = last[1]
    else:
        prefix = at.isoformat(" ", "seconds")[:19]
        _last_second = (second, prefix)
    return f"{prefix}.{at.microsecond:06d}"


def read_sqlite_time(text: str) -> datetime:
    """SQLite's DateTimeUTC text (naive UTC) as an aware datetime.

    Parsed with its offset appended: ``datetime.replace(tzinfo=UTC)`` after parsing costs
    0.65 µs (keyword parsing in CPython 3.11), five times the parse; accounting reads three
    of these for every session a batch loads. Text that already has an offset is read as it is.
    """
    try:
        return datetime.fromisoformat(text + "+00:00")
    except ValueError:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
