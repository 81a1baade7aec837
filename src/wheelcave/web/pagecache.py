"""Rendered simple pages in memory, keyed by (index, project, format, URL prefix).

Each entry remembers the generations of the indexes it was rendered from; a write bumps a
generation, so a stale entry is never served after the registry sees the write. The gzip
and zstd variants are made once per entry, on first demand.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import zstandard

__all__ = ["CachedPage", "PageCache"]


@dataclass
class CachedPage:
    token: tuple[int, ...]
    body: bytes | None  # None: the project does not exist (cached 404)
    etag: str = ""
    expires: float | None = None  # time.monotonic() after which the index must be asked again
    _gzip: bytes | None = None
    _zstd: bytes | None = None
    #: Answers shaped from this entry, kept by whoever shapes them (their headers, say).
    memo: dict[Any, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, token: tuple[int, ...], body: bytes | None, tag: str, ttl: float | None = None) -> CachedPage:
        etag = ""
        if body is not None:
            etag = '"' + tag + hashlib.sha256(body).hexdigest()[:40] + '"'
        expires = time.monotonic() + ttl if ttl is not None else None
        return cls(token=token, body=body, etag=etag, expires=expires)

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'

    @property
    def zstd_etag(self) -> str:
        return self.etag[:-1] + '-zst"'

    def encoded(self, encoding: str) -> bytes:
        """The body in ``encoding`` ("gzip" or "zstd"), made once."""
        return self.gzipped() if encoding == "gzip" else self.zstded()

    def etag_for(self, encoding: str | None) -> str:
        if encoding is None:
            return self.etag
        return self.gzip_etag if encoding == "gzip" else self.zstd_etag

    def zstded(self) -> bytes:
        if self._zstd is None:
            assert self.body is not None
            # Level 1: a quarter of gzip level 3's CPU for a smaller body (a compressor a call:
            # they are not to be shared between threads).
            self._zstd = zstandard.ZstdCompressor(level=1).compress(self.body)
        return self._zstd

    def gzipped(self) -> bytes:
        if self._gzip is None:
            assert self.body is not None
            # Level 3: half the CPU of level 6 for about 8% more bytes; a mirror's first answer
            # for a project of 15,000 files compresses 7 MB while the client waits.
            self._gzip = gzip.compress(self.body, compresslevel=3, mtime=0)
        return self._gzip


class PageCache:
    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, ...], CachedPage] = OrderedDict()

    def get(self, key: tuple[str, ...], token: tuple[int, ...]) -> CachedPage | None:
        entry = self._entries.get(key)
        if entry is None or entry.token != token:
            return None
        if entry.expires is not None and time.monotonic() > entry.expires:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, ...], entry: CachedPage) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
