"""The PyPI-style JSON API: ``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json``
(``main``), and the same under ``/index/<name>/``."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from wheelcave.core.jsonapi import project_document
from wheelcave.core.names import normalize
from wheelcave.errors import NotFound
from wheelcave.web.access import readable_index
from wheelcave.web.deps import services, site_url

__all__ = ["routes"]


async def _document(request: Request, index_name: str, root: str) -> Response:
    project = request.path_params["project"]
    version = request.path_params.get("version")
    normalized = normalize(project)
    if normalized != project:
        tail = f"{version}/json" if version else "json"
        return RedirectResponse(f"{root}pypi/{normalized}/{tail}", status_code=301)
    svc = services(request)
    index, _, access = await readable_index(request, index_name)
    public = all(access.public(n) for n in svc.registry.member_names(index))
    page = await index.project(normalized, with_metadata=True)
    if page is None:
        raise NotFound(f"Project {project!r} not found in index {index_name!r}.")
    serial = sum(await svc.registry.generations(index))
    # Absolute URLs: JSON API clients (poetry) use them as they are.
    site = site_url(request)
    doc = project_document(
        page, version=version, url_prefix=site, base_url=f"{site}project/", serial=serial
    )
    if doc is None:
        raise NotFound(f"Project {project!r} has no release {version!r}." if version
                       else f"Project {project!r} lists no file here now.")
    body = orjson.dumps(doc)
    return Response(body, media_type="application/json", headers={"Cache-Control": f"max-age=60, {'public' if public else 'private'}"})


async def root_json(request: Request) -> Response:
    return await _document(request, "main", "/")


async def index_json(request: Request) -> Response:
    index = request.path_params["index"]
    return await _document(request, index, f"/index/{index}/")


routes = [
    Route(path, handler, methods=["GET", "HEAD"])
    for prefix, handler in (("", root_json), ("/index/{index}", index_json))
    for path in (
        f"{prefix}/pypi/{{project}}/json",
        f"{prefix}/pypi/{{project}}/json/",
        f"{prefix}/pypi/{{project}}/{{version}}/json",
        f"{prefix}/pypi/{{project}}/{{version}}/json/",
    )
]
