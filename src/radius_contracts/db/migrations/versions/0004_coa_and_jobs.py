"""coa and jobs: manufacturers' CoA policy, NAS CoA address, CoA log, shared job state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import radius_contracts.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = radius_contracts.db.types.DateTimeUTC(timezone=True)

# What databases created before this revision get for the manufacturers they were seeded
# with (the same policy services.defaults gives new ones; frozen here as of this revision).
_SEEDED = {
    "MikroTik": (
        ["User-Name", "Acct-Session-Id", "NAS-IP-Address"],
        ["Mikrotik-Rate-Limit", "Session-Timeout"],
        {},
    ),
    "accel-ppp": (
        ["User-Name", "Acct-Session-Id"],
        ["Filter-Id", "Session-Timeout"],
        {},
    ),
    "Cisco": (["Acct-Session-Id"], ["Cisco-AVPair"], {}),
    "Huawei": (
        ["User-Name", "Acct-Session-Id"],
        ["Huawei-Input-Average-Rate", "Huawei-Output-Average-Rate", "Session-Timeout"],
        {},
    ),
    "Juniper ERX": (
        ["Acct-Session-Id"],
        ["ERX-Service-Activate"],
        {"ERX-Service-Activate": "ERX-Service-Deactivate"},
    ),
    "WISPr": (
        ["User-Name", "Acct-Session-Id"],
        ["WISPr-Bandwidth-Max-Up", "WISPr-Bandwidth-Max-Down", "Session-Timeout"],
        {},
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("manufacturers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "coa_identifiers",
                sa.JSON(),
                nullable=False,
                server_default='["User-Name", "Acct-Session-Id"]',
            )
        )
        batch_op.add_column(
            sa.Column("coa_attributes", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("coa_deactivate", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.add_column(
            sa.Column(
                "coa_disconnect_fallback", sa.Boolean(), nullable=False, server_default=sa.true()
            )
        )
    manufacturers = sa.table(
        "manufacturers",
        sa.column("name", sa.String()),
        sa.column("coa_identifiers", sa.JSON()),
        sa.column("coa_attributes", sa.JSON()),
        sa.column("coa_deactivate", sa.JSON()),
    )
    for name, (identifiers, attributes, deactivate) in _SEEDED.items():
        op.execute(
            manufacturers.update()
            .where(manufacturers.c.name == name)
            .values(
                coa_identifiers=identifiers,
                coa_attributes=attributes,
                coa_deactivate=deactivate,
            )
        )
    with op.batch_alter_table("manufacturers", schema=None) as batch_op:
        # The defaults only filled existing rows; the model sets them on every insert.
        for column in ("coa_identifiers", "coa_attributes", "coa_deactivate"):
            batch_op.alter_column(column, server_default=None)
        batch_op.alter_column("coa_disconnect_fallback", server_default=None)

    with op.batch_alter_table("nas", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coa_address", sa.String(length=64), nullable=True))

    op.create_table(
        "coa_log",
        sa.Column("id", _ID, nullable=False),
        sa.Column("session_id", _ID, nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("nas_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("requested_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_cause", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_coa_log_contract_id_contracts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["nas_id"], ["nas.id"], name=op.f("fk_coa_log_nas_id_nas"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_coa_log_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coa_log")),
    )
    with op.batch_alter_table("coa_log", schema=None) as batch_op:
        batch_op.create_index("ix_coa_log_session", ["session_id", "id"])
        batch_op.create_index(batch_op.f("ix_coa_log_contract_id"), ["contract_id"])

    op.create_table(
        "jobs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", _WHEN, nullable=True),
        sa.Column("locked_by", sa.String(length=255), nullable=True),
        sa.Column("locked_until", _WHEN, nullable=True),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("last_started_at", _WHEN, nullable=True),
        sa.Column("last_finished_at", _WHEN, nullable=True),
        sa.Column("last_node", sa.String(length=255), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jobs")),
    )


def downgrade() -> None:
    op.drop_table("jobs")
    with op.batch_alter_table("coa_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coa_log_contract_id"))
        batch_op.drop_index("ix_coa_log_session")
    op.drop_table("coa_log")
    with op.batch_alter_table("nas", schema=None) as batch_op:
        batch_op.drop_column("coa_address")
    with op.batch_alter_table("manufacturers", schema=None) as batch_op:
        batch_op.drop_column("coa_disconnect_fallback")
        batch_op.drop_column("coa_deactivate")
        batch_op.drop_column("coa_attributes")
        batch_op.drop_column("coa_identifiers")
