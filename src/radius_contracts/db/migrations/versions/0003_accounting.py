"""accounting: open-session key, NAS interim interval and reboots, daily usage, lease state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import radius_contracts.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("stopped_at IS NULL")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("nas", schema=None) as batch_op:
        batch_op.add_column(sa.Column("interim_interval", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "accounting_on_at",
                radius_contracts.db.types.DateTimeUTC(timezone=True),
                nullable=True,
            )
        )

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column("id", existing_type=sa.Integer(), type_=_ID)
        batch_op.drop_constraint("uq_sessions_nas_id_acct_unique_id", type_="unique")
        batch_op.add_column(sa.Column("framed_ipv6_address", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("nas_ip_address", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("nas_identifier", sa.String(length=253), nullable=True))
        batch_op.create_index(
            "uq_sessions_open_key",
            ["nas_id", "acct_unique_id"],
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )
        batch_op.create_index("ix_sessions_key", ["nas_id", "acct_unique_id", "started_at"])
        batch_op.create_index("ix_sessions_started", ["started_at"])
        batch_op.create_index(batch_op.f("ix_sessions_framed_ip"), ["framed_ip"])
        # Covered by ix_sessions_key / never usable for case-insensitive lookups.
        batch_op.drop_index(batch_op.f("ix_sessions_nas_id"))
        batch_op.drop_index(batch_op.f("ix_sessions_username"))

    op.create_table(
        "usage_daily",
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("input_octets", sa.BigInteger(), nullable=False),
        sa.Column("output_octets", sa.BigInteger(), nullable=False),
        sa.Column("session_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_usage_daily_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contract_id", "day", name=op.f("pk_usage_daily")),
    )

    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.alter_column("session_id", existing_type=sa.Integer(), type_=_ID)
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="offered")
        )
        batch_op.add_column(
            sa.Column(
                "leased_at", radius_contracts.db.types.DateTimeUTC(timezone=True), nullable=True
            )
        )
        batch_op.create_index("ix_leases_pool_expiry", ["pool_id", "expires_at"])
    with op.batch_alter_table("leases", schema=None) as batch_op:
        # The default only filled existing rows; the model sets the state on every insert.
        batch_op.alter_column("state", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_index("ix_leases_pool_expiry")
        batch_op.drop_column("leased_at")
        batch_op.drop_column("state")
        batch_op.alter_column("session_id", existing_type=_ID, type_=sa.Integer())

    op.drop_table("usage_daily")

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_username"), ["username"])
        batch_op.create_index(batch_op.f("ix_sessions_nas_id"), ["nas_id"])
        batch_op.drop_index(batch_op.f("ix_sessions_framed_ip"))
        batch_op.drop_index("ix_sessions_started")
        batch_op.drop_index("ix_sessions_key")
        batch_op.drop_index("uq_sessions_open_key")
        batch_op.drop_column("nas_identifier")
        batch_op.drop_column("nas_ip_address")
        batch_op.drop_column("framed_ipv6_address")
        batch_op.create_unique_constraint(
            "uq_sessions_nas_id_acct_unique_id", ["nas_id", "acct_unique_id"]
        )
        batch_op.alter_column("id", existing_type=_ID, type_=sa.Integer())

    with op.batch_alter_table("nas", schema=None) as batch_op:
        batch_op.drop_column("accounting_on_at")
        batch_op.drop_column("interim_interval")
