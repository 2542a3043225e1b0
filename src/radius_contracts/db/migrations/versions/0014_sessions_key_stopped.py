"""sessions: index on (nas_id, acct_unique_id, stopped_at), so accounting loads a key's open
and recently closed sessions without reading its whole history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 00:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sessions_key_stopped",
        "sessions",
        ["nas_id", "acct_unique_id", "stopped_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_key_stopped", table_name="sessions")
