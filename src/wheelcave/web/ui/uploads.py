"""Uploading from the browser: a page with a file field (one file without JavaScript; several,
dropped or chosen, with it: the page's script posts each as its own upload). Each file goes
through the upload API's own path (:func:`receive_upload`): the same rights, owners, limits and
checks, its name and version read from the file as an import reads them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from wheelcave.errors import WheelcaveError
from wheelcave.web.deps import services
from wheelcave.web.routes.upload import receive_upload
from wheelcave.web.ui.account import _signed_in
from wheelcave.web.ui.render import page, render
from wheelcave.web.ui.session import check_csrf

__all__ = ["routes"]


async def _targets(request: Request, who: Any) -> list[str]:
    """The indexes this user may upload to (hosted ones, and virtual ones passing uploads on)."""
    svc = services(request)
    access = await svc.auth.access()
    out = []
    for record in await svc.registry.names():
        if record.kind == "hosted" and access.can(who, "upload", record.name):
            out.append(record.name)
        elif record.kind == "virtual" and record.config.get("upload_to") and access.can(who, "upload", str(record.config["upload_to"])):
            out.append(record.name)
    return out


@page
async def upload_form(request: Request) -> Response:
    who = _signed_in(request)
    return await render(request, "upload.html", targets=await _targets(request, who))


@page
async def upload(request: Request) -> Response:
    index = request.path_params["index"]
    wants_json = "application/json" in request.headers.get("accept", "")
    _signed_in(request)

    def check(form: Any) -> None:
        check_csrf(request, form.get("csrf") or request.headers.get("x-csrf-token"))

    try:
        result = await receive_upload(request, index, check=check, browser=True)
    except WheelcaveError as exc:
        if wants_json and exc.status < 500:
            return JSONResponse({"ok": False, "error": exc.message}, status_code=exc.status)
        raise
    if result is None:
        return Response(status_code=400)
    where = f"/index/{index}/project/{result.file.project}/{result.file.version}/"
    if wants_json:
        return JSONResponse({"ok": True, "filename": result.file.filename, "created": result.created, "url": where,
                             "warnings": list(result.warnings)})
    return RedirectResponse(where, status_code=303)


routes = [
    Route("/upload", upload_form, methods=["GET", "HEAD"]),
    Route("/upload/{index}", upload, methods=["POST"]),
]
