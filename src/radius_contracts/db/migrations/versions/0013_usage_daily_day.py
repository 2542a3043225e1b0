"""usage_daily: index on day, for the history purge's bounded batches

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_usage_daily_day", "usage_daily", ["day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_usage_daily_day", table_name="usage_daily")
