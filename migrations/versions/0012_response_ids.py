"""What links calls across traces kept in the ledger, so collectors sharing it link them.

Two calls in two traces are one call when they name one provider response, or when they
are the two halves of one call that no response id links (collector/calls/crosstrace.py,
halves.py). A collector remembered what those rules need in memory only: the responses it
stored, the sending process of each span (read back as unknown), and the providers whose
clients trace themselves; on a PostgreSQL several collectors share, a call's other trace at
another collector, or a re-read trace, was not linked (issue 23). Now:
- `response_id` and `process` (the sending process, LlmSpan.process) on `llm_spans` and
  `calls`, both dialects, appended last as DuckDB appends;
- on PostgreSQL a partial index on `calls.response_id`, where a collector looks up, under
  an advisory lock of the response, whether another stored a call of it; and one on
  `calls (provider, request_model, process, start_time)`, where it looks for the stored
  other half of a call (without it, the calls of every process in the last hour were read);
- `cross_trace_providers`: the providers a framework or self-tracing client was seen
  serving without a response id (HalfMemory.watched), shared by the collectors;
- `prompt_hash_hints`: prompt hashes from log records whose span is not stored yet
  (parked in a collector's memory before), so the collector that stores the span uses them.
Rows stored before keep nulls: they are not linked across collectors.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("llm_spans", "calls")
COLUMNS = ("response_id", "process")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        for column in COLUMNS:
            op.add_column(table, sa.Column(column, sa.String))
    if postgresql:
        op.create_index(
            "ix_calls_response_id", "calls", ["response_id"], postgresql_where=sa.text("response_id IS NOT NULL")
        )
        op.create_index(
            "ix_calls_origin",
            "calls",
            ["provider", "request_model", sa.text("coalesce(process, '')"), "start_time"],
        )
    op.create_table(
        "cross_trace_providers",
        sa.Column("provider", sa.String, nullable=False),
        *([sa.PrimaryKeyConstraint("provider")] if postgresql else []),
    )
    op.create_table(
        "prompt_hash_hints",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("prompt_hash", sa.String, nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        *([sa.PrimaryKeyConstraint("trace_id", "span_id")] if postgresql else []),
    )


def downgrade() -> None:
    op.drop_table("prompt_hash_hints")
    op.drop_table("cross_trace_providers")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_calls_origin", table_name="calls")
        op.drop_index("ix_calls_response_id", table_name="calls")
    for table in TABLES:
        for column in COLUMNS:
            op.drop_column(table, column)
