"""Hourly and daily rollups of calls, the hours waiting to be rolled up, the retention horizon.

call_rollups holds calls, token sums and cost sums per UTC hour and dimension values,
call_rollups_daily the same per UTC day (summed from the hours);
rollup_dirty the hours whose calls changed since (one appended row per change);
retention_horizon how far raw calls were deleted (collector/store/rollup.py says more).
The rollups start empty and every hour that already has calls is marked dirty here, so
the first roller pass fills them and reads stay exact meanwhile (dirty hours are read
from calls).

PostgreSQL calls are not partitioned by month. A partitioned table's primary key must hold
start_time. That alone would keep the dedupe ON CONFLICT gives collectors sharing the
database, as a call's start_time is its own span's start (so fixed by its key), but every
lookup by key alone (the writer's delete of a re-merged call, a trace's spans) would probe
every partition; partitions would have to be created ahead of the data by something; and
the migration tests pin the key (trace_id, span_id). What partitions buy at 100M calls is
cheap retention (DROP a month) and narrow scans, and the rollups already take the scans: a
month's reports read call_rollups and the few dirty hours of calls through the start_time
B-tree index, which stays, as does retention's hour-by-hour delete. No BRIN is added
beside it: it would only duplicate that index. docs/operations.md has the path past this.
Keys and indexes on PostgreSQL only, as for the ledger (migration 0002).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 10)
DIMENSIONS = ("provider", "request_model", "response_model", "quantization", "service", "team", "feature", "pool")
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


def _rollups(name: str, grain: str) -> None:
    op.create_table(
        name,
        sa.Column(grain, TS, nullable=False),
        sa.Column("backend_class", sa.String(16), nullable=False),
        *(sa.Column(dimension, sa.String) for dimension in DIMENSIONS),
        sa.Column("price_status", sa.String(16)),
        sa.Column("unpriced_reason", sa.String),
        sa.Column("calls", sa.BigInteger, nullable=False),
        *(sa.Column(kind, sa.BigInteger, nullable=False) for kind in TOKENS),
        sa.Column("cost_usd", MONEY),
        sa.Column("list_cost_usd", MONEY),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(f"ix_{name}_{grain}", name, [grain])


def upgrade() -> None:
    _rollups("call_rollups", "hour")
    _rollups("call_rollups_daily", "day")
    op.create_table("rollup_dirty", sa.Column("hour", TS, nullable=False))
    op.create_table("retention_horizon", sa.Column("purged_before", TS, nullable=False))
    # Every hour that has calls is to be rolled up (epoch arithmetic: UTC whatever the
    # session time zone).
    op.execute(
        "INSERT INTO rollup_dirty (hour) SELECT DISTINCT"
        " to_timestamp(floor(date_part('epoch', start_time) / 3600) * 3600) FROM calls"
    )


def downgrade() -> None:
    op.drop_table("retention_horizon")
    op.drop_table("rollup_dirty")
    for name, grain in (("call_rollups_daily", "day"), ("call_rollups", "hour")):
        if op.get_bind().dialect.name == "postgresql":
            op.drop_index(f"ix_{name}_{grain}", table_name=name)
        op.drop_table(name)
