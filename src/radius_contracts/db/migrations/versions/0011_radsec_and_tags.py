"""tagged layout rows (RFC 2868) and RadSec (RFC 6614) per NAS: a layout row may carry the
tag its attribute is sent with; a NAS may set its own secret over TLS and pin its certificate

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: SQLite adds them with ALTER TABLE, no table rebuild.
    op.add_column("layout_attributes", sa.Column("tag", sa.SmallInteger(), nullable=True))
    op.add_column("nas", sa.Column("radsec_secret", sa.String(length=255), nullable=True))
    op.add_column("nas", sa.Column("radsec_pin", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nas", schema=None) as batch_op:
        batch_op.drop_column("radsec_pin")
        batch_op.drop_column("radsec_secret")
    with op.batch_alter_table("layout_attributes", schema=None) as batch_op:
        batch_op.drop_column("tag")
