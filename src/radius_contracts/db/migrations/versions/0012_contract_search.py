"""contract search: FTS5 trigram table on SQLite, pg_trgm GIN indexes on PostgreSQL

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:05:00

A later migration that rebuilds the contracts table on SQLite (batch mode: copy, drop,
rename) drops the triggers with it: it must call search.drop_sqlite before and
search.create_sqlite after (the rebuild also re-indexes).
"""

from collections.abc import Sequence

from alembic import op

from radius_contracts.db import search

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        search.create_sqlite(connection)
    elif connection.dialect.name == "postgresql":
        search.create_postgresql(connection)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        search.drop_sqlite(connection)
    elif connection.dialect.name == "postgresql":
        search.drop_postgresql(connection)
