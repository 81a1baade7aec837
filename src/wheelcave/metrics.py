"""Counters for ``/metrics`` (Prometheus text format), one registry per app.

Per process: with several workers, each answers with its own counts (scrape each, or sum).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest

from wheelcave.core.traffic import TrafficCounts

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        #: The same mirror counts over time, for the traffic charts (wheelcave.core.traffic).
        self.traffic = TrafficCounts()
        self._pages = Counter(
            "wheelcave_mirror_pages", "Mirror project page lookups by result "
            "(hit, revalidated, fetched, stale, missing; early: fetched and answered before its rows "
            "were written).", ["index", "result"], registry=self.registry,
        )
        #: labels() takes a lock and checks its arguments: each counter's children are kept
        #: once made (cached pages and files count on every request).
        self._children: dict[tuple[Any, ...], Any] = {}
        self._errors = Counter(
            "wheelcave_upstream_errors", "Failed upstream requests.", ["index", "kind"], registry=self.registry,
        )
        self._files = Counter(
            "wheelcave_mirror_files", "Mirror file requests by result (hit, miss, joined; pending: "
            "listed by an early answer whose rows were still being written).",
            ["index", "result"], registry=self.registry,
        )
        self._bytes = Counter(
            "wheelcave_mirror_file_bytes", "Mirror file bytes, served from the cache (cache) or fetched "
            "upstream: whole files (upstream) and the parts of wheels read for their metadata (range).",
            ["index", "source"], registry=self.registry,
        )

        self._metadata = Counter(
            "wheelcave_mirror_metadata", "Wheel metadata files a mirror made without an upstream one, by "
            "source (range: read with Range requests; download: the wheel fetched whole, the upstream "
            "ignoring Range), mismatch (a Range read that the downloaded wheel contradicted) and joined (a "
            "request that waited for another one's read of the same file instead of reading it again).",
            ["index", "source"], registry=self.registry,
        )

        self._auth_failures = Counter(
            "wheelcave_auth_failures", "Refused credentials by reason (password, token, expired, malformed).",
            ["reason"], registry=self.registry,
        )
        self._auth_throttled = Counter(
            "wheelcave_auth_throttled", "Requests answered 429 by the failed-login limits (address, user).",
            ["limit"], registry=self.registry,
        )

    def auth_failure(self, reason: str) -> None:
        self._child(self._auth_failures, reason).inc()

    def auth_throttled(self, limit: str) -> None:
        self._child(self._auth_throttled, limit).inc()

    def page(self, index: str, result: str) -> None:
        self._child(self._pages, index, result).inc()
        self.traffic.page(index, result)

    def upstream_error(self, index: str, kind: str) -> None:
        self._child(self._errors, index, kind).inc()
        self.traffic.upstream_error(index)

    def file(self, index: str, result: str) -> None:
        self._child(self._files, index, result).inc()
        self.traffic.file(index, result)

    def file_bytes(self, index: str, source: str, count: int) -> None:
        self._child(self._bytes, index, source).inc(count)
        self.traffic.file_bytes(index, source, count)

    def metadata(self, index: str, source: str) -> None:
        self._child(self._metadata, index, source).inc()

    def _child(self, counter: Counter, *labels: str) -> Any:
        key = (counter, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
