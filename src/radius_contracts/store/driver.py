"""Driver-level SQL pieces: the hot write paths (auth log, accounting, leases) skip
SQLAlchemy's per-row parameter processing and hand statements to the driver as they are."""

from __future__ import annotations

from datetime import datetime

__all__ = ["placeholders", "timestamp"]


def placeholders(paramstyle: str, count: int, start: int = 1) -> list[str]:
    """``count`` parameter markers in the driver's style: ``?`` (sqlite3) or ``$n`` (asyncpg)."""
    if paramstyle == "qmark":
        return ["?"] * count
    if paramstyle == "numeric_dollar":
        return [f"${n}" for n in range(start, start + count)]
    raise ValueError(f"no driver-level SQL for paramstyle {paramstyle}")


def timestamp(dialect: str, at: datetime) -> datetime | str:
    """``at`` (aware, UTC) as the driver takes it for a DateTimeUTC column.

    SQLite has no datetime type: SQLAlchemy stores the naive UTC time as text in this form,
    and reads it back the same way. asyncpg takes the aware datetime.
    """
    if dialect == "sqlite":
        # "YYYY-MM-DD HH:MM:SS.ffffff" without the "+00:00" that follows in ``at``'s form.
        return at.isoformat(" ", "microseconds")[:26]
    return at
