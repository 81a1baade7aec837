"""The web pages: home, search, project and index pages (server-rendered with Jinja2; the only
script is a same-origin file for copy buttons and the theme switch).

Every page shows only what its reader may read, with the same rules as the APIs: an index
the reader may not see answers as if it did not exist (404), or asks for credentials (401)
where nothing is public.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from wheelcave.core.jsonapi import latest_version, versions_of
from wheelcave.core.names import is_valid_project_name, normalize
from wheelcave.core.redact import mask_url
from wheelcave.core.versions import version_key
from wheelcave.db.browse import Browse
from wheelcave.db.search import ProjectSearch
from wheelcave.errors import NotFound, Unauthorized
from wheelcave.web.access import caller, readable_index
from wheelcave.web.deps import page_cache, services, site_url
from wheelcave.web.pagecache import CachedPage
from wheelcave.web.ui.readme import render_readme
from wheelcave.web.ui.render import page, render, when

__all__ = ["routes"]

DEFAULT_INDEX = "main"
_STATIC = {"wheelcave.css": "text/css; charset=utf-8", "wheelcave.js": "text/javascript; charset=utf-8"}


async def _readable(request: Request) -> list[Any]:
    svc = services(request)
    who = await caller(request)
    access = await svc.auth.access()
    readable = [r for r in await svc.registry.names() if access.can(who, "read", r.name)]
    if not readable and who is None and not svc.settings.anonymous_read:
        raise Unauthorized("This index needs credentials to read.")
    return readable


@page
async def home(request: Request) -> Response:
    who = await caller(request)  # credentials are checked before anything is answered
    svc = services(request)
    key = ("ui-home", urlsplit(site_url(request)).path)
    token = (*(g for pair in await svc.registry.epoch() for g in pair),)
    # counts of mirror projects may lag by the entry's 10 seconds
    return await _kept(request, who, key, token, 10.0, lambda: _home(request))


async def _kept(request: Request, who: Any, key: tuple[str, ...], token: tuple[int, ...], ttl: float | None,
                make: Callable[[], Awaitable[Response]]) -> Response:
    """An anonymous reader's page is everyone's: kept in the page cache until ``token`` changes
    (or ``ttl`` passes); a signed-in reader's page is always made for them."""
    if who is not None:
        return await make()
    cached = page_cache(request).get(key, token)
    if cached is not None and cached.body is not None:
        return HTMLResponse(cached.body)
    response = await make()
    if response.status_code == 200:
        page_cache(request).put(key, CachedPage.make(token, bytes(response.body), "ui", ttl))
    return response


async def _home(request: Request) -> Response:
    readable = await _readable(request)
    browse = Browse(services(request).db)
    counts = await browse.project_counts([r.id for r in readable])
    by_id = {r.id: r.name for r in readable}
    hosted = [r.id for r in readable if r.kind == "hosted"]
    recent = [{"index": by_id[u.index_id], "project": u.project, "display": u.display_name, "version": u.version,
               "when": when(u.upload_time)} for u in await browse.recent_uploads(hosted)]
    indexes = [{"name": r.name, "kind": r.kind, "projects": counts.get(r.id, 0) if r.kind != "virtual" else "—"}
               for r in readable]
    return await render(request, "home.html", indexes=indexes, recent=recent)


@page
async def search(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()[:200]
    results: list[dict[str, Any]] = []
    if query:
        readable = [r for r in await _readable(request) if r.kind != "virtual"]
        by_id = {r.id: r.name for r in readable}
        hits = await ProjectSearch(services(request).db).search(list(by_id), query, limit=100)
        results = [{"index": by_id[h.index_id], "project": h.name, "display": h.display_name,
                    "version": h.version or "", "summary": h.summary} for h in hits]
    return await render(request, "search.html", query=query, results=results,
                        fetch_into=await _fetchable(request, query, results))


async def _fetchable(request: Request, query: str, results: list[dict[str, Any]]) -> list[str]:
    """Mirrors this reader may pull ``query`` into (administrators of a mirror, as the API's
    fetch asks), when no index here has a project of exactly that name."""
    who = request.scope.get("wheelcave.principal")
    if who is None or not is_valid_project_name(query) or any(r["project"] == normalize(query) for r in results):
        return []
    svc = services(request)
    access = await svc.auth.access()
    return [r.name for r in await svc.registry.names() if r.kind == "mirror" and access.can(who, "manage", r.name)]


def _dependencies(meta: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for text in meta.get("requires_dist") or []:
        try:
            out.append({"name": normalize(Requirement(str(text)).name), "text": str(text)})
        except InvalidRequirement:
            continue
    return out


def _links(meta: dict[str, Any]) -> list[tuple[str, str]]:
    links: list[tuple[str, str]] = []
    urls = meta.get("project_urls")
    if isinstance(urls, dict):
        links += [(str(k), str(v)) for k, v in urls.items()]
    if isinstance(meta.get("home_page"), str):
        links.append(("Homepage", meta["home_page"]))
    return [(label, url) for label, url in links if url.startswith(("https://", "http://"))][:20]


async def _project(request: Request, index_name: str, project_root: str) -> Response:
    project = request.path_params["project"]
    version = request.path_params.get("version")
    name = normalize(project)
    if name != project:
        tail = f"{version}/" if version else ""
        return RedirectResponse(f"{project_root}{name}/{tail}", status_code=301)
    index, who, access = await readable_index(request, index_name)
    svc = services(request)
    key = ("ui-project", index_name, name, version or "", project_root)
    token = await svc.registry.page_token(index, name)
    return await _kept(request, who, key, token, index.cache_ttl(),
                       lambda: _project_page(request, index, index_name, name, version, project_root, who, access))


async def _project_page(request: Request, index: Any, index_name: str, name: str, version: str | None,
                        project_root: str, who: Any, access: Any) -> Response:
    project = name
    page = await index.project(name, with_metadata=True)  # type: ignore[arg-type]
    if page is None or not page.files:
        raise NotFound(f"No project {project!r} in index {index_name!r}.")
    releases = versions_of(page)
    if version is None:
        version = latest_version(releases)
    match = next((v for v in releases if version_key(v) == version_key(version)), None)
    if match is None:
        raise NotFound(f"{page.display_name or name} has no release {version!r} in index {index_name!r}.")
    files = releases[match]
    wheels_first = sorted(files, key=lambda f: not f.filename.endswith(".whl"))
    meta: dict[str, Any] = dict(next((f.core_metadata for f in wheels_first if f.core_metadata), None) or {})
    if not meta:  # a mirrored release: its metadata file, once cached, says as much
        meta = await _cached_metadata(request, wheels_first)
    versions = [{"version": v, "yanked": all(f.yanked for f in fs), "reason": next((f.yanked_reason for f in fs if f.yanked_reason), None)}
                for v, fs in reversed(list(releases.items()))]
    site = site_url(request)
    return await render(
        request, "project.html", name=name, display=meta.get("name") or page.display_name or name, version=match,
        summary=meta.get("summary"), readme=render_readme(meta.get("description"), meta.get("description_content_type")),
        release_yanked=all(f.yanked for f in files), yank_reason=next((f.yanked_reason for f in files if f.yanked_reason), None),
        files=[{"filename": f.filename, "url": f.url, "size": f.size, "when": when(f.upload_time), "yanked": f.yanked,
                "requires_python": f.requires_python, "sha256": f.sha256,
                "source": _source(index.kind, services(request).blobs.exists(f.sha256))} for f in files],
        requires_python=meta.get("requires_python") or next((f.requires_python for f in files if f.requires_python), None),
        dependencies=_dependencies(meta), links=_links(meta), versions=versions, index=index_name, kind=index.kind,
        index_url=f"{site}simple/" if index_name == DEFAULT_INDEX else f"{site}index/{index_name}/simple/",
        project_root=project_root,
        can_yank=index.kind == "hosted" and who is not None and access.can(who, "yank", index_name, name),
        can_delete=(index.kind == "hosted" and who is not None and getattr(index, "policy", None) is not None
                    and index.policy.allow_delete and access.can(who, "delete", index_name, name)),
        promote_to=await _promote_targets(request, index, index_name, name, who, access),
    )


async def _promote_targets(request: Request, index: Any, index_name: str, name: str, who: Any, access: Any) -> list[str]:
    """Hosted indexes this reader could list the release in (upload there); none unless this
    index is hosted too."""
    if who is None or index.kind != "hosted":
        return []
    records = await services(request).registry.names()
    return [r.name for r in records if r.kind == "hosted" and r.name != index_name and access.can(who, "upload", r.name, name)]


def _source(kind: str, stored: bool) -> str:
    if kind == "hosted":
        return "uploaded"
    return "cached" if stored else "upstream, not cached yet"


async def _cached_metadata(request: Request, files: list[Any]) -> dict[str, Any]:
    blobs = services(request).blobs
    for f in files:
        if f.metadata_sha256 and blobs.exists(f.metadata_sha256):
            data = await anyio.to_thread.run_sync(blobs.read_bytes, f.metadata_sha256)
            raw, _ = parse_email(data)
            return dict(raw)
    return {}


@page
async def root_project(request: Request) -> Response:
    root = urlsplit(site_url(request)).path or "/"
    return await _project(request, DEFAULT_INDEX, f"{root}project/")


@page
async def index_project(request: Request) -> Response:
    root = urlsplit(site_url(request)).path or "/"
    index = request.path_params["index"]
    return await _project(request, index, f"{root}index/{index}/project/")


def _settings(kind: str, config: dict[str, Any], *, admin: bool) -> list[tuple[str, str]]:
    """An index's settings as its page shows them: a mirror's upstream only to administrators
    (masked), as the API does."""
    out = []
    for key, value in sorted(config.items()):
        if key == "upstream" and isinstance(value, str):
            if not admin:
                continue
            value = mask_url(value)
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "—"
        out.append((key, str(value)))
    if kind == "hosted" and "immutable" not in config:
        out.append(("immutable", "True (default)"))
    return out


@page
async def index_page(request: Request) -> Response:
    name = request.path_params["index"]
    index, who, access = await readable_index(request, name)
    record = services(request).registry.record_by_id(index.id) if hasattr(index, "id") else None
    config = dict(record.config) if record else {}
    client = getattr(index, "client", None)
    if "upstream" in config and client is not None:
        config["upstream"] = client.base  # the URL in use ("pip" means what pip would use)
    projects = await index.list_projects()
    limit = 2000
    return await render(request, "index.html", index={"name": name, "kind": index.kind},
                         settings=_settings(index.kind, config, admin=bool(who and who.is_admin)), projects=projects[:limit], truncated=len(projects) > limit,
                         uploads=index.kind in {"hosted", "virtual"},
                         traffic=index.kind == "mirror" and who is not None and access.can(who, "manage", name),
                         webhooks=who is not None and access.can(who, "manage", name))


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        return Response("not found\n", status_code=404, media_type="text/plain")
    data = resources.files("wheelcave.web.ui").joinpath("static", name).read_bytes()
    return Response(data, media_type=_STATIC[name], headers={"Cache-Control": "public, max-age=86400"})


routes = [
    Route("/", home, methods=["GET", "HEAD"]),
    Route("/search", search, methods=["GET", "HEAD"]),
    Route("/project/{project}/", root_project, methods=["GET", "HEAD"]),
    Route("/project/{project}/{version}/", root_project, methods=["GET", "HEAD"]),
    Route("/index/{index}/", index_page, methods=["GET", "HEAD"]),
    Route("/index/{index}/project/{project}/", index_project, methods=["GET", "HEAD"]),
    Route("/index/{index}/project/{project}/{version}/", index_project, methods=["GET", "HEAD"]),
    Route("/_static/{name}", static, methods=["GET", "HEAD"]),
]
