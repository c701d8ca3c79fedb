"""Prompt rollups: calls per UTC hour and prompt hash, for the repeated-prompts page.

prompt_rollups and prompt_rollups_unpaired hold, per hour, prompt hash, service, model,
price status and pool, the calls, token sums, cost sum and first and last start; the
second the rows of one call whose prompt key has no other row within 7 days either side
(the page leaves them out). collector/store/rollup.py keeps them from the dirty hours,
with call_rollups, and says why. They start empty and every hour that already has calls
is marked dirty here, so the first roller pass fills them and the page stays exact
meanwhile (dirty hours are read from calls). Indexes on PostgreSQL only (migration 0002):
the hour, for the roller's deletes and the page; the key, for pairing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 10)
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
TABLES = ("prompt_rollups", "prompt_rollups_unpaired")


def upgrade() -> None:
    for name in TABLES:
        op.create_table(
            name,
            sa.Column("hour", TS, nullable=False),
            sa.Column("prompt_key", sa.BigInteger, nullable=False),
            sa.Column("prompt_hash", sa.String, nullable=False),
            sa.Column("service", sa.String),
            sa.Column("model", sa.String),
            sa.Column("price_status", sa.String(16)),
            sa.Column("pool", sa.String),
            sa.Column("calls", sa.BigInteger, nullable=False),
            *(sa.Column(kind, sa.BigInteger, nullable=False) for kind in TOKENS),
            sa.Column("cost_usd", MONEY),
            sa.Column("first_start", TS, nullable=False),
            sa.Column("last_start", TS, nullable=False),
        )
        if op.get_bind().dialect.name == "postgresql":
            op.create_index(f"ix_{name}_hour", name, ["hour"])
            op.create_index(f"ix_{name}_prompt_key", name, ["prompt_key", "hour"])
    # Every hour that has calls and no mark yet is to be rolled up again (epoch arithmetic:
    # UTC whatever the session time zone); call_rollups is recomputed with it, to the same rows.
    op.execute(
        "INSERT INTO rollup_dirty (hour) SELECT to_timestamp(floor(date_part('epoch', start_time) / 3600) * 3600)"
        " FROM calls EXCEPT SELECT hour FROM rollup_dirty"
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        if op.get_bind().dialect.name == "postgresql":
            op.drop_index(f"ix_{name}_prompt_key", table_name=name)
            op.drop_index(f"ix_{name}_hour", table_name=name)
        op.drop_table(name)
