"""ids never reused: SQLite tables with a surrogate id get AUTOINCREMENT

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:00:00

Without AUTOINCREMENT SQLite numbers a new row max(id) + 1, so deleting the newest NAS (or
contract, token, session…) hands its id to the next one, which then inherits its audit
history. SQLite can only add AUTOINCREMENT by rebuilding the table; batch mode copies the
rows with one INSERT … SELECT and recreates the indexes, constraints and foreign keys it
reflects (foreign keys are off meanwhile: see db.migrate.migrating). Then each table's
sqlite_sequence starts above every id it ever gave out that is still on record: its own
rows, and the ids the audit log names, deleted rows included.

PostgreSQL sequences never go back: nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table with a surrogate id, as of this revision. The audit log names entities by
# table name; the tables it never names only have their own rows to go by.
_TABLES = (
    "manufacturers",
    "pops",
    "nas",
    "radius_attributes",
    "layouts",
    "layout_attributes",
    "pools",
    "contracts",
    "contract_external_refs",
    "sessions",
    "coa_log",
    "leases",
    "api_tokens",
    "audit_log",
    "auth_log",
)

# Session ids a contract's "disconnect" audit entry lists ({"sessions": [ids]}).
_DISCONNECTED_SESSIONS = """
    SELECT max(CAST(value AS INTEGER)) FROM audit_log, json_each(audit_log.changes, '$.sessions')
    WHERE audit_log.entity = 'contracts' AND audit_log.action = 'disconnect'
      AND json_type(audit_log.changes, '$.sessions') = 'array'
"""


def _highest_known_id(table: str) -> int:
    bind = op.get_bind()
    candidates = [
        bind.exec_driver_sql(f"SELECT max(id) FROM {table}").scalar(),  # noqa: S608 - ours
        bind.exec_driver_sql(
            "SELECT max(entity_id) FROM audit_log WHERE entity = ?", (table,)
        ).scalar(),
    ]
    if table == "sessions":
        candidates.append(bind.exec_driver_sql(_DISCONNECTED_SESSIONS).scalar())
    return max((int(c) for c in candidates if c is not None), default=0)


def _seed_sequence(table: str, highest: int) -> None:
    """Make the next id of ``table`` at least ``highest`` + 1."""
    bind = op.get_bind()
    # The copy's INSERT … SELECT left a row here when it copied any (renamed with the table).
    found = bind.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
    seq = found.scalar()
    if seq is None:
        if highest > 0:
            bind.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, highest)
            )
    elif seq < highest:
        bind.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (highest, table))


def _rebuild(table: str, autoincrement: bool) -> None:
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Read before any rebuild: the audit log is one of the tables rebuilt.
    highest = {table: _highest_known_id(table) for table in _TABLES}
    for table in _TABLES:
        _rebuild(table, autoincrement=True)
        _seed_sequence(table, highest[table])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in reversed(_TABLES):
        _rebuild(table, autoincrement=False)
