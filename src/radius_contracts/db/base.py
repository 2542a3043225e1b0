"""Declarative base: named constraints (Alembic batch mode on SQLite needs names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from radius_contracts.db.types import DateTimeUTC, JSONDict, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


IDS_NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}
"""Table option of every table with a surrogate id: an id is never handed out twice.

Without AUTOINCREMENT SQLite gives a new row max(id) + 1, so deleting the newest row hands its
id to the next one, which then inherits whatever still points at the old id: audit history,
an operator's note, a client's cursor. PostgreSQL sequences never go back; the option only
changes SQLite's DDL (``INTEGER PRIMARY KEY AUTOINCREMENT``, https://sqlite.org/autoinc.html).
"""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTimeUTC(), dict[str, Any]: JSONDict()}


class Audited:
    """Who changed a row, when, and through which system (billing app, CLI, API)."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_via: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100))
    updated_via: Mapped[str | None] = mapped_column(String(100))
