"""A bill line's resource and tags, and each source's last fetch (issue 24).

- `billed_lines.resource_id` and `billed_lines.tags`: a FOCUS line's ResourceId and its Tags
  (a JSON object, keys sorted), so a self-hosted pool's `invoice_match` can find the
  instance lines the cloud billed for its boxes, whatever SubAccountId the line also names.
  Appended last, as DuckDB appends; lines stored before keep nulls (import them again to
  match them to pools).
- `reconcile_fetches`: per source, when `serve` or `breakeven reconcile fetch` last tried to
  read its reports, when it last succeeded and, when the last try failed, why (the error's
  words, never a key). One row per source (a primary key on PostgreSQL; replaced in a
  transaction on DuckDB, which keeps no keys here).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column("billed_lines", sa.Column("resource_id", sa.String))
    op.add_column("billed_lines", sa.Column("tags", sa.String))
    op.create_table(
        "reconcile_fetches",
        sa.Column("source", sa.String, nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.String),
        *([sa.PrimaryKeyConstraint("source")] if postgresql else []),
    )


def downgrade() -> None:
    op.drop_table("reconcile_fetches")
    op.drop_column("billed_lines", "tags")
    op.drop_column("billed_lines", "resource_id")
