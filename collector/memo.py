"""Bounded memos for pure functions on the ingest path: senders repeat a few values endlessly.

The normalizer's and the pricer's. A hit is one dict lookup (`memo[key]`, a KeyError on a
miss); a miss computes the value and hands it to remember(). Each memo starts over when
full, and keys longer than MEMO_KEY_CHARS are not kept, so a sender that invents values
costs CPU, never unbounded memory.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

MEMO_ENTRIES = 4096
MEMO_KEY_CHARS = 512


def remember(memo: dict[K, V], key: K, value: V, chars: int, entries: int | None = None) -> V:
    """Keep memo[key] = value unless the key is over MEMO_KEY_CHARS characters; return value.

    chars: the characters the key holds. Past `entries` keys (MEMO_ENTRIES unless given)
    the memo starts over.
    """
    if chars <= MEMO_KEY_CHARS:
        if len(memo) >= (MEMO_ENTRIES if entries is None else entries):
            memo.clear()
        memo[key] = value
    return value
