"""The provider's response id kept with each span and call, so a shared database links calls.

Two calls in two traces that name one provider response are one call (collector/calls/crosstrace.py).
A collector used to remember the responses it stored in memory only, and read spans back
without their response id: on a PostgreSQL several collectors share, a trace's second
span at another collector, or a re-read trace, lost the link (issue 23). `response_id` on
`llm_spans` and `calls` (both dialects, appended last as DuckDB appends), and on
PostgreSQL a partial index on `calls.response_id`, where a collector looks up, under an
advisory lock per response, whether another collector stored a call of that response.
Rows stored before keep a null: their responses are not linked across collectors.

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


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("response_id", sa.String))
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_calls_response_id",
            "calls",
            ["response_id"],
            postgresql_where=sa.text("response_id IS NOT NULL"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_calls_response_id", table_name="calls")
    for table in TABLES:
        op.drop_column(table, "response_id")
