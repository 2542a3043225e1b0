"""Driver-level SQL pieces: the hot write paths (auth log, accounting, leases) skip
SQLAlchemy's per-row parameter processing and hand statements to the driver as they are."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

__all__ = ["padded", "placeholders", "timestamp"]

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


def timestamp(dialect: str, at: datetime) -> datetime | str:
    """``at`` (aware, UTC) as the driver takes it for a DateTimeUTC column.

    SQLite has no datetime type: SQLAlchemy stores the naive UTC time as text in this form,
    and reads it back the same way. asyncpg takes the aware datetime.
    """
    if dialect == "sqlite":
        # "YYYY-MM-DD HH:MM:SS.ffffff" without the "+00:00" that follows in ``at``'s form.
        return at.isoformat(" ", "microseconds")[:26]
    return at
