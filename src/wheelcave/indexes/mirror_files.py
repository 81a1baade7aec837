"""A mirror's files: their bytes fetched on demand, their metadata (PEP 658) made for every
wheel, and releases pulled into the cache on request.

Bytes: see :mod:`wheelcave.indexes.fetcher` (one download per content, followed by every client
that asks meanwhile). Metadata is advertised for every wheel: fetched from the upstream on demand
when it offers it; else extracted from the cached wheel; else read from the upstream's wheel with
Range requests (:mod:`wheelcave.indexes.rangezip`; a small wheel arrives whole that way and is
kept as its cached file); else (Range ignored) the wheel is downloaded. Metadata read by Range
is checked against the wheel when it arrives: a mismatch is logged, counted and corrected.

:class:`MirrorFiles` is the file half of :class:`wheelcave.indexes.mirror.MirrorIndex`, which
provides the state it names below (the page half: listings, early answers, rows).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from packaging.utils import NormalizedName

from wheelcave.core.jsonapi import latest_version, versions_of
from wheelcave.core.names import validate_project_name
from wheelcave.core.versions import same_release
from wheelcave.db.repository import FileRecord, Repository
from wheelcave.errors import NotFound
from wheelcave.indexes.ahead import AheadPages
from wheelcave.indexes.fetcher import Download, DownloadSpec, FileFetcher
from wheelcave.indexes.mirror_config import MirrorConfig
from wheelcave.indexes.mirror_metadata import MAX_METADATA, MetadataMaker
from wheelcave.indexes.quiet import Quiet
from wheelcave.metrics import Metrics
from wheelcave.storage.base import BlobStore
from wheelcave.upstream.client import UpstreamClient

if TYPE_CHECKING:
    from wheelcave.core.pages import ProjectPage
    from wheelcave.core.remote import RemoteFile
    from wheelcave.indexes.mirror import _PendingRows

__all__ = ["MirrorFiles"]

log = logging.getLogger("wheelcave.mirror")


class MirrorFiles:
    """File bytes and metadata of a mirror (mixed into :class:`~wheelcave.indexes.mirror.MirrorIndex`)."""

    name: str
    config: MirrorConfig
    repo: Repository
    blobs: BlobStore
    client: UpstreamClient
    fetcher: FileFetcher
    metrics: Metrics
    quiet: Quiet | None
    makes: MetadataMaker
    ahead: AheadPages
    on_change: Callable[[str], None]

    if TYPE_CHECKING:  # the page half's, used here
        def _pending_with(self, sha256: str, filename: str) -> tuple[_PendingRows, RemoteFile] | None: ...
        def pending_file(self, sha256: str, filename: str) -> RemoteFile | None: ...
        async def rows_written(self, sha256: str, filename: str, *, hurry: bool = False) -> None: ...
        async def listed_record(self, sha256: str, filename: str) -> FileRecord | None: ...
        async def refresh(self, name: NormalizedName) -> None: ...
        async def _page(self, name: NormalizedName) -> ProjectPage | None: ...
        def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None: ...

    async def pending_metadata(self, sha256: str, filename: str) -> str | None:
        """The ``.metadata`` of a file listed by an early answer, fetched without waiting for its
        row (the client asks for it right after the page); None if the upstream offers none.
        It is recorded in the database once the row exists; until then it is remembered here."""
        hit = self._pending_with(sha256, filename)
        if hit is None or self.config.offline:
            return None
        pending, found = hit
        if not (found.metadata_available or filename.endswith(".whl")):
            return None
        self.metrics.file(self.name, "pending")
        made = pending.metadata.get(filename)
        if made is not None and self.blobs.exists(made):
            return made
        made = await self.makes.make(found.url, filename, sha256, upstream_has=found.metadata_available,
                                     expected=found.metadata_sha256)
        if made is None:
            return None  # the upstream ignores Range: the route waits for the row, then downloads
        (sha, size), whole = made
        pending.metadata[filename] = sha
        self._fetch_ahead(sha)

        async def record_it() -> None:
            await self.rows_written(sha256, filename)
            record = await self.listed_record(sha256, filename)
            if record is not None:
                self._record_metadata_later(record, sha, size, whole)

        self._spawn(record_it(), f"{filename}.metadata")
        return sha

    def start_download(self, record: FileRecord) -> tuple[Download, int | None]:
        """Start (or join) the download of a listed file that is not cached yet."""
        if self.config.offline or not record.origin_url:
            raise NotFound(f"{record.filename} is not cached and index {self.name!r} is offline.")
        spec = DownloadSpec(record.origin_url, record.sha256, record.filename, record.size)

        async def the_record() -> FileRecord:
            return record

        return self._download(spec, the_record)

    def start_pending_download(self, sha256: str, filename: str) -> tuple[Download, int | None] | None:
        """Start (or join) the download of a file listed by an early answer, without waiting
        for its row; the row learns of the bytes once it is written."""
        found = self.pending_file(sha256, filename)
        if found is None or self.config.offline:
            return None
        self.metrics.file(self.name, "pending")
        spec = DownloadSpec(found.url, sha256, filename, found.size)

        async def the_record() -> FileRecord | None:
            # Cached bytes are worth their row at once: the page keeps listing a cached file the
            # upstream drops only once the row knows it is cached.
            await self.rows_written(sha256, filename, hurry=True)
            return await self.listed_record(sha256, filename)

        return self._download(spec, the_record)

    def _download(
        self, spec: DownloadSpec, the_record: Callable[[], Awaitable[FileRecord | None]]
    ) -> tuple[Download, int | None]:
        async def committed(download: Download) -> None:
            self.metrics.file_bytes(self.name, "upstream", download.written)
            record = await the_record()
            if record is None:
                return  # its rows were never written: the unreferenced blob is gc's to remove
            metadata, mismatch = None, False
            if record.kind == "wheel" and not record.upstream_metadata:
                metadata = await self.makes.from_wheel(record.sha256, record.filename)
                mismatch = await self._check_read_metadata(record, metadata)
            # A corrected metadata file bumps the generation: every process forgets what the
            # old one's URL resolved to.
            await self.repo.record_mirror_blob(record.id, record.sha256, download.written, metadata,
                                               bump_index=record.index_id if mismatch else None)
            self.on_change(record.project)

        download, fd, new = self.fetcher.get(spec, self.blobs, self.client, committed)
        self.metrics.file(self.name, "miss" if new else "joined")
        if new and self.quiet is not None:
            quiet = self.quiet
            quiet.begin()  # a download is upstream work too: rows wait for its end (or their limit)

            async def until_done() -> None:
                try:
                    await download.recorded.wait()
                finally:
                    quiet.end()

            self._spawn(until_done(), spec.filename)
        return download, fd

    async def _check_read_metadata(self, record: FileRecord, extracted: tuple[str, int] | None) -> bool:
        """A wheel just downloaded: the metadata read earlier by Range (if any) must be the one
        in the wheel. A mismatch (the upstream replaced the file, or answered ranges of another
        one) is logged and counted; the caller stores the wheel's own."""
        current = await self.repo.find_file(record.index_id, record.filename)  # its own row, as it is now
        known = current.metadata_sha256 if current is not None and current.id == record.id else record.metadata_sha256
        read = self.makes.read_by_range.pop((record.sha256, record.filename), None)
        known = known or read  # read, but not recorded yet
        if extracted is not None and known and known != extracted[0]:
            self.metrics.metadata(self.name, "mismatch")
            log.warning("mirror.metadata_mismatch file=%s: read by range %s, in the wheel %s; the wheel's is kept",
                        record.filename, known, extracted[0])
            return True
        return False

    async def _metadata_by_download(self, record: FileRecord) -> str:
        """The upstream ignores Range: download the wheel (it is cached for its install) and
        take the metadata from it."""
        download, fd = self.start_download(record)
        if fd is not None:
            os.close(fd)
        await download.recorded.wait()
        if download.error is not None:
            raise download.error
        extracted = await self.makes.from_wheel(record.sha256, record.filename)
        if extracted is None:
            raise NotFound(f"No metadata file for {record.filename!r}.")
        self.metrics.metadata(self.name, "download")
        self._record_metadata_later(record, *extracted)
        return extracted[0]

    async def metadata(self, record: FileRecord) -> str:
        """Make the ``.metadata`` of a listed wheel available; returns its blob's sha256. The
        upstream's own metadata file when it offers one; else the cached wheel's; else read
        from the upstream's wheel with Range requests; else (Range ignored) the wheel downloaded."""
        if record.metadata_sha256 and self.blobs.exists(record.metadata_sha256):
            return record.metadata_sha256
        read = self.makes.read_by_range.get((record.sha256, record.filename))
        if read is not None and self.blobs.exists(read):
            return read  # read a moment ago; its row is still being written
        url = None if self.config.offline else record.origin_url
        made = await self.makes.make(url, record.filename, record.sha256, upstream_has=record.upstream_metadata,
                                     expected=record.metadata_sha256)
        if made is None:
            return await self._metadata_by_download(record)
        self._record_metadata_later(record, *made[0], made[1])
        self._fetch_ahead(made[0][0])
        return made[0][0]

    def _record_metadata_later(self, record: FileRecord, sha256: str, size: int,
                               whole: tuple[str, int] | None = None) -> None:
        """Note a cached ``.metadata`` blob in the database after the answer: the client has
        its bytes and does not wait for the write lock. If the write fails, the next request
        for it does the same again. ``whole``: the wheel itself arrived with the ranges read
        (its blob is stored): it is cached from now on, as if downloaded."""

        async def record_it() -> None:
            # The blobs may have been committed unsynced (answered first): durable before a row
            # points at them.
            await anyio.to_thread.run_sync(self.blobs.sync, sha256)
            if whole is not None:
                await anyio.to_thread.run_sync(self.blobs.sync, whole[0])
                await self.repo.record_mirror_blob(record.id, whole[0], whole[1], (sha256, size))
                self.on_change(record.project)
            elif await self.repo.record_metadata_blob(record.id, sha256, size):
                self.on_change(record.project)

        self._spawn(record_it(), f"{record.filename}.metadata")

    async def fetch_release(self, name: NormalizedName, version: str | None) -> list[str]:
        """Pull a release (default: the newest) into the cache now; returns its filenames."""
        name = validate_project_name(name)
        await self.refresh(name)
        page = await self._page(name)
        if page is None or not page.files:
            raise NotFound(f"The upstream of {self.name!r} has no project {name!r}.")
        if version is None:
            version = latest_version(versions_of(page))
        chosen = []
        for entry in page.files:
            if same_release(entry.version, version):
                record = await self.listed_record(entry.sha256, entry.filename)
                if record is not None:
                    chosen.append(record)
        if not chosen:
            raise NotFound(f"The upstream of {self.name!r} has no release {name} {version}.")
        for record in chosen:
            if not self.blobs.exists(record.sha256):
                download, fd = self.start_download(record)
                async for _ in download.follow(fd):
                    pass  # wait for the whole file (verified and committed)
                await download.recorded.wait()
        return [r.filename for r in chosen]

    def _fetch_ahead(self, metadata_sha256: str) -> None:
        """A client gets a metadata file made for it: fetch its dependencies' pages meanwhile."""
        if not self.config.fetch_ahead or self.config.offline:
            return

        def read() -> bytes:
            with self.blobs.open(metadata_sha256) as fh:  # a few KB, just written
                return fh.read(MAX_METADATA)

        async def ahead() -> None:
            with contextlib.suppress(OSError):
                self.ahead.after_metadata(await anyio.to_thread.run_sync(read))

        self._spawn(ahead(), f"{metadata_sha256}.metadata's dependencies")
