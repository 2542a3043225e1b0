"""login claims: simultaneous use decided once for every node and worker process

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import radius_contracts.db.types

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = radius_contracts.db.types.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_claims",
        sa.Column("id", _ID, nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("nas_id", sa.Integer(), nullable=True),
        sa.Column("station", sa.String(length=253), nullable=True),
        sa.Column("nas_port", sa.BigInteger(), nullable=True),
        sa.Column("nas_port_id", sa.String(length=253), nullable=True),
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("claimed_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
            name=op.f("fk_login_claims_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["nas_id"], ["nas.id"], name=op.f("fk_login_claims_nas_id_nas"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_claims")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("login_claims", schema=None) as batch_op:
        batch_op.create_index("ix_login_claims_contract", ["contract_id", "expires_at"])
        batch_op.create_index("ix_login_claims_expires", ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("login_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_login_claims_expires")
        batch_op.drop_index("ix_login_claims_contract")
    op.drop_table("login_claims")
