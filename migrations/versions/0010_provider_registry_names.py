"""Providers take the OpenTelemetry GenAI registry's names: rows stored under the old ones renamed.

`provider` held breakeven's own names for five providers; it now holds the registry's
well-known gen_ai.provider.name values, so stored rows are renamed in every table that
keeps a provider: google -> gcp.gemini (the Gemini API and Vertex AI were one name then),
azure -> azure.ai.openai, aws_bedrock -> aws.bedrock, mistral -> mistral_ai, xai -> x_ai.
No stored row can hold a new name already (the old code mapped each to an old one), so the
renames never collide, on rollup keys either. The map is written out here rather than read
from the code: a migration says what it did on the day it was written.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

RENAMED = {
    "google": "gcp.gemini",
    "azure": "azure.ai.openai",
    "aws_bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}
TABLES = ("calls", "llm_spans", "call_rollups", "call_rollups_daily")


def _rename(names: dict[str, str]) -> None:
    for table in TABLES:
        for old, new in names.items():
            op.execute(f"UPDATE {table} SET provider = '{new}' WHERE provider = '{old}'")


def upgrade() -> None:
    _rename(RENAMED)


def downgrade() -> None:
    # Only the renamed rows go back: gcp.vertex_ai and the other names new in this version
    # stay as they are (the old code showed an unknown name as it was).
    _rename({new: old for old, new in RENAMED.items()})
