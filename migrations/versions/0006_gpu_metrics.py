"""GPU metrics: per-minute buckets of the utilization a pool's boxes report, and scrape health.

gpu_metric_minutes holds one row per (UTC minute, pool, source, metric, host): samples,
their sum and maximum (ratios 0-1, NUMERIC like money, so sums are exact and the dialects
agree), the distinct GPUs the host reported, the last sample's time. gpu_scrape_targets
holds each scrape endpoint's last attempt, success and error (collector/gpu/store.py).
Keys on PostgreSQL only, as for the ledger (migration 0002): there they make the writers'
upserts atomic between collectors; on DuckDB one process writes, under one lock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
RATIO = sa.Numeric(20, 10)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "gpu_metric_minutes",
        sa.Column("minute", TS, nullable=False),
        sa.Column("pool", sa.String, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("metric", sa.String, nullable=False),
        sa.Column("host", sa.String, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sa.Column("value_sum", RATIO, nullable=False),
        sa.Column("value_max", RATIO, nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("last_sample_at", TS, nullable=False),
        *([sa.PrimaryKeyConstraint("minute", "pool", "source", "metric", "host")] if postgresql else []),
    )
    op.create_table(
        "gpu_scrape_targets",
        sa.Column("url", sa.String, nullable=False),
        sa.Column("pool", sa.String, nullable=False),
        sa.Column("last_attempt_at", TS, nullable=False),
        sa.Column("last_success_at", TS),
        sa.Column("last_error_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("failures", sa.BigInteger, nullable=False),
        sa.Column("last_samples", sa.Integer, nullable=False),
        *([sa.PrimaryKeyConstraint("url")] if postgresql else []),
    )


def downgrade() -> None:
    op.drop_table("gpu_scrape_targets")
    op.drop_table("gpu_metric_minutes")
