"""What mirrors served, over time: per-index counts in five-minute buckets for the cache and
traffic charts (hit rate, bytes from the cache vs from upstream, upstream health).

Each process counts in memory (:class:`TrafficCounts`, fed by :class:`wheelcave.metrics.Metrics`)
and adds its counts to the database now and then (:func:`flush`), so that replicas sum up and a
restart loses at most one interval. The charts' page flushes its own process first.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["BUCKET", "COUNTS", "KEEP", "Bucket", "TrafficCounts", "TrafficStore", "flush"]

#: Seconds per bucket, and how long buckets are kept.
BUCKET = 300
KEEP = 35 * 86400
COUNTS = ("page_hits", "page_fetches", "page_stale", "page_missing", "file_hits", "file_misses",
          "bytes_cache", "bytes_upstream", "upstream_errors")

# What each counter of Metrics adds to ("early" marks a fetch already counted as "fetched";
# "pending" a file listed by such a page: neither is a request of its own).
_PAGE = {"hit": "page_hits", "fetched": "page_fetches", "revalidated": "page_fetches",
         "stale": "page_stale", "missing": "page_missing"}
_FILE = {"hit": "file_hits", "miss": "file_misses", "joined": "file_misses"}
_BYTES = {"cache": "bytes_cache", "upstream": "bytes_upstream", "range": "bytes_upstream"}


@dataclass
class Bucket:
    """One index's counts over one bucket (``start``: Unix seconds)."""

    index: str
    start: int
    counts: dict[str, int] = field(default_factory=dict)

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)


class TrafficStore(Protocol):
    async def add_traffic(self, buckets: Sequence[Bucket]) -> None: ...
    async def traffic(self, index: str, since: int) -> list[Bucket]: ...
    async def prune_traffic(self, before: int) -> None: ...


class TrafficCounts:
    """This process's counts not yet written, per (index, bucket)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._pending: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def _add(self, index: str, name: str | None, amount: int = 1) -> None:
        if name is not None and amount:
            start = int(self._clock()) // BUCKET * BUCKET
            self._pending[(index, start)][name] += amount

    def page(self, index: str, result: str) -> None:
        self._add(index, _PAGE.get(result))

    def file(self, index: str, result: str) -> None:
        self._add(index, _FILE.get(result))

    def file_bytes(self, index: str, source: str, count: int) -> None:
        self._add(index, _BYTES.get(source), count)

    def upstream_error(self, index: str) -> None:
        self._add(index, "upstream_errors")

    def drain(self) -> list[Bucket]:
        pending, self._pending = self._pending, defaultdict(lambda: defaultdict(int))
        return [Bucket(index, start, dict(counts)) for (index, start), counts in pending.items()]

    def restore(self, buckets: Sequence[Bucket]) -> None:
        """Put drained counts back (their write failed; the next flush tries again)."""
        for b in buckets:
            for name, amount in b.counts.items():
                self._pending[(b.index, b.start)][name] += amount


async def flush(counts: TrafficCounts, store: TrafficStore, clock: Callable[[], float] = time.time) -> None:
    """Write this process's counts; prune what is older than :data:`KEEP`."""
    buckets = counts.drain()
    if not buckets:
        return
    try:
        await store.add_traffic(buckets)
    except BaseException:
        counts.restore(buckets)
        raise
    await store.prune_traffic(int(clock()) - KEEP)


def totals(buckets: Sequence[Bucket]) -> Mapping[str, int]:
    out = dict.fromkeys(COUNTS, 0)
    for b in buckets:
        for name in COUNTS:
            out[name] += b.get(name)
    return out
