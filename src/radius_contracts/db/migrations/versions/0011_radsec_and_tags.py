"""tagged layout rows (RFC 2868): a layout row may carry the tag its attribute is sent with

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: SQLite adds them with ALTER TABLE, no table rebuild.
    op.add_column("layout_attributes", sa.Column("tag", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("layout_attributes", schema=None) as batch_op:
        batch_op.drop_column("tag")
