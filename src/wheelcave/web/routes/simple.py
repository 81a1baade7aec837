"""The simple API (PEP 503 HTML / PEP 691 JSON): ``/simple/...`` for ``main`` and
``/index/<name>/simple/...`` for any index. Pages come from the in-memory page cache."""

from __future__ import annotations

import functools

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from wheelcave.config import Settings
from wheelcave.core.names import normalize
from wheelcave.core.pages import PageFormat, choose_format, render_project, render_project_list
from wheelcave.web.access import readable_index
from wheelcave.web.deps import page_cache, services
from wheelcave.web.pagecache import CachedPage

__all__ = ["routes"]

DEFAULT_INDEX = "main"
_VARY = "Accept, Accept-Encoding"
_RENDER_INLINE = 5000  # files; bigger pages are rendered on a thread
_HASH_INLINE = 2**20  # bytes; bigger pages are hashed and compressed on a thread
_TAGS = {PageFormat.JSON: "j", PageFormat.HTML: "h", PageFormat.TEXT_HTML: "t"}
_SUPPORTED = "\n".join(f.value for f in PageFormat)


def _redirect(request: Request, path: str) -> Response:
    query = request.url.query
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=301)


def _not_acceptable() -> Response:
    body = f"Not acceptable; this page is available as:\n{_SUPPORTED}\n"
    return PlainTextResponse(body, status_code=406, headers={"Vary": _VARY})


def _accepted_codings(accept_encoding: str) -> set[str]:
    codings = set()
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if params.replace(" ", "").lower() not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}:
            codings.add(coding.strip().lower())
    return codings


@functools.lru_cache(maxsize=256)
def page_encoding(accept_encoding: str) -> str | None:
    """The coding a page is sent in: zstd where the client takes it (uv does; it is made in a
    quarter of gzip's time and smaller), else gzip (pip), else none."""
    codings = _accepted_codings(accept_encoding)
    return "zstd" if "zstd" in codings else "gzip" if "gzip" in codings else None


def page_answer(
    entry: CachedPage, fmt: PageFormat, settings: Settings, *, accept_encoding: str, if_none_match: str | None,
    public: bool,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body for a cached page: the one place that shapes them.
    ``public``: readable without credentials (else shared caches must not keep it)."""
    encoding, status = page_shape(entry, accept_encoding, if_none_match)
    headers = page_headers(entry, fmt, encoding, public, status, settings.page_max_age)
    return status, list(headers), page_body(entry, encoding, status)


def page_shape(entry: CachedPage, accept_encoding: str, if_none_match: str | None) -> tuple[str | None, int]:
    """The coding a cached page goes out in, and its status (304 when the client has it)."""
    status = 304 if if_none_match and matches_etag(if_none_match, entry) else 200
    return page_encoding(accept_encoding), status


def page_body(entry: CachedPage, encoding: str | None, status: int) -> bytes:
    """The body of a cached page's answer (none for a 304)."""
    if status == 304:
        return b""
    assert entry.body is not None
    return entry.body if encoding is None else entry.encoded(encoding)


def matches_etag(if_none_match: str, entry: CachedPage) -> bool:
    """Whether an ``If-None-Match`` value names this page (in any of its codings)."""
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or bool(tags & {entry.etag, entry.gzip_etag, entry.zstd_etag})


def page_headers(
    entry: CachedPage, fmt: PageFormat, encoding: str | None, public: bool, status: int, max_age: int,
) -> tuple[tuple[bytes, bytes], ...]:
    """The headers of a cached page's answer, made once per entry and shape."""
    key = ("headers", fmt, encoding, public, status, max_age)
    made = entry.memo.get(key)
    if made is None:
        scope = "public" if public else "private"
        cache_control = f"max-age={max_age}, {scope}" if max_age else f"max-age=0, must-revalidate, {scope}"
        headers = [(b"etag", entry.etag_for(encoding).encode()), (b"vary", _VARY.encode()),
                   (b"cache-control", cache_control.encode())]
        if status != 304:
            assert entry.body is not None
            size = len(entry.body if encoding is None else entry.encoded(encoding))
            if encoding is not None:
                headers.append((b"content-encoding", encoding.encode()))
            headers += [(b"content-type", fmt.content_type.encode()), (b"content-length", str(size).encode())]
        made = entry.memo[key] = tuple(headers)
    return made  # type: ignore[no-any-return]


def _page_response(request: Request, entry: CachedPage, fmt: PageFormat, public: bool) -> Response:
    status, headers, body = page_answer(
        entry, fmt, services(request).settings, accept_encoding=request.headers.get("accept-encoding", ""),
        if_none_match=request.headers.get("if-none-match"), public=public,
    )
    response = Response(body if request.method != "HEAD" else b"", status_code=status)
    response.raw_headers = headers
    return response


def cache_key(
    index_name: str, project: str | None, fmt: PageFormat, url_prefix: str, cooldown: bool,
    hidden: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """A page's cache key; ``hidden``: the members a reader's view of a virtual index leaves out."""
    return (index_name, project or "", fmt.name, url_prefix, "" if cooldown else "no-cooldown", ",".join(sorted(hidden)))


def _make_entry(token: tuple[int, ...], body: bytes, fmt: PageFormat, ttl: float | None, encoding: str | None) -> CachedPage:
    entry = CachedPage.make(token, body, _TAGS[fmt], ttl)
    if encoding is not None:
        entry.encoded(encoding)
    return entry


def files_prefix(public_url: str, relative: str) -> str:
    """What a project page puts before ``files/sha256/...``: the configured ``public_url`` (links
    that never depend on a client's Host header; pip resolves absolute links in about half the
    time of ``../../`` ones), else the way back to the site root from the page."""
    return public_url or relative


async def _serve(
    request: Request, index_name: str, project: str | None, url_prefix: str, *, cooldown: bool = True
) -> Response:
    fmt = choose_format(request.headers.get("accept"), request.query_params.get("format"))
    if fmt is None:
        return _not_acceptable()
    svc = services(request)
    if project is not None:
        url_prefix = files_prefix(svc.settings.public_url, url_prefix)
    index, _, access = await readable_index(request, index_name)
    hidden: frozenset[str] = getattr(index, "hidden", frozenset())
    public = all(access.public(n) for n in svc.registry.member_names(index))
    token = await svc.registry.page_token(index, project)
    key = cache_key(index_name, project, fmt, url_prefix, cooldown, hidden)
    cache = page_cache(request)
    entry = cache.get(key, token)
    if entry is not None and project is not None:
        svc.registry.count_cached_page(index)
    if entry is None:
        with svc.registry.own_changes() as own:
            if project is None:
                body: bytes | None = render_project_list(await index.list_projects(), fmt)
            else:
                page = await index.project(normalize(project), cooldown=cooldown)
                if page is not None and len(page.files) > _RENDER_INLINE:  # the loop keeps serving meanwhile
                    body = await anyio.to_thread.run_sync(render_project, page, fmt, url_prefix)
                else:
                    body = render_project(page, fmt, url_prefix) if page else None
        token = await svc.registry.settled_token(index, project, token, own)
        if body is not None and len(body) > _HASH_INLINE:  # a big page is hashed and compressed on a thread
            encoding = page_encoding(request.headers.get("accept-encoding", ""))
            entry = await anyio.to_thread.run_sync(_make_entry, token, body, fmt, index.cache_ttl(), encoding)
        else:
            entry = CachedPage.make(token, body, _TAGS[fmt], index.cache_ttl())
        cache.put(key, entry)
    if entry.body is None:
        message = f"Project {project!r} not found in index {index_name!r}."
        if getattr(getattr(index, "config", None), "offline", False):
            message = f"Project {project!r} is not cached in index {index_name!r}, which is offline (it never asks its upstream)."
        return PlainTextResponse(message + "\n", status_code=404, headers={"Vary": _VARY})
    return _page_response(request, entry, fmt, public)


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
