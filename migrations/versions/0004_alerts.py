"""Alerts: each alert instance's state, and the history of its transitions.

Keys and indexes on PostgreSQL only, as for the ledger (migration 0002): DuckDB prunes by
zone maps, and one process writes these tables there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "alert_states",
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("rule", sa.String, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("active_since", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("fired_at", TS),
        sa.Column("resolved_at", TS),
        sa.Column("last_notified_at", TS),
        *([sa.PrimaryKeyConstraint("fingerprint")] if postgresql else []),
    )
    op.create_table(
        "alert_history",
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("rule", sa.String, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    if postgresql:
        op.create_index("ix_alert_history_occurred_at", "alert_history", ["occurred_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_alert_history_occurred_at", table_name="alert_history")
    op.drop_table("alert_history")
    op.drop_table("alert_states")
