"""What each call costs: per-token price (or its self-hosted pool), source and entry; reprice audit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 10)
COST_COLUMNS = (
    ("pool", sa.String),
    ("price_status", sa.String(16)),
    ("cost_usd", MONEY),
    ("list_cost_usd", MONEY),
    ("price_source", sa.String),
    ("price_entry", sa.String),
    ("unpriced_reason", sa.String),
)


def upgrade() -> None:
    for name, kind in COST_COLUMNS:
        default = sa.text("'unpriced'") if name == "price_status" else None
        op.add_column("calls", sa.Column(name, kind, server_default=default))
    op.create_table(
        "reprice_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("price_version", sa.String, nullable=False),
        sa.Column("calls_repriced", sa.BigInteger, nullable=False),
        sa.Column("total_before_usd", MONEY, nullable=False),
        sa.Column("total_after_usd", MONEY, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reprice_runs")
    for name, _ in reversed(COST_COLUMNS):
        op.drop_column("calls", name)
