"""The legacy upload API: ``POST /legacy/`` (to ``local``) and ``POST /index/<name>/``.

Both spellings, with and without the trailing slash, answer directly: twine and poetry
treat a redirect of the POST as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from wheelcave.auth.access import Principal
from wheelcave.core.filenames import parse_dist_filename
from wheelcave.core.names import normalize
from wheelcave.errors import Forbidden, NotFound, Unauthorized, WheelcaveError
from wheelcave.indexes.hosted import HostedIndex, UploadForm, UploadResult
from wheelcave.services import Services
from wheelcave.web.access import caller, require
from wheelcave.web.deps import client_address, services
from wheelcave.web.multipart import read_upload_form

__all__ = ["receive_upload", "routes"]

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


def _project_of(form: UploadForm) -> str | None:
    """The project an upload is for: its filename's (what decides where it lands; for an sdist
    name readable several ways, the reading its name field picks), else its name field; None
    when neither says (the upload's own checks refuse it then)."""
    name = form.get("name")
    wanted = normalize(name) if name else None
    try:
        dist = parse_dist_filename(form.filename or "")
    except ValueError:
        return wanted
    readings = {n for n, _ in dist.splits} or {dist.project}
    return wanted if wanted in readings else dist.project


async def _authorize(request: Request, index_name: str) -> tuple[Principal, HostedIndex]:
    """Who uploads, and to which hosted index. Credentials come first: nothing about the index
    (whether it exists, its kind) is told to someone who has not shown who they are."""
    svc = services(request)
    user = await caller(request)
    if user is None:
        raise Unauthorized("Upload needs credentials: a user name and password, or __token__ and an API token.")
    access = await svc.auth.access()
    if not (access.can(user, "read", index_name) or access.can(user, "upload", index_name)):
        raise NotFound(f"No index named {index_name!r}.")  # as if it did not exist
    # A virtual index passes uploads to its target, whose grants decide.
    target = await svc.registry.upload_target(index_name)
    await require(request, "upload", target.name)
    return user, target


async def _check_project(svc: Services, user: Principal, target: HostedIndex, project: str | None) -> list[str] | None:
    """Refuse an upload to a project the user may not publish to; the project's owners (None
    when ownership does not apply)."""
    access = await svc.auth.access()
    if project is not None and not access.can(user, "upload", target.name, project):
        raise Forbidden(f"The token of {user.name!r} isn't allowed to upload to project {project!r}.")
    if not target.policy.project_ownership or project is None or access.can(user, "manage", target.name):
        return None
    owners = await svc.accounts.owners(target.id, project)
    if owners and not user.owner_keys & set(owners):
        raise Forbidden(f"The user {user.name!r} isn't an owner of project {project!r} in index {target.name!r}; "
                        "an owner can add them.")
    return owners


async def receive_upload(
    request: Request, index_name: str, *, check: Callable[[UploadForm], None] | None = None, browser: bool = False,
) -> UploadResult | None:
    """Take one upload to ``index_name``: who, where, the streamed form, the project's owners,
    then the index's own checks. ``check`` sees the parsed form before anything is stored (a
    page's CSRF token). ``browser``: a form with only the file (a web page's upload), whose name,
    version and digest are read from the file as an import reads them. None: the client left."""
    svc = services(request)
    form = None
    try:
        user, target = await _authorize(request, index_name)
        limit = min(svc.settings.max_file_size, target.policy.max_file_size or svc.settings.max_file_size)
        form = await read_upload_form(request, svc.blobs, limit)
        if check is not None:
            check(form)
        if browser:
            _fill_from_file(form)
        owners = await _check_project(svc, user, target, _project_of(form))
    except WheelcaveError:
        if form is not None and form.temp is not None:
            form.temp.discard()
        await _drain(request)
        raise
    except ClientDisconnect:  # the client went away mid-body: nothing kept, nobody to answer
        log.info("upload.disconnected index=%s address=%s", index_name, client_address(request) or "-")
        return None
    result = await target.upload(form, uploader=user.name, address=client_address(request))
    if result.created:  # a repeated identical upload wrote nothing
        svc.registry.note_bump(target.id)
    if owners == []:  # the first upload of a project nobody owns: its uploader owns it now
        await svc.accounts.claim_project(target.id, result.file.project, user.owner_key)
    log.info(
        "upload.%s index=%s file=%s user=%s",
        "accepted" if result.created else "repeated", target.name, result.file.filename, user.name,
    )
    return result


def _fill_from_file(form: UploadForm) -> None:
    """The fields twine would send, read from the file itself (name and version from its
    filename, its sha256); the archive's metadata is checked against them as for any upload."""
    if form.temp is None or not form.filename:
        return
    try:
        dist = parse_dist_filename(form.filename)
    except ValueError:
        return  # the upload's own check names the problem
    form.fields.setdefault(":action", ["file_upload"])
    form.fields.setdefault("name", [dist.project])
    form.fields.setdefault("version", [str(dist.version)])
    form.fields.setdefault("sha256_digest", [form.temp.digests.sha256])


async def _upload(request: Request, index_name: str) -> Response:
    result = await receive_upload(request, index_name)
    if result is None:
        return Response(status_code=400)
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
