"""Indexes for ``?q=`` text search on contracts: FTS5 (trigram) on SQLite, pg_trgm on PostgreSQL.

Search stays a case-insensitive substring match on number, username, customer name and
customer external id (store.common.text_search). These indexes only find the candidate rows
fast: on SQLite the query adds ``id IN (trigram MATCH)`` in front of the same LIKE, so the
result is exactly what the scan found; on PostgreSQL the planner uses the GIN trigram indexes
for the very ``lower(column) LIKE`` the query already has.

They live outside the ORM models (a virtual table and its triggers, expression indexes with
an extension's operator class): :func:`include_name` keeps them out of Alembic's model/schema
comparison, and :func:`create_sqlite` gives ``metadata.create_all`` the same objects as the
migration (0012).
"""

# The SQL below is built from this module's constant names only, never from input.
# ruff: noqa: S608

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

log = logging.getLogger("radius_contracts.db.search")

FTS_TABLE = "contracts_fts"
SEARCH_COLUMNS = ("number", "username", "customer_name", "customer_external_id")
TRGM_INDEXES = {column: f"ix_contracts_{column}_trgm" for column in SEARCH_COLUMNS}

_COLUMNS = ", ".join(SEARCH_COLUMNS)
_NEW = ", ".join(f"new.{c}" for c in SEARCH_COLUMNS)
_OLD = ", ".join(f"old.{c}" for c in SEARCH_COLUMNS)

# An external-content FTS5 table over contracts, kept in step by triggers (the pattern of
# https://sqlite.org/fts5.html#external_content_tables). The trigram tokenizer (SQLite 3.34+)
# matches any substring of 3 characters or more, case-folded.
SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5({_COLUMNS}, content='contracts', "
    "content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON contracts BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
    f"CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON contracts BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_COLUMNS}) "
    f"VALUES ('delete', old.id, {_OLD}); END",
    f"CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF {_COLUMNS} ON contracts BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_COLUMNS}) "
    f"VALUES ('delete', old.id, {_OLD}); "
    f"INSERT INTO {FTS_TABLE}(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
)
FTS_CANDIDATES = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts"


def fts_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase (a string in double quotes: every character literal)."""
    return '"' + text.replace('"', '""') + '"'


SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_au",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ad",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ai",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
)


def include_name(name: str | None, kind: str, _parent: object) -> bool:
    """Alembic's include_name: leave the search objects out of model/schema comparisons."""
    if kind == "table" and name is not None and name.startswith(FTS_TABLE):
        return False
    return not (kind == "index" and name in TRGM_INDEXES.values())


def sqlite_has_trigram(connection: Connection) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34 and later builds)."""
    try:
        connection.execute(
            text("CREATE VIRTUAL TABLE temp.rc_probe USING fts5(x, tokenize='trigram')")
        )
    except Exception:
        return False
    connection.execute(text("DROP TABLE temp.rc_probe"))
    return True


def create_sqlite(connection: Connection) -> None:
    """The FTS5 table and its triggers; without FTS5 trigram, none (search scans, as before)."""
    if not sqlite_has_trigram(connection):
        log.warning("this SQLite has no FTS5 trigram tokenizer: ?q= search scans the table")
        return
    for statement in SQLITE_CREATE:
        connection.execute(text(statement))


def drop_sqlite(connection: Connection) -> None:
    for statement in SQLITE_DROP:
        connection.execute(text(statement))


def create_postgresql(connection: Connection) -> None:
    """pg_trgm and a GIN index per searched column; without the extension (not installed, or
    this role may not create it), none: search scans, as before."""
    try:
        with connection.begin_nested():
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except Exception as exc:
        log.warning("pg_trgm is not available (%s): ?q= search scans the table", exc)
        return
    for column, index in TRGM_INDEXES.items():
        connection.execute(
            text(f"CREATE INDEX IF NOT EXISTS {index} ON contracts "
                 f"USING gin (lower({column}) gin_trgm_ops)")
        )  # fmt: skip


def drop_postgresql(connection: Connection) -> None:
    # The extension stays: other databases objects may use it, and dropping it needs rights.
    for index in TRGM_INDEXES.values():
        connection.execute(text(f"DROP INDEX IF EXISTS {index}"))
