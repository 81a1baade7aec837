"""The simple API (PEP 503 HTML / PEP 691 JSON): ``/simple/...`` for ``main`` and
``/index/<name>/simple/...`` for any index. Pages come from the in-memory page cache."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from wheelcave.core.names import normalize
from wheelcave.core.pages import PageFormat, choose_format, render_project, render_project_list
from wheelcave.web.deps import page_cache, services
from wheelcave.web.pagecache import CachedPage

__all__ = ["routes"]

DEFAULT_INDEX = "main"
_VARY = "Accept, Accept-Encoding"
_TAGS = {PageFormat.JSON: "j", PageFormat.HTML: "h", PageFormat.TEXT_HTML: "t"}
_SUPPORTED = "\n".join(f.value for f in PageFormat)


def _redirect(request: Request, path: str) -> Response:
    query = request.url.query
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=301)


def _not_acceptable() -> Response:
    body = f"Not acceptable; this page is available as:\n{_SUPPORTED}\n"
    return PlainTextResponse(body, status_code=406, headers={"Vary": _VARY})


def _accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False


def _page_response(request: Request, entry: CachedPage, fmt: PageFormat) -> Response:
    settings = services(request).settings
    max_age = settings.page_max_age
    scope = "public" if settings.anonymous_read else "private"
    use_gzip = _accepts_gzip(request)
    etag = entry.gzip_etag if use_gzip else entry.etag
    headers = {
        "ETag": etag,
        "Vary": _VARY,
        "Cache-Control": f"max-age={max_age}, {scope}" if max_age else f"max-age=0, must-revalidate, {scope}",
    }
    inm = request.headers.get("if-none-match")
    if inm:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        if "*" in tags or entry.etag in tags or entry.gzip_etag in tags:
            return Response(status_code=304, headers=headers)
    assert entry.body is not None
    body = entry.body
    if use_gzip:
        body = entry.gzipped()
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, media_type=fmt.content_type)


async def _serve(
    request: Request, index_name: str, project: str | None, url_prefix: str, *, cooldown: bool = True
) -> Response:
    fmt = choose_format(request.headers.get("accept"), request.query_params.get("format"))
    if fmt is None:
        return _not_acceptable()
    svc = services(request)
    index = await svc.registry.get(index_name)
    token = await svc.registry.generations(index)
    key = (index_name, project or "", fmt.name, url_prefix, "" if cooldown else "no-cooldown")
    cache = page_cache(request)
    entry = cache.get(key, token)
    if entry is None:
        if project is None:
            body: bytes | None = render_project_list(await index.list_projects(), fmt)
        else:
            page = await index.project(normalize(project), cooldown=cooldown)
            body = render_project(page, fmt, url_prefix) if page else None
        entry = CachedPage.make(token, body, _TAGS[fmt], index.cache_ttl())
        cache.put(key, entry)
    if entry.body is None:
        return PlainTextResponse(
            f"Project {project!r} not found in index {index_name!r}.\n",
            status_code=404,
            headers={"Vary": _VARY},
        )
    return _page_response(request, entry, fmt)


async def root_list(request: Request) -> Response:
    return await _serve(request, DEFAULT_INDEX, None, "")


async def root_project(request: Request) -> Response:
    project = request.path_params["project"]
    if normalize(project) != project:
        return _redirect(request, f"/simple/{normalize(project)}/")
    return await _serve(request, DEFAULT_INDEX, project, "../../")


async def index_list(request: Request) -> Response:
    return await _serve(request, request.path_params["index"], None, "")


async def index_project(request: Request) -> Response:
    index, project = request.path_params["index"], request.path_params["project"]
    if normalize(project) != project:
        return _redirect(request, f"/index/{index}/simple/{normalize(project)}/")
    return await _serve(request, index, project, "../../../../")


async def nocooldown_list(request: Request) -> Response:
    return await _serve(request, request.path_params["index"], None, "", cooldown=False)


async def nocooldown_project(request: Request) -> Response:
    index, project = request.path_params["index"], request.path_params["project"]
    if normalize(project) != project:
        return _redirect(request, f"/index/{index}/no-cooldown/simple/{normalize(project)}/")
    return await _serve(request, index, project, "../../../../../", cooldown=False)


def _slash(request: Request) -> Response:
    return _redirect(request, request.url.path + "/")


async def add_slash(request: Request) -> Response:
    return _slash(request)


routes = [
    Route("/simple/", root_list, methods=["GET", "HEAD"]),
    Route("/simple", add_slash, methods=["GET", "HEAD"]),
    Route("/simple/{project}/", root_project, methods=["GET", "HEAD"]),
    Route("/simple/{project}", add_slash, methods=["GET", "HEAD"]),
    Route("/index/{index}/simple/", index_list, methods=["GET", "HEAD"]),
    Route("/index/{index}/simple", add_slash, methods=["GET", "HEAD"]),
    Route("/index/{index}/simple/{project}/", index_project, methods=["GET", "HEAD"]),
    Route("/index/{index}/simple/{project}", add_slash, methods=["GET", "HEAD"]),
    # The per-request cooldown override: the same pages with files in cooldown shown.
    Route("/index/{index}/no-cooldown/simple/", nocooldown_list, methods=["GET", "HEAD"]),
    Route("/index/{index}/no-cooldown/simple/{project}/", nocooldown_project, methods=["GET", "HEAD"]),
    Route("/index/{index}/no-cooldown/simple/{project}", add_slash, methods=["GET", "HEAD"]),
]
