"""File bytes at ``/files/sha256/<hex>/<filename>`` and PEP 658 ``<filename>.metadata``.

One URL per content, whatever index lists it; the filename must be one the database lists
with that content, so the URL space holds nothing but real distributions.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wheelcave.errors import NotFound
from wheelcave.web.deps import services
from wheelcave.web.fileresponse import BlobResponse

__all__ = ["routes"]

_HEX = re.compile(r"[0-9a-f]{64}")
_METADATA = ".metadata"


async def serve_file(request: Request) -> Response:
    sha256 = request.path_params["sha256"]
    filename = request.path_params["filename"]
    if not _HEX.fullmatch(sha256):
        raise NotFound("Not a sha256 file URL.")
    svc = services(request)
    record = await svc.repo.find_file_by_content(sha256, filename)
    blob = sha256
    if record is None and filename.endswith(_METADATA):
        record = await svc.repo.find_file_by_content(sha256, filename[: -len(_METADATA)])
        if record is None or record.metadata_sha256 is None:
            raise NotFound(f"No metadata file for {filename[: -len(_METADATA)]!r}.")
        blob = record.metadata_sha256
    if record is None:
        raise NotFound(f"No file {filename!r} with sha256 {sha256}.")
    try:
        path = svc.blobs.path(blob)
    except FileNotFoundError:
        raise NotFound(f"The bytes of {filename!r} are missing from the blob store.") from None
    return BlobResponse(request, path, blob, filename=filename)


routes = [
    Route("/files/sha256/{sha256}/{filename}", serve_file, methods=["GET", "HEAD"]),
]
