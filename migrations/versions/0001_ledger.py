"""The ledger: calls, LLM spans, ingest counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _shared() -> list[sa.Column[Any]]:
    return [
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("end_time", TS, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("service", sa.String),
        sa.Column("environment", sa.String),
        sa.Column("team", sa.String),
        sa.Column("feature", sa.String),
        sa.Column("operation", sa.String),
        sa.Column("provider", sa.String),
        sa.Column("backend", sa.String),
        sa.Column("backend_class", sa.String(16), nullable=False),
        sa.Column("server_address", sa.String),
        sa.Column("request_model", sa.String),
        sa.Column("response_model", sa.String),
        sa.Column("quantization", sa.String),
        sa.Column("prompt_hash", sa.String),
        sa.Column("streaming", sa.Boolean),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error_type", sa.String),
        sa.Column("emitter", sa.String, nullable=False),
        sa.Column("conventions", sa.String, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    ]


def _tokens(nullable: bool) -> list[sa.Column[Any]]:
    names = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
    return [sa.Column(name, sa.BigInteger, nullable=nullable) for name in names]


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        *_shared(),
        *_tokens(nullable=False),
        sa.Column("usage_reported", sa.Boolean, nullable=False),
        sa.Column("span_count", sa.Integer, nullable=False),
        sa.Column("member_span_ids", sa.String, nullable=False),
    )
    op.create_index("ix_calls_start_time", "calls", ["start_time"])
    op.create_table(
        "llm_spans",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("is_engine", sa.Boolean, nullable=False),
        *_shared(),
        *_tokens(nullable=True),
        sa.Column("attributes", sa.Text, nullable=False),
    )
    op.create_index("ix_llm_spans_start_time", "llm_spans", ["start_time"])
    op.create_table(
        "ingest_counters",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("reason", sa.String, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_counters")
    op.drop_index("ix_llm_spans_start_time", table_name="llm_spans")
    op.drop_table("llm_spans")
    op.drop_index("ix_calls_start_time", table_name="calls")
    op.drop_table("calls")
