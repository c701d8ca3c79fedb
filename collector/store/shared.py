"""A PostgreSQL that several collectors share: one commit's locked transaction, and what the
other collectors remembered there (collector/calls/pipeline.py, _commit_shared).

Each commit runs in `locked`: a transaction that first takes an advisory lock per trace it
writes, so the pipeline reads what other collectors stored of those traces and replaces their
calls while no other collector can. The LockedLedger it yields reads, in that transaction and
under locks of their own, the links across traces every collector stored: the calls that
name a provider response, the stored halves of a call no response id links, the watched
providers, and the prompt hashes parked for spans not stored yet. The writer
(collector/store/writer.py) then writes the batch in the same transaction.

Locks are taken in the order trace, response, provider, origin by every commit, each kind in
one statement in key order, so commits never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from breakeven.collector.records import Call, PromptHashHint
from breakeven.collector.store.rows import call_from_row, datetime_to_ns, ns_to_datetime
from breakeven.collector.store.schema import calls, cross_trace_providers, prompt_hash_hints
from breakeven.collector.store.writer import TRACE_LOOKUP_WINDOW_NS

# The key spaces of breakeven's advisory locks (pg_advisory_xact_lock's first int4), so they
# meet no other application's locks: a trace's (its id's hashtext), a provider response's
# (hashtext of "provider response-id"), a provider's entry in cross_trace_providers, and the
# calls of one origin (halves.Half.origin) that may be two halves of one.
TRACE_LOCKS = 0x62726B01
RESPONSE_LOCKS = 0x62726B02
PROVIDER_LOCKS = 0x62726B03
ORIGIN_LOCKS = 0x62726B04
# Taken in one statement, in key order, so two collectors' commits never deadlock: each waits
# for the other's commit at the first key they share. hashtext is 32 bits: two traces that
# share a key only wait for each other, they are not merged.
_LOCK_KEYS = sa.text(
    "SELECT count(pg_advisory_xact_lock(:space, k))"
    " FROM (SELECT DISTINCT hashtext(t) AS k FROM unnest(CAST(:keys AS text[])) AS t ORDER BY k) AS ordered"
)
_WATCH_LOCKS = sa.text(
    "SELECT count(CASE WHEN alone THEN pg_advisory_xact_lock(:space, k)"
    " ELSE pg_advisory_xact_lock_shared(:space, k) END)"
    " FROM (SELECT hashtext(p) AS k, bool_or(x) AS alone"
    " FROM unnest(CAST(:providers AS text[]), CAST(:exclusive AS boolean[])) AS u(p, x)"
    " GROUP BY 1 ORDER BY 1) AS ordered"
)
_CALLS_OF_ORIGINS = sa.text(
    "SELECT calls.* FROM calls JOIN unnest(CAST(:provider AS text[]), CAST(:model AS text[]),"
    " CAST(:service AS text[]), CAST(:process AS text[]), CAST(:status AS text[]), CAST(:lo AS timestamptz[]),"
    " CAST(:hi AS timestamptz[])) AS o(provider, model, service, process, status, lo, hi)"
    " ON calls.provider = o.provider AND calls.request_model = o.model"
    " AND coalesce(calls.process, '') = coalesce(o.process, '')"  # ix_calls_origin
    " AND calls.process IS NOT DISTINCT FROM o.process AND calls.service IS NOT DISTINCT FROM o.service"
    " AND calls.status = o.status AND calls.start_time BETWEEN o.lo - make_interval(secs => :window) AND o.hi"
    " AND calls.end_time >= o.lo"
)

ResponseKey = tuple[str | None, str]  # (provider, response id)


@contextmanager
def locked(engine: sa.Engine, trace_ids: Sequence[str]) -> Iterator[LockedLedger]:
    """A transaction holding the advisory lock of each of these traces until it commits (when
    the block ends) or rolls back (when it raises), as a LockedLedger."""
    with engine.begin() as conn:
        _lock(conn, TRACE_LOCKS, trace_ids)
        yield LockedLedger(conn)


class LockedLedger:
    """One commit's locked transaction on a shared PostgreSQL, and what the cross-trace rules
    remember there (collector/calls/crosstrace.py, SharedLedger)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def parked_hints(self, trace_ids: Sequence[str]) -> list[PromptHashHint]:
        """The prompt-hash hints parked for these traces (prompt_hash_hints)."""
        if not trace_ids:
            return []
        rows = self.conn.execute(
            sa.select(prompt_hash_hints.c.trace_id, prompt_hash_hints.c.span_id, prompt_hash_hints.c.prompt_hash).where(
                prompt_hash_hints.c.trace_id == sa.func.any(sa.literal(list(trace_ids), postgresql.ARRAY(sa.String)))
            )
        )
        return [PromptHashHint(trace_id, span_id, prompt_hash) for trace_id, span_id, prompt_hash in rows]

    def stored_responses(self, responses: Sequence[ResponseKey]) -> dict[ResponseKey, tuple[tuple[str, str], int, int]]:
        """Lock these (provider, response id) pairs, then the calls other commits stored that
        name them: pair -> ((trace id, span id), start ns, end ns), the first stored where
        several are."""
        if not responses:
            return {}
        _lock(self.conn, RESPONSE_LOCKS, [f"{provider or ''} {response_id}" for provider, response_id in responses])
        wanted = set(responses)
        rows = self.conn.execute(
            sa.select(calls.c.provider, calls.c.response_id, calls.c.trace_id, calls.c.span_id, calls.c.start_time,
                      calls.c.end_time)
            .where(calls.c.response_id == sa.func.any(sa.literal(sorted({r for _, r in responses}),
                                                                 postgresql.ARRAY(sa.String))))
            .order_by(calls.c.received_at, calls.c.start_time)
        )  # fmt: skip
        found: dict[ResponseKey, tuple[tuple[str, str], int, int]] = {}
        for provider, response_id, trace_id, span_id, start, end in rows:
            if (provider, response_id) in wanted:
                found.setdefault(
                    (provider, response_id), ((trace_id, span_id), datetime_to_ns(start), datetime_to_ns(end))
                )
        return found

    def watch(self, providers: set[str], newly: set[str]) -> set[str]:
        """Lock the providers (alone for `newly`, shared for the others), record `newly` as
        watched, and return which of `providers` are watched by any collector."""
        if not providers and not newly:
            return set()
        every = sorted(providers | newly)
        self.conn.execute(
            _WATCH_LOCKS, {"space": PROVIDER_LOCKS, "providers": every, "exclusive": [p in newly for p in every]}
        )
        if newly:
            insert = postgresql.insert(cross_trace_providers).values([{"provider": p} for p in sorted(newly)])
            self.conn.execute(insert.on_conflict_do_nothing())
        rows = self.conn.execute(
            sa.select(cross_trace_providers.c.provider).where(
                cross_trace_providers.c.provider == sa.func.any(sa.literal(every, postgresql.ARRAY(sa.String)))
            )
        )
        return {r[0] for r in rows}

    def stored_calls(self, origins: Mapping[tuple[str | None, ...], tuple[int, int]]) -> list[Call]:
        """Lock each origin (provider, request model, service, process, status), then the stored
        calls of it that overlap its range of times (ns)."""
        if not origins:
            return []
        _lock(self.conn, ORIGIN_LOCKS, ["\x1f".join(map(str, origin)) for origin in origins])
        columns: dict[str, list[Any]] = {name: [] for name in ("provider", "model", "service", "process", "status")}
        for origin in origins:
            for name, value in zip(columns, origin, strict=True):
                columns[name].append(value)
        rows = self.conn.execute(
            _CALLS_OF_ORIGINS,
            {
                **columns,
                "lo": [ns_to_datetime(lo) for lo, _ in origins.values()],
                "hi": [ns_to_datetime(hi) for _, hi in origins.values()],
                "window": TRACE_LOOKUP_WINDOW_NS / 1e9,
            },
        )
        return [call_from_row(row) for row in rows]


def _lock(conn: sa.Connection, space: int, keys: Sequence[str]) -> None:
    """Take the transaction-scoped advisory locks of these keys in `space`, in key order."""
    if keys:
        conn.execute(_LOCK_KEYS, {"space": space, "keys": list(keys)})
