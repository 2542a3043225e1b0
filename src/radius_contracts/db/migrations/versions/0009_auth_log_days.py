"""auth log: one table per UTC day (retention drops days whole), a count per row

The single ``auth_log`` table's rows move, with their ids, into ``auth_log_YYYYMMDD`` tables (see
store/auth_log.py for their DDL, ids and why). On PostgreSQL the ids of every day come from
the sequence ``auth_log_ids``; on SQLite the highest id stays in sqlite_sequence under
``auth_log``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from alembic import op

import radius_contracts.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "id, at, contract_id, username, nas_id, calling_station_id, result, reason, method"

# The DDL as of this revision (store/auth_log.py may move on; a migration must not).
_DDL = {
    "sqlite": (
        "CREATE TABLE {table} ("
        "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "
        "at DATETIME NOT NULL, "
        "contract_id INTEGER REFERENCES contracts (id) ON DELETE CASCADE, "
        "username VARCHAR(253), "
        "nas_id INTEGER REFERENCES nas (id) ON DELETE SET NULL, "
        "calling_station_id VARCHAR(253), "
        "result VARCHAR(8) NOT NULL, "
        "reason VARCHAR(255) NOT NULL, "
        "method VARCHAR(16), "
        "count INTEGER NOT NULL DEFAULT 1)"
    ),
    "postgresql": (
        "CREATE TABLE {table} ("
        "id BIGINT NOT NULL DEFAULT nextval('auth_log_ids') PRIMARY KEY, "
        "at TIMESTAMP WITH TIME ZONE NOT NULL, "
        "contract_id INTEGER REFERENCES contracts (id) ON DELETE CASCADE, "
        "username VARCHAR(253), "
        "nas_id INTEGER REFERENCES nas (id) ON DELETE SET NULL, "
        "calling_station_id VARCHAR(253), "
        "result VARCHAR(8) NOT NULL, "
        "reason VARCHAR(255) NOT NULL, "
        "method VARCHAR(16), "
        "count INTEGER NOT NULL DEFAULT 1)"
    ),
}


def _days(bind: sa.Connection) -> list[date]:
    if bind.dialect.name == "sqlite":
        sql = "SELECT DISTINCT substr(at, 1, 10) FROM auth_log"
    else:
        sql = "SELECT DISTINCT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM auth_log"
    return sorted(date.fromisoformat(text) for (text,) in bind.exec_driver_sql(sql))


def _day_tables(bind: sa.Connection) -> list[str]:
    if bind.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'auth_log_%'"
    else:
        sql = (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename LIKE 'auth_log_%'"
        )
    # auth_log_YYYYMMDD, and a busy day's later tables auth_log_YYYYMMDD_N (store.auth_log).
    return sorted(
        name
        for (name,) in bind.exec_driver_sql(sql)
        if name[9:17].isdigit()
        and (len(name) == 17 or (name[17:18] == "_" and name[18:].isdigit()))
    )


def _bounds(bind: sa.Connection, day: date) -> tuple[object, object]:
    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1)
    if bind.dialect.name == "sqlite":  # stored as naive UTC text, "YYYY-MM-DD HH:MM:SS..."
        return start.replace(tzinfo=None).isoformat(" "), end.replace(tzinfo=None).isoformat(" ")
    return start, end


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        high = bind.exec_driver_sql(
            "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'auth_log'"
        ).scalar()
    else:
        high = bind.exec_driver_sql("SELECT coalesce(max(id), 0) FROM auth_log").scalar()
        bind.exec_driver_sql(f"CREATE SEQUENCE auth_log_ids START WITH {int(high or 0) + 1}")
    for day in _days(bind):
        table = f"auth_log_{day:%Y%m%d}"
        bind.exec_driver_sql(_DDL[dialect].format(table=table))
        bind.exec_driver_sql(f"CREATE INDEX ix_{table}_contract ON {table} (contract_id, id)")
        start, end = _bounds(bind, day)
        bind.execute(
            sa.text(
                f"INSERT INTO {table} ({_COLUMNS}) SELECT {_COLUMNS} FROM auth_log"  # noqa: S608
                " WHERE at >= :start AND at < :end"
            ),
            {"start": start, "end": end},
        )
    op.drop_index("ix_auth_log_contract", table_name="auth_log")
    op.drop_table("auth_log")
    if dialect == "sqlite" and high:
        # Ids are never handed out twice: the next day continues past the single table's.
        bind.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('auth_log', ?)", (high,)
        )


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.create_table(
        "auth_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", radius_contracts.db.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=253), nullable=True),
        sa.Column("nas_id", sa.Integer(), nullable=True),
        sa.Column("calling_station_id", sa.String(length=253), nullable=True),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_auth_log_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["nas_id"], ["nas.id"], name=op.f("fk_auth_log_nas_id_nas"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_log")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("auth_log", schema=None) as batch_op:
        batch_op.create_index("ix_auth_log_contract", ["contract_id", "id"], unique=False)
    high = 0
    if dialect == "sqlite":
        high = (
            bind.exec_driver_sql(
                "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name LIKE 'auth_log%'"
            ).scalar()
            or 0
        )
        bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name LIKE 'auth_log%'")
    for table in _day_tables(bind):
        # A folded row (count > 1) goes back as one row: the single table had no count.
        bind.exec_driver_sql(
            f"INSERT INTO auth_log ({_COLUMNS}) SELECT {_COLUMNS} FROM {table}"  # noqa: S608
        )
        bind.exec_driver_sql(f"DROP TABLE {table}")
    if dialect == "sqlite":
        if high:
            bind.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('auth_log', ?)", (high,)
            )
    else:
        bind.exec_driver_sql("DROP SEQUENCE IF EXISTS auth_log_ids")
