"""Where a mirror's wheel metadata (PEP 658) comes from when it has none stored: the upstream's own
``.metadata`` file, the cached wheel, or the upstream's wheel read with Range requests
(:mod:`wheelcave.indexes.rangezip`). Each is put in the blob store and given as (sha256, size);
recording it in the database is the mirror's part."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import zipfile
from collections.abc import Callable

import anyio.to_thread

from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import parse_dist_filename
from wheelcave.errors import NotFound, UpstreamError
from wheelcave.indexes.archive import ArchiveError, read_core_metadata
from wheelcave.indexes.rangezip import RangeRead, wheel_metadata_by_range
from wheelcave.metrics import Metrics
from wheelcave.storage.base import BlobStore
from wheelcave.upstream.client import UpstreamClient

__all__ = ["MAX_METADATA", "MetadataMaker"]

log = logging.getLogger("wheelcave.mirror")
MAX_METADATA = 8 * 2**20
#: What a read gives: the metadata blob's (sha256, size), and the wheel's own where it arrived
#: whole with the ranges; None where the upstream ignores Range.
_Made = tuple[tuple[str, int], tuple[str, int] | None] | None


class MetadataMaker:
    """The metadata files of one mirror's wheels. ``fetching``: the context each upstream read
    runs in (the mirrors' quiet time, :mod:`wheelcave.indexes.quiet`)."""

    def __init__(self, name: str, blobs: BlobStore, client: UpstreamClient, metrics: Metrics,
                 fetching: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
        self.name = name
        self.blobs = blobs
        self.client = client
        self.metrics = metrics
        self.fetching = fetching
        #: (wheel sha256, filename) → the metadata blob read by Range, until the wheel arrives and
        #: is checked against it (its row may not say so yet: rows and recordings come later).
        self.read_by_range: dict[tuple[str, str], str] = {}
        #: (wheel sha256, filename) → the read under way (see :meth:`make`).
        self._reading: dict[tuple[str, str], asyncio.Future[_Made]] = {}

    async def make(
        self, url: str | None, filename: str, sha256: str, *, upstream_has: bool, expected: str | None,
    ) -> _Made:
        """The metadata of a listed file, from the first source that has it: the upstream's own
        ``.metadata`` (``upstream_has``), the cached wheel, the upstream's wheel read by Range.
        ``url``: the file's upstream URL, or None where the upstream is not to be asked (offline).
        Returns the metadata blob's (sha256, size) and, for a wheel that arrived whole with the
        ranges, the wheel's own; None when the upstream ignores Range (the caller downloads the
        wheel). NotFound where no source can have it.

        One read a file at a time: a request for a file being read waits for that read and gets
        its answer (or its error). The read goes on if its first asker goes away; the others
        still wait for it."""
        key = (sha256, filename)
        reading = self._reading.get(key)
        if reading is not None:
            self.metrics.metadata(self.name, "joined")
            return await asyncio.shield(reading)
        reading = asyncio.ensure_future(self._make(url, filename, sha256, upstream_has=upstream_has, expected=expected))
        self._reading[key] = reading
        reading.add_done_callback(functools.partial(self._read_done, key))
        return await asyncio.shield(reading)

    def _read_done(self, key: tuple[str, str], reading: asyncio.Future[_Made]) -> None:
        if self._reading.get(key) is reading:
            del self._reading[key]
        if not reading.cancelled():
            reading.exception()  # seen: an error nobody waits for any more is not "never retrieved"

    async def _make(
        self, url: str | None, filename: str, sha256: str, *, upstream_has: bool, expected: str | None,
    ) -> _Made:
        wheel = filename.endswith(".whl")
        if upstream_has and url:
            return await self.from_upstream(url, filename, expected), None
        if wheel and self.blobs.exists(sha256) and (extracted := await self.from_wheel(sha256, filename)):
            return extracted, None
        if wheel and url:
            return await self.by_range(url, filename, sha256)
        raise NotFound(f"No metadata file for {filename!r}.")

    async def from_wheel(self, sha256: str, filename: str) -> tuple[str, int] | None:
        """The metadata of a cached wheel, into the blob store: (sha256, size)."""
        try:
            dist = parse_dist_filename(filename)

            def extract() -> bytes:
                with self.blobs.open(sha256) as fh:
                    return read_core_metadata(fh, dist, MAX_METADATA)

            data = await anyio.to_thread.run_sync(extract)
        except (CoreError, ArchiveError, FileNotFoundError, zipfile.BadZipFile) as exc:
            log.warning("mirror.metadata_extract_failed file=%s: %s", filename, exc)
            return None
        sha = await anyio.to_thread.run_sync(self.blobs.put_bytes, data)
        return sha, len(data)

    async def from_upstream(self, url: str, filename: str, expected: str | None) -> tuple[str, int]:
        """Fetch ``<url>.metadata`` into the blob store, checked against the page's hash if it
        gave one; (sha256, size)."""
        with self.fetching():
            data = await self.client.fetch_small(url + ".metadata", MAX_METADATA)
        if data is None:
            raise NotFound(f"The upstream has no metadata file for {filename!r}.")
        sha = await anyio.to_thread.run_sync(lambda: self.blobs.put_bytes(data, sync=False))  # synced before its row
        if expected and sha != expected:
            raise UpstreamError(f"{filename}.metadata: sha256 does not match the upstream's")
        return sha, len(data)

    async def by_range(
        self, url: str, filename: str, sha256: str
    ) -> tuple[tuple[str, int], tuple[str, int] | None] | None:
        """Read a wheel's METADATA from the upstream with Range requests, into the blob store;
        None when the upstream ignores Range. Returns the metadata blob's (sha256, size) and, for
        a wheel small enough to have arrived whole, the wheel's own (stored as its cached file,
        once checked against the page's ``sha256``)."""
        try:
            dist = parse_dist_filename(filename)
        except CoreError as exc:
            raise NotFound(f"No metadata file for {filename!r}: {exc}") from None

        async def fetch(first: int, last: int | None) -> tuple[int, int, bytes] | None:
            got = await self.client.fetch_range(url, first, last, MAX_METADATA + 2**20)
            if got is not None:
                self.metrics.file_bytes(self.name, "range", len(got[2]))
            return got

        try:
            with self.fetching():
                read = await wheel_metadata_by_range(fetch, dist, MAX_METADATA)
        except ArchiveError as exc:
            log.warning("mirror.metadata_range_failed file=%s: %s", filename, exc)
            raise NotFound(f"No metadata file for {filename!r}: {exc}") from None
        if read is None:
            return None
        self.metrics.metadata(self.name, "range")
        kept = await anyio.to_thread.run_sync(self._keep_range_read, read, filename, sha256)
        if len(self.read_by_range) >= 10_000:
            self.read_by_range.clear()
        self.read_by_range[(sha256, filename)] = kept[0][0]
        return kept

    def _keep_range_read(self, read: RangeRead, filename: str, sha256: str) -> tuple[tuple[str, int], tuple[str, int] | None]:
        whole = None
        if read.whole is not None:
            if hashlib.sha256(read.whole).hexdigest() != sha256:
                # Another file than the page lists: neither it nor the metadata read from it is kept.
                raise UpstreamError(f"{filename}: the upstream's bytes do not match the sha256 its page lists")
            whole = (self.blobs.put_bytes(read.whole, sync=False), len(read.whole))
        # Not synced here: the client gets the bytes now; the row is written only after
        # _record_metadata_later has synced them.
        return (self.blobs.put_bytes(read.metadata, sync=False), len(read.metadata)), whole
