"""The legacy upload API: ``POST /legacy/`` (to ``local``) and ``POST /index/<name>/``.

Both spellings, with and without the trailing slash, answer directly: twine and poetry
treat a redirect of the POST as an error.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from wheelcave.errors import Forbidden, Unauthorized, WheelcaveError
from wheelcave.web.deps import client_address, services
from wheelcave.web.multipart import read_upload_form

__all__ = ["routes"]

log = logging.getLogger("wheelcave.upload")
_DRAIN_LIMIT = 64 * 2**20
LEGACY_INDEX = "local"


async def _drain(request: Request) -> None:
    """Read what is left of the body (bounded), so the client can read our error answer."""
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > _DRAIN_LIMIT:
                return
    except (ClientDisconnect, RuntimeError):
        return


async def _upload(request: Request, index_name: str) -> Response:
    svc = services(request)
    try:
        target = await svc.registry.upload_target(index_name)
        user = await svc.auth.authenticate(request.headers.get("authorization"))
        if user is None:
            raise Unauthorized("Upload needs credentials: a user name and password, or __token__ and an API token.")
        if not user.can("upload", target.name):
            raise Forbidden(f"The user {user.name!r} isn't allowed to upload to index {target.name!r}.")
        limit = min(svc.settings.max_file_size, target.policy.max_file_size or svc.settings.max_file_size)
        form = await read_upload_form(request, svc.blobs, limit)
    except WheelcaveError:
        await _drain(request)
        raise
    result = await target.upload(form, uploader=user.name, address=client_address(request))
    if result.created:  # a repeated identical upload wrote nothing
        svc.registry.note_bump(target.id)
    log.info(
        "upload.%s index=%s file=%s user=%s",
        "accepted" if result.created else "repeated", target.name, result.file.filename, user.name,
    )
    return PlainTextResponse("\n".join(result.warnings) + ("\n" if result.warnings else ""))


async def legacy(request: Request) -> Response:
    return await _upload(request, LEGACY_INDEX)


async def index_upload(request: Request) -> Response:
    return await _upload(request, request.path_params["index"])


routes = [
    Route("/legacy/", legacy, methods=["POST"]),
    Route("/legacy", legacy, methods=["POST"]),
    Route("/index/{index}/", index_upload, methods=["POST"]),
    Route("/index/{index}", index_upload, methods=["POST"]),
]
