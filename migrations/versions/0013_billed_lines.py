"""billed_lines: what the providers and clouds say they billed, for reconciliation (issue 24).

One row per line of a source's usage or cost report, or of a FOCUS export, read into the
shape of collector/records.py's BilledLine: a UTC day, provider, model, account, tier, line
item, tokens by kind with the ledger's meaning, requests, billed and list cost (NUMERIC, as
all money) in the bill's currency. A fetch or import replaces a source's rows of the days
it covers (providers restate recent days) of that report (usage, cost or focus), so the
table is keyed by nothing but indexed, on PostgreSQL, by (source, day).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Wider than the ledger's NUMERIC(20, 10): cloud bills carry up to 15 decimals (FOCUS samples
# have 11), and a bill's total may pass ten digits.
BILL_MONEY = sa.Numeric(38, 18)


def upgrade() -> None:
    op.create_table(
        "billed_lines",
        sa.Column("source", sa.String, nullable=False),
        sa.Column("report", sa.String(8), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("model", sa.String),
        sa.Column("account", sa.String),
        sa.Column("tier", sa.String),
        sa.Column("line_item", sa.String),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "requests")
        ),
        sa.Column("cost", BILL_MONEY),
        sa.Column("list_cost", BILL_MONEY),
        sa.Column("currency", sa.String(3)),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_billed_lines_source_day", "billed_lines", ["source", "day"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_billed_lines_source_day", table_name="billed_lines")
    op.drop_table("billed_lines")
