"""File bytes at ``/files/sha256/<hex>/<filename>`` and PEP 658 ``<filename>.metadata``.

One URL per content, whatever index lists it; the filename must be one the database lists
with that content, so the URL space holds nothing but real distributions. Bytes a mirror
lists but does not hold yet are fetched from its upstream while they stream to the client.

A file is served only to a reader of at least one index that lists it (a virtual index shows
only members its reader may read, so this covers it): content addressing is no way around an
access list. Others get what an unknown file gets (see :mod:`wheelcave.web.access`).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from wheelcave.core.remote import RemoteFile
from wheelcave.db.repository import FileRecord
from wheelcave.errors import NotFound
from wheelcave.indexes.fetcher import Download
from wheelcave.indexes.mirror import MirrorIndex
from wheelcave.services import Services
from wheelcave.web.access import caller, deny
from wheelcave.web.deps import services
from wheelcave.web.fileresponse import BlobResponse, parse_range

__all__ = ["FileLookups", "routes"]

_HEX = re.compile(r"[0-9a-f]{64}")
_METADATA = ".metadata"


def _mirror_of(svc: Services, record: FileRecord) -> MirrorIndex | None:
    index = svc.registry.by_id(record.index_id)
    return index if isinstance(index, MirrorIndex) else None


def _ids(svc: Services, names: tuple[str, ...]) -> list[int]:
    return [r.id for n in names if (r := svc.registry.record_by_name(n)) is not None]


async def _record(svc: Services, sha256: str, filename: str, listed: _Listed) -> FileRecord | None:
    """The row of a listed file in an index its reader may read (``listed.readable``): its own,
    or (a mirror's file nobody asked for yet) made now from that mirror's listing. That index
    serves it: its upstream fetches what is not cached, where another index listing the same
    bytes may be offline or fetch from an upstream of its own. Another index's row is the answer
    only when no index the reader may read has or lists the file (an early answer's, written
    meanwhile). Where the lookup found the file only in mirrors' listings, their entries are
    used as found (no row of a readable index had it a moment ago)."""
    if listed.entries:
        made = await svc.registry.listed_mirror_record(sha256, filename, listed.readable, listed.entries)
        if made is not None:
            return made
    prefer = _ids(svc, listed.readable)
    record = await svc.repo.find_file_by_content(sha256, filename, prefer)
    if record is not None and record.index_id in prefer:
        return record
    made = await svc.registry.listed_mirror_record(sha256, filename, listed.readable)
    return made if made is not None else record


async def _metadata_blob(svc: Services, sha256: str, filename: str, listed: _Listed) -> str:
    record = await _record(svc, sha256, filename, listed)
    if record is None:
        raise NotFound(f"No file {filename!r} with sha256 {sha256}.")
    mirror = _mirror_of(svc, record)
    if mirror is not None:
        return await mirror.metadata(record)
    if record.metadata_sha256 is None:
        raise NotFound(f"No metadata file for {filename!r}.")
    return record.metadata_sha256


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


async def _stream(request: Request, download: Download, fd: int | None, sha256: str, filename: str) -> Response:
    await download.started.wait()
    if download.error is not None and download.written == 0:
        _close(fd)
        raise download.error
    headers = {
        "etag": f'"{sha256}"',
        "cache-control": "public, max-age=365000000, immutable",
        "content-disposition": f'attachment; filename="{filename}"',
    }
    if download.total is not None:
        headers["content-length"] = str(download.total)
        headers["accept-ranges"] = "bytes"
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if wanted and download.total is not None and (if_range is None or if_range.strip() == headers["etag"]):
        rng = parse_range(wanted, download.total)
        if rng is False:
            _close(fd)
            return Response(status_code=416, headers={**headers, "content-length": "0",
                                                      "content-range": f"bytes */{download.total}"})
        if rng is not None:
            start, end = rng  # type: ignore[misc]
            headers["content-length"] = str(end - start + 1)
            headers["content-range"] = f"bytes {start}-{end}/{download.total}"
            if request.method == "HEAD":
                _close(fd)
                return Response(status_code=206, headers=headers, media_type="application/octet-stream")
            return StreamingResponse(_ranged(download.follow(fd), start, end), status_code=206, headers=headers,
                                     media_type="application/octet-stream")
    if request.method == "HEAD":
        _close(fd)
        return Response(status_code=200, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(download.follow(fd), headers=headers, media_type="application/octet-stream")


async def _ranged(source: AsyncIterator[bytes], start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes ``start``..``end`` of a file being downloaded, sent as they arrive, but the range's
    last byte only once the whole file is verified: a range answer never completes with bytes
    whose hash has not been checked (the same rule as a whole file's last byte)."""
    position = 0
    held = b""
    async for chunk in source:
        lo, hi = max(start, position), min(end + 1, position + len(chunk))
        if lo < hi:
            piece = chunk[lo - position:hi - position]
            if hi == end + 1:
                piece, held = piece[:-1], piece[-1:]
            if piece:
                yield piece
        position += len(chunk)
    yield held  # the source ended without raising: every byte checked


class FileLookups:
    """What file URLs resolved to, remembered while no index's generation changes.

    ``(sha256, filename)`` → (the blob to send, the mirror that lists it or None, the names of
    the indexes that list it). Only
    answers whose bytes were in the blob store are kept; a delete or yank anywhere bumps a
    generation and empties the table, so a removed file is never served from it after this
    process sees the write (the same delay as for pages). A repeated install then costs no
    database query per file.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._epoch: object = None
        self._entries: dict[tuple[str, str], tuple[str, str | None, tuple[str, ...]]] = {}

    def get(self, epoch: object, key: tuple[str, str]) -> tuple[str, str | None, tuple[str, ...]] | None:
        if epoch != self._epoch:
            self._entries.clear()
            self._epoch = epoch
            return None
        return self._entries.get(key)

    def put(self, epoch: object, key: tuple[str, str], value: tuple[str, str | None, tuple[str, ...]]) -> None:
        if epoch != self._epoch:
            self._entries.clear()
            self._epoch = epoch
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = value


async def _send_blob(request: Request, svc: Services, blob: str, filename: str, mirror: str | None) -> Response:
    """FileNotFoundError if the bytes are not (or no longer) in the blob store."""
    path = svc.blobs.local_path(blob)
    if path is not None:
        response: Response = BlobResponse(request, path, blob, filename=filename)
        size = response.size  # type: ignore[attr-defined]
    elif svc.settings.storage_redirect and (url := svc.blobs.presigned_url(blob, svc.settings.storage_redirect)):
        # Straight from the object store; a redirect is never cached longer than its URL lives.
        await anyio.to_thread.run_sync(svc.blobs.size, blob)  # there (else the caller fetches or 404s)
        response = RedirectResponse(url, status_code=302, headers={
            "cache-control": f"private, max-age={max(0, svc.settings.storage_redirect // 2)}"})
        size = 0
    else:
        size = await anyio.to_thread.run_sync(svc.blobs.size, blob)
        response = BlobResponse(request, None, blob, filename=filename, store=svc.blobs, size=size)
        size = response.size  # type: ignore[attr-defined]
    if mirror is not None:
        svc.registry.metrics.file(mirror, "hit")
        svc.registry.metrics.file_bytes(mirror, "cache", size)
    return response


@dataclass(frozen=True)
class _Listed:
    """Where a file URL's file is listed: ``names``, the indexes listing it; ``readable``, those
    of them the caller may read; ``entries``, where no readable index had a row of it, the
    mirrors whose pages list it (mirror → its project and entry); ``pending``, the first mirror
    the caller may read whose early answer lists it while its row is being written."""

    names: tuple[str, ...]
    readable: tuple[str, ...]
    entries: Mapping[str, tuple[str, RemoteFile]] = field(default_factory=dict)
    pending: MirrorIndex | None = None


async def _listed_for(request: Request, svc: Services, sha256: str, filename: str,
                      listing: tuple[str, ...] | None = None) -> _Listed:
    """Where the file is listed, if an index the caller may read lists it (else the error).

    ``listing``: what a lookup remembered; mirrors cache files without a generation bump, so
    when it denies, the database is asked again before refusing."""
    who = await caller(request)
    access = await svc.auth.access()

    def readable(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name for name in names if access.can(who, "read", name))

    if listing is not None and (mine := readable(listing)):
        return _Listed(listing, mine)
    base = filename.removesuffix(_METADATA)
    # Pending first: an early answer's rows are committed before it stops being pending.
    mirrors = svc.registry.pending_mirrors(sha256, base)
    pending = tuple(m.name for m in mirrors)

    def listed(names: tuple[str, ...], mine: tuple[str, ...], entries: Mapping[str, tuple[str, RemoteFile]]) -> _Listed:
        return _Listed(names, mine, entries, next((m for m in mirrors if m.name in mine), None))

    if mine := readable(pending):
        return listed(pending, mine, {})  # a first page's file, asked for right after it: no query needed
    stored = [r.name for i in await svc.repo.indexes_listing(sha256, base) if (r := svc.registry.record_by_id(i))]
    listing = tuple(dict.fromkeys([*stored, *pending]))
    if mine := readable(listing):
        return listed(listing, mine, {})
    # A mirror's file without a row (nobody asked for it yet) is in its page's listing.
    entries = await svc.registry.listing_mirrors(sha256, base)
    listing = tuple(dict.fromkeys([*listing, *entries]))
    if not (mine := readable(listing)):
        raise await deny(svc, who, access, f"No file {filename!r} with sha256 {sha256}.")
    return listed(listing, mine, entries)


async def serve_file(request: Request) -> Response:
    sha256 = request.path_params["sha256"]
    filename = request.path_params["filename"]
    if not _HEX.fullmatch(sha256):
        raise NotFound("Not a sha256 file URL.")
    svc = services(request)
    epoch = await svc.registry.epoch()  # also keeps the index definitions fresh
    lookups: FileLookups = request.app.state.file_lookups
    key = (sha256, filename)
    known = lookups.get(epoch, key)
    if known is not None:
        await _listed_for(request, svc, sha256, filename, known[2])
        try:
            return await _send_blob(request, svc, known[0], filename, known[1])
        except FileNotFoundError:
            pass  # collected since: resolve it again
    listed = await _listed_for(request, svc, sha256, filename)
    base = filename.removesuffix(_METADATA)
    pending = listed.pending
    # A file of a page answered before its rows were written: whatever its row says meanwhile,
    # the mirror answers it (its bytes or metadata are fetched once, then recorded).
    record = None if pending is not None or base != filename else await _record(svc, sha256, filename, listed)
    if record is None:
        if pending is not None:  # listed by a page answered before its rows were written
            if base != filename:
                blob = await pending.pending_metadata(sha256, base)
                if blob is not None:
                    return await _send_blob(request, svc, blob, filename, None)
            elif svc.blobs.exists(sha256):
                return await _send_blob(request, svc, sha256, filename, pending.name)
            else:
                started = pending.start_pending_download(sha256, base)
                if started is not None:
                    return await _stream(request, *started, sha256, filename)
            await pending.rows_written(sha256, base, hurry=True)
        # Also when no early answer lists it (any more): its rows may have been committed
        # while the first lookup ran.
        if base == filename:
            record = await _record(svc, sha256, filename, listed)
    if record is None and filename.endswith(_METADATA):
        blob = await _metadata_blob(svc, sha256, filename[: -len(_METADATA)], listed)
        try:
            response = await _send_blob(request, svc, blob, filename, None)
        except FileNotFoundError:
            raise NotFound(f"The bytes of {filename!r} are missing from the blob store.") from None
        lookups.put(epoch, key, (blob, None, listed.names))
        return response
    if record is None:
        raise NotFound(f"No file {filename!r} with sha256 {sha256}.")
    mirror = _mirror_of(svc, record)
    try:
        response = await _send_blob(request, svc, sha256, filename, mirror.name if mirror else None)
    except FileNotFoundError:
        if mirror is None:
            raise NotFound(f"The bytes of {filename!r} are missing from the blob store.") from None
        download, fd = mirror.start_download(record)
        return await _stream(request, download, fd, sha256, filename)
    lookups.put(epoch, key, (sha256, mirror.name if mirror else None, listed.names))
    return response


routes = [
    Route("/files/sha256/{sha256}/{filename}", serve_file, methods=["GET", "HEAD"]),
]
