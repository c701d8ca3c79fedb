"""SQLAlchemy Core tables; the migrations in migrations must produce exactly these."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa

_DDLItem = TypeVar("_DDLItem", sa.Index, sa.PrimaryKeyConstraint)

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 10)  # USD, fixed point: never float
BILL_MONEY = sa.Numeric(38, 18)  # a bill's amounts: clouds bill with up to 15 decimals (migration 0013)


def _who_what_columns() -> list[sa.Column[object]]:
    """Columns a call and an LLM span share: identity aside, the canonical record."""
    return [
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("end_time", TS, nullable=False),
        sa.Column("ttft_ms", sa.Double),  # a double on both dialects (migration 0011)
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


def _token_columns(nullable: bool) -> list[sa.Column[object]]:
    return [
        sa.Column(name, sa.BigInteger, nullable=nullable)
        for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
    ]


# Keys and indexes exist on PostgreSQL only: DuckDB prunes by zone maps, and its ART
# indexes made every insert slower as the table grew (migration 0002 says more).
def _postgresql_only(item: _DDLItem) -> _DDLItem:
    return item.ddl_if(dialect="postgresql")


# One row per LLM call: the merge of the spans that describe it (see collector/calls/merge.py).
calls = sa.Table(
    "calls",
    metadata,
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("span_id", sa.String(16), nullable=False),
    *_who_what_columns(),
    *_token_columns(nullable=False),
    sa.Column("usage_reported", sa.Boolean, nullable=False),
    sa.Column("span_count", sa.Integer, nullable=False),
    sa.Column("member_span_ids", sa.String, nullable=False),
    # What it cost (migration 0003; see collector/price/ledger.py). price_status is
    # "priced" (cost_usd set), "pool" (a self-hosted pool's call: its share of the pool's
    # cost is worked out when read, as the pool's period may still be open) or "unpriced".
    sa.Column("pool", sa.String),
    sa.Column("price_status", sa.String(16), server_default=sa.text("'unpriced'")),
    sa.Column("cost_usd", MONEY),  # after discount
    sa.Column("list_cost_usd", MONEY),
    sa.Column("price_source", sa.String),  # "genai-prices 0.2.3", "price book <path>", "pool <name>"
    sa.Column("price_entry", sa.String),
    sa.Column("unpriced_reason", sa.String),
    # What links calls across traces and collectors (migration 0012, collector/calls/crosstrace.py):
    # the provider's id of the response, and the process that sent the call's own span.
    sa.Column("response_id", sa.String),
    sa.Column("process", sa.String),
    _postgresql_only(sa.PrimaryKeyConstraint("trace_id", "span_id")),
)
_postgresql_only(sa.Index("ix_calls_start_time", calls.c.start_time))
_postgresql_only(
    sa.Index("ix_calls_response_id", calls.c.response_id, postgresql_where=calls.c.response_id.isnot(None))
)
_postgresql_only(
    sa.Index(
        "ix_calls_origin",
        calls.c.provider,
        calls.c.request_model,
        sa.func.coalesce(calls.c.process, sa.literal_column("''")),
        calls.c.start_time,
    )
)

# One row per LLM span as received (normalized, content removed), for audit and re-merge.
llm_spans = sa.Table(
    "llm_spans",
    metadata,
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("span_id", sa.String(16), nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("kind", sa.Integer, nullable=False),
    sa.Column("is_engine", sa.Boolean, nullable=False),
    *_who_what_columns(),
    *_token_columns(nullable=True),
    # JSON, content removed; zstd-compressed on DuckDB (migration 0008, which says why)
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("response_id", sa.String),  # migration 0012, as on calls
    sa.Column("process", sa.String),
    _postgresql_only(sa.PrimaryKeyConstraint("trace_id", "span_id")),
)
_postgresql_only(sa.Index("ix_llm_spans_start_time", llm_spans.c.start_time))

# The providers a framework or self-tracing client was seen serving without a response id
# (collector/calls/halves.py, HalfMemory.watched), shared by collectors on one PostgreSQL (0012).
cross_trace_providers = sa.Table(
    "cross_trace_providers",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    _postgresql_only(sa.PrimaryKeyConstraint("provider")),
)

# Prompt hashes from log records whose span is not stored yet, on a PostgreSQL collectors
# share (0012): the collector that stores the span takes its hash from here
# (collector/calls/pipeline.py); a day after parking, one whose span never came is dropped.
prompt_hash_hints = sa.Table(
    "prompt_hash_hints",
    metadata,
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("span_id", sa.String(16), nullable=False),
    sa.Column("prompt_hash", sa.String, nullable=False),
    sa.Column("parked_at", TS, nullable=False),
    _postgresql_only(sa.PrimaryKeyConstraint("trace_id", "span_id")),
)

# What providers and clouds say they billed (migration 0013, collector/store/bills.py): the
# lines of their usage and cost reports and FOCUS exports, as collector/records.py's BilledLine.
billed_lines = sa.Table(
    "billed_lines",
    metadata,
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
    sa.Column("imported_at", TS, nullable=False),
    # A FOCUS line's ResourceId and Tags (JSON, keys sorted): what a pool's invoice_match reads (0014).
    sa.Column("resource_id", sa.String),
    sa.Column("tags", sa.String),
)
_postgresql_only(sa.Index("ix_billed_lines_source_day", billed_lines.c.source, billed_lines.c.day))

# Each reconcile source's last fetch: tried, last succeeded, and why the last try failed (0014).
reconcile_fetches = sa.Table(
    "reconcile_fetches",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("attempted_at", TS, nullable=False),
    sa.Column("succeeded_at", TS),
    sa.Column("error", sa.String),
    _postgresql_only(sa.PrimaryKeyConstraint("source")),
)

# Cumulative ingest counters (spans received, stored, dropped, rejected by reason ...).
# One row per (name, reason) on PostgreSQL; appended on DuckDB, where readers sum them
# (migration 0009, collector/store/counters.py).
ingest_counters = sa.Table(
    "ingest_counters",
    metadata,
    sa.Column("name", sa.String, nullable=False),
    sa.Column("reason", sa.String, nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    _postgresql_only(sa.PrimaryKeyConstraint("name", "reason")),
)

# One row per `breakeven reprice` run: who, when, which prices, totals before and after.
reprice_runs = sa.Table(
    "reprice_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS),
    sa.Column("since", TS, nullable=False),
    sa.Column("until", TS, nullable=False),
    sa.Column("price_version", sa.String, nullable=False),
    sa.Column("calls_repriced", sa.BigInteger, nullable=False),
    sa.Column("total_before_usd", MONEY, nullable=False),
    sa.Column("total_after_usd", MONEY, nullable=False),
)

# Alerts (collector/alerts): each alert instance's current state, one row per fingerprint
# (the rule and its instance labels), so a restart neither re-pages nor forgets; and every
# transition (pending, firing, resolved, cleared) for the history. Migration 0004.
alert_states = sa.Table(
    "alert_states",
    metadata,
    sa.Column("fingerprint", sa.String, nullable=False),
    sa.Column("rule", sa.String, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("labels", sa.Text, nullable=False),  # JSON object
    sa.Column("annotations", sa.Text, nullable=False),  # JSON object
    sa.Column("active_since", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("fired_at", TS),
    sa.Column("resolved_at", TS),
    sa.Column("last_notified_at", TS),
    _postgresql_only(sa.PrimaryKeyConstraint("fingerprint")),
)

alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column("occurred_at", TS, nullable=False),
    sa.Column("fingerprint", sa.String, nullable=False),
    sa.Column("rule", sa.String, nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("labels", sa.Text, nullable=False),  # JSON object
    sa.Column("summary", sa.Text, nullable=False),
)
_postgresql_only(sa.Index("ix_alert_history_occurred_at", alert_history.c.occurred_at))

# Rollups (collector/store/rollup.py, migration 0005): calls per UTC hour, and per UTC day,
# per value of every dimension spend groups or filters by, so a month's report reads a few
# thousand rows, not millions. An hour marked in rollup_dirty (by the writer or reprice, in
# the transaction that changed its calls) is read from calls until the roller recomputes
# it, and its day from the hours. Several rows may share one key: an hour past retention
# gets late calls added, not redone.
_ROLLUP_DIMENSIONS = ("provider", "request_model", "response_model", "quantization", "service", "team", "feature")


def _rollup_columns(grain: str) -> list[sa.Column[Any]]:
    return [
        sa.Column(grain, TS, nullable=False),  # UTC, its first instant
        sa.Column("backend_class", sa.String(16), nullable=False),
        *(sa.Column(name, sa.String) for name in (*_ROLLUP_DIMENSIONS, "pool")),
        sa.Column("price_status", sa.String(16)),
        sa.Column("unpriced_reason", sa.String),
        sa.Column("calls", sa.BigInteger, nullable=False),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
        ),
        sa.Column("cost_usd", MONEY),  # sum over the group's calls; null when none had one
        sa.Column("list_cost_usd", MONEY),
    ]


call_rollups = sa.Table("call_rollups", metadata, *_rollup_columns("hour"))
_postgresql_only(sa.Index("ix_call_rollups_hour", call_rollups.c.hour))
call_rollups_daily = sa.Table("call_rollups_daily", metadata, *_rollup_columns("day"))
_postgresql_only(sa.Index("ix_call_rollups_daily_day", call_rollups_daily.c.day))


# Prompt rollups (collector/store/rollup.py, migration 0007): calls per UTC hour and prompt
# hash (and service, model, price status, pool), for the repeated-prompts page, kept exact
# from the same dirty hours as call_rollups. Most prompt hashes are distinct, so there is
# about a row per call, split in two tables: prompt_rollups_unpaired holds the rows of one
# call whose prompt key has no other row within rollup.PAIR_WINDOW either side (they repeat
# in no window that short, and the page leaves them out), prompt_rollups the others,
# usually a small part. prompt_key is 60 bits of md5(prompt_hash), the same on both
# databases: cheap to match, never trusted to tell hashes apart. Both are deleted with
# their calls by retention (unlike call_rollups): together they are as large as the calls.
def _prompt_rollup_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("hour", TS, nullable=False),
        sa.Column("prompt_key", sa.BigInteger, nullable=False),
        sa.Column("prompt_hash", sa.String, nullable=False),
        sa.Column("service", sa.String),
        sa.Column("model", sa.String),  # the response model, else the request model
        sa.Column("price_status", sa.String(16)),
        sa.Column("pool", sa.String),
        sa.Column("calls", sa.BigInteger, nullable=False),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
        ),
        sa.Column("cost_usd", MONEY),  # sum over the row's calls; null when none had one
        sa.Column("first_start", TS, nullable=False),
        sa.Column("last_start", TS, nullable=False),
    ]


prompt_rollups = sa.Table("prompt_rollups", metadata, *_prompt_rollup_columns())
prompt_rollups_unpaired = sa.Table("prompt_rollups_unpaired", metadata, *_prompt_rollup_columns())
for _table in (prompt_rollups, prompt_rollups_unpaired):
    _postgresql_only(sa.Index(f"ix_{_table.name}_hour", _table.c.hour))
    _postgresql_only(sa.Index(f"ix_{_table.name}_prompt_key", _table.c.prompt_key, _table.c.hour))

# Hours whose calls changed since they were rolled up; a row per change, never updated, so
# the writer only ever appends here and never waits on (or conflicts with) the roller.
rollup_dirty = sa.Table(
    "rollup_dirty",
    metadata,
    sa.Column("hour", TS, nullable=False),
)

# Retention: calls and spans that started before purged_before are deleted; their hours
# live in call_rollups only. At most one row; none while nothing was ever purged.
retention_horizon = sa.Table(
    "retention_horizon",
    metadata,
    sa.Column("purged_before", TS, nullable=False),
)

# GPU metrics (collector/gpu, migration 0006): utilization a pool's boxes report, pushed over
# OTLP or scraped from Prometheus endpoints, one row per (UTC minute, pool, source, metric,
# host): samples, their sum and maximum (ratios 0-1), the distinct GPUs (or engines) the host
# reported, the last sample's time. Rows of one key are summed when read, so a second row (a
# collector racing another on PostgreSQL) changes nothing. Past retention_days, a host's
# minutes are merged into one row per hour (minute = the hour's start).
RATIO = sa.Numeric(20, 10)
gpu_metric_minutes = sa.Table(
    "gpu_metric_minutes",
    metadata,
    sa.Column("minute", TS, nullable=False),
    sa.Column("pool", sa.String, nullable=False),
    sa.Column("source", sa.String(8), nullable=False),  # otlp | scrape
    sa.Column("metric", sa.String, nullable=False),  # as it arrived: DCGM_FI_DEV_GPU_UTIL, hw.gpu.utilization ...
    sa.Column("host", sa.String, nullable=False),  # "" when nothing named the box
    sa.Column("kind", sa.String(16), nullable=False),  # gpu_utilization | kv_cache_usage
    sa.Column("samples", sa.BigInteger, nullable=False),
    sa.Column("value_sum", RATIO, nullable=False),
    sa.Column("value_max", RATIO, nullable=False),
    sa.Column("gpus", sa.Integer, nullable=False),
    sa.Column("last_sample_at", TS, nullable=False),
    _postgresql_only(sa.PrimaryKeyConstraint("minute", "pool", "source", "metric", "host")),
)

# Each configured scrape endpoint's health: when it was last tried, answered, failed and why.
gpu_scrape_targets = sa.Table(
    "gpu_scrape_targets",
    metadata,
    sa.Column("url", sa.String, nullable=False),
    sa.Column("pool", sa.String, nullable=False),
    sa.Column("last_attempt_at", TS, nullable=False),
    sa.Column("last_success_at", TS),
    sa.Column("last_error_at", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False),
    sa.Column("last_samples", sa.Integer, nullable=False),  # GPU samples the last good scrape held
    _postgresql_only(sa.PrimaryKeyConstraint("url")),
)
