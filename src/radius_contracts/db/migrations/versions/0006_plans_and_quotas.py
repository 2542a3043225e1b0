"""plans and quotas: service plans with quota rules and time windows, contracts' plan and
billing day, quota usage per contract and period

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import radius_contracts.db.types
from radius_contracts.db.migrate import ids_kept

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = radius_contracts.db.types.DateTimeUTC(timezone=True)
# Batch mode rebuilds a SQLite table from what it reflects, which leaves AUTOINCREMENT out.
_KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def _audited() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_via", sa.String(length=100), nullable=True),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.Column("updated_via", sa.String(length=100), nullable=True),
    ]


def upgrade() -> None:
    speeds = ("min_upload", "max_upload", "min_download", "max_download")
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        *(sa.Column(name, sa.String(length=32), nullable=True) for name in speeds),
        sa.Column("session_timeout", sa.Integer(), nullable=True),
        sa.Column("idle_timeout", sa.Integer(), nullable=True),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("quota_period", sa.String(length=16), nullable=True),
        sa.Column("quota_counts", sa.String(length=16), nullable=True),
        sa.Column("quota_action", sa.String(length=16), nullable=True),
        *(sa.Column(f"fup_{name}", sa.String(length=32), nullable=True) for name in speeds),
        sa.Column("windows", sa.JSON(), nullable=False),
        sa.Column("window_applied", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_audited(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "plan_external_refs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_external_refs_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_external_refs")),
        sa.UniqueConstraint(
            "app", "external_id", name=op.f("uq_plan_external_refs_app_external_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("plan_external_refs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_external_refs_plan_id"), ["plan_id"])

    with (
        ids_kept(op.get_bind(), "contracts"),
        op.batch_alter_table("contracts", table_kwargs=_KEEP_AUTOINCREMENT) as batch_op,
    ):
        batch_op.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("billing_day", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_contracts_plan_id_plans"),
            "plans",
            ["plan_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_index(batch_op.f("ix_contracts_plan_id"), ["plan_id"])
        batch_op.create_check_constraint("billing_day", sa.text("billing_day BETWEEN 1 AND 31"))

    op.create_table(
        "quota_usage",
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("extra_bytes", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("state", sa.String(length=8), server_default=sa.text("'normal'"), nullable=False),
        sa.Column("changed_at", _WHEN, nullable=True),
        sa.Column("restored_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_quota_usage_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contract_id", "period_start", name=op.f("pk_quota_usage")),
    )
    with op.batch_alter_table("quota_usage", schema=None) as batch_op:
        batch_op.create_index("ix_quota_usage_state", ["state", "period_end"])


def downgrade() -> None:
    with op.batch_alter_table("quota_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_quota_usage_state")
    op.drop_table("quota_usage")
    with (
        ids_kept(op.get_bind(), "contracts"),
        op.batch_alter_table("contracts", table_kwargs=_KEEP_AUTOINCREMENT) as batch_op,
    ):
        batch_op.drop_constraint("billing_day", type_="check")
        batch_op.drop_index(batch_op.f("ix_contracts_plan_id"))
        batch_op.drop_constraint(batch_op.f("fk_contracts_plan_id_plans"), type_="foreignkey")
        batch_op.drop_column("billing_day")
        batch_op.drop_column("plan_id")
    with op.batch_alter_table("plan_external_refs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_external_refs_plan_id"))
    op.drop_table("plan_external_refs")
    op.drop_table("plans")
