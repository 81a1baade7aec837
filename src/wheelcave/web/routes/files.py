"""File bytes at ``/files/sha256/<hex>/<filename>`` and PEP 658 ``<filename>.metadata``.

One URL per content, whatever index lists it; the filename must be one the database lists
with that content, so the URL space holds nothing but real distributions. Bytes a mirror
lists but does not hold yet are fetched from its upstream while they stream to the client.
"""

from __future__ import annotations

import os
import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from wheelcave.db.repository import FileRecord
from wheelcave.errors import NotFound
from wheelcave.indexes.fetcher import Download
from wheelcave.indexes.mirror import MirrorIndex
from wheelcave.services import Services
from wheelcave.web.deps import services
from wheelcave.web.fileresponse import BlobResponse

__all__ = ["routes"]

_HEX = re.compile(r"[0-9a-f]{64}")
_METADATA = ".metadata"


def _mirror_of(svc: Services, record: FileRecord) -> MirrorIndex | None:
    index = svc.registry.by_id(record.index_id)
    return index if isinstance(index, MirrorIndex) else None


async def _metadata_blob(svc: Services, sha256: str, filename: str) -> str:
    record = await svc.repo.find_file_by_content(sha256, filename)
    if record is None:
        raise NotFound(f"No file {filename!r} with sha256 {sha256}.")
    mirror = _mirror_of(svc, record)
    if mirror is not None:
        return await mirror.metadata(record)
    if record.metadata_sha256 is None:
        raise NotFound(f"No metadata file for {filename!r}.")
    return record.metadata_sha256


async def _stream(request: Request, download: Download, fd: int, sha256: str, filename: str) -> Response:
    await download.started.wait()
    if download.error is not None and download.written == 0:
        os.close(fd)
        raise download.error
    headers = {
        "etag": f'"{sha256}"',
        "cache-control": "public, max-age=365000000, immutable",
        "content-disposition": f'attachment; filename="{filename}"',
    }
    if download.total is not None:
        headers["content-length"] = str(download.total)
    if request.method == "HEAD":
        os.close(fd)
        return Response(status_code=200, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(download.follow(fd), headers=headers, media_type="application/octet-stream")


async def serve_file(request: Request) -> Response:
    sha256 = request.path_params["sha256"]
    filename = request.path_params["filename"]
    if not _HEX.fullmatch(sha256):
        raise NotFound("Not a sha256 file URL.")
    svc = services(request)
    await svc.registry.names()  # keep the index definitions fresh
    record = await svc.repo.find_file_by_content(sha256, filename)
    if record is None and filename.endswith(_METADATA):
        blob = await _metadata_blob(svc, sha256, filename[: -len(_METADATA)])
        try:
            return BlobResponse(request, svc.blobs.path(blob), blob, filename=filename)
        except FileNotFoundError:
            raise NotFound(f"The bytes of {filename!r} are missing from the blob store.") from None
    if record is None:
        raise NotFound(f"No file {filename!r} with sha256 {sha256}.")
    mirror = _mirror_of(svc, record)
    try:
        path = svc.blobs.path(sha256)
    except FileNotFoundError:
        if mirror is None:
            raise NotFound(f"The bytes of {filename!r} are missing from the blob store.") from None
        download, fd = mirror.start_download(record)
        return await _stream(request, download, fd, sha256, filename)
    if mirror is not None:
        mirror.metrics.file(mirror.name, "hit")
        mirror.metrics.file_bytes(mirror.name, "cache", path.stat().st_size)
    return BlobResponse(request, path, sha256, filename=filename)


routes = [
    Route("/files/sha256/{sha256}/{filename}", serve_file, methods=["GET", "HEAD"]),
]
