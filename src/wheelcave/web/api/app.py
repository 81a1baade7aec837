"""``/api/v1``: indexes, projects, releases, files, yank, delete, promote, fetch and search here;
users, groups, tokens, access lists, owners, publishers and the audit log in
:mod:`wheelcave.web.api.accounts`. Reads follow each index's access list; every change needs
credentials and the right grant (:mod:`wheelcave.auth.access`), and lands in the audit log.
"""


from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wheelcave import __version__
from wheelcave.core.errors import CoreError
from wheelcave.core.names import normalize
from wheelcave.core.pages import FileEntry
from wheelcave.core.versions import same_release, version_key
from wheelcave.errors import BadRequest, Forbidden, NotFound, WheelcaveError
from wheelcave.indexes.admin import IndexAdmin, default_grants
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.indexes.mirror import MirrorIndex
from wheelcave.core.redact import mask_url
from wheelcave.db.search import ProjectSearch
from wheelcave.services import Services
from wheelcave.web.api import accounts, docs, webhooks
from wheelcave.web.api import models as m
from wheelcave.web.deps import site_url
from wheelcave.web import actions
from wheelcave.web.actions import promote_release
from wheelcave.web.api.deps import Reader, SignedIn, need, need_admin, readable

__all__ = ["create_api"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.Error, "description": text}
    for code, text in ((400, "Bad input"), (401, "Credentials needed or wrong"), (403, "Not allowed"),
                       (404, "Not found"), (409, "Conflict"), (429, "Too many failed sign-ins"), (502, "Upstream failed"),
                       (504, "Upstream timed out"))
}


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="wheelcave"'} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _shown(config: dict[str, Any], admin: bool) -> dict[str, Any]:
    """An index's settings as a caller may see them: the upstream (masked) for administrators only."""
    out = dict(config)
    if not admin:
        out.pop("upstream", None)
    elif isinstance(out.get("upstream"), str):
        out["upstream"] = mask_url(out["upstream"])
    return out


def _file(f: FileEntry, base: str) -> m.FileOut:
    return m.FileOut(
        filename=f.filename, version=f.version, url=base + f.url, sha256=f.sha256, size=f.size,
        requires_python=f.requires_python, yanked=f.yanked, yanked_reason=f.yanked_reason,
        upload_time=f.upload_time, metadata_sha256=f.metadata_sha256,
    )


def create_api(get_services: Callable[[], Services]) -> FastAPI:  # noqa: C901 - one route table
    api = FastAPI(
        title="wheelcave", version=__version__, openapi_url="/openapi.json", docs_url=None, redoc_url=None,
        description="Management API of a wheelcave package index. Authenticate with HTTP Basic "
        "(user and password, or __token__ and an API token).",
    )

    @api.exception_handler(WheelcaveError)
    async def _wheelcave_error(_: Request, exc: WheelcaveError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, getattr(exc, "retry_after", None))

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "invalid-input", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}
        return _error(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))

    @api.exception_handler(CoreError)
    async def _core_error(_: Request, exc: CoreError) -> JSONResponse:
        return _error(400, "invalid-input", str(exc))

    @api.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, "invalid-input", f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request")

    api.state.get_services = get_services

    def address(request: Request) -> str | None:
        return request.client.host if request.client else None

    async def hosted(name: str) -> HostedIndex:
        index = await get_services().registry.get(name)
        if not isinstance(index, HostedIndex):
            raise BadRequest(f"Index {name!r} is a {index.kind} index; this needs a hosted one.")
        return index

    def index_out(record: Any, admin: bool) -> m.IndexOut:
        return m.IndexOut(name=record.name, kind=record.kind, config=_shown(dict(record.config), admin))

    # ------------------------------------------------------------ indexes

    @api.get("/indexes", response_model=list[m.IndexOut], responses=ERRORS, tags=["indexes"])
    async def list_indexes(who: Reader) -> list[m.IndexOut]:
        access = await get_services().auth.access()
        admin = who is not None and who.is_admin
        return [index_out(r, admin) for r in await get_services().registry.names() if access.can(who, "read", r.name)]

    @api.post("/indexes", status_code=201, response_model=m.IndexOut, responses=ERRORS, tags=["indexes"])
    async def create_index(body: m.IndexCreate, request: Request, who: SignedIn) -> m.IndexOut:
        need_admin(who)
        svc = get_services()
        grants = default_grants(body.kind, private=body.private)
        record = await IndexAdmin(svc.repo).create(body.name, body.kind, body.config, actor=who.name, grants=grants)
        svc.registry.note_write(record.id)
        svc.auth.changed()
        return index_out(record, True)

    @api.get("/indexes/{name}", response_model=m.IndexOut, responses=ERRORS, tags=["indexes"])
    async def read_index(name: str, request: Request, who: Reader) -> m.IndexOut:
        await readable(request, who, name)
        record = await get_services().repo.find_index(name)
        if record is None:
            raise NotFound(f"No index named {name!r}.")
        return index_out(record, who is not None and who.is_admin)

    @api.patch("/indexes/{name}", response_model=m.IndexOut, responses=ERRORS, tags=["indexes"])
    async def update_index(name: str, body: m.IndexPatch, request: Request, who: SignedIn) -> m.IndexOut:
        await need(request, who, "manage", name)
        record = await IndexAdmin(get_services().repo).update(name, body.config, actor=who.name)
        get_services().registry.note_write(record.id)
        return index_out(record, who.is_admin)

    @api.delete("/indexes/{name}", status_code=204, responses=ERRORS, tags=["indexes"])
    async def delete_index(name: str, who: SignedIn) -> Response:
        need_admin(who)
        await IndexAdmin(get_services().repo).delete(name, actor=who.name)
        get_services().registry.note_write(0)
        get_services().auth.changed()
        return Response(status_code=204)

    # ------------------------------------------------------------ projects, releases, files

    @api.get("/indexes/{name}/projects", response_model=list[m.ProjectSummary], responses=ERRORS, tags=["projects"])
    async def list_projects(name: str, request: Request, who: Reader) -> list[m.ProjectSummary]:
        index = await readable(request, who, name)
        return [m.ProjectSummary(name=n, display_name=d) for n, d in await index.list_projects()]

    async def _page(request: Request, who: Any, name: str, project: str) -> Any:
        index = await readable(request, who, name)
        page = await index.project(normalize(project))
        if page is None:
            raise NotFound(f"Project {project!r} not found in index {name!r}.")
        return page

    @api.get("/indexes/{name}/projects/{project}", response_model=m.ProjectOut, responses=ERRORS, tags=["projects"])
    async def read_project(name: str, project: str, request: Request, who: Reader) -> m.ProjectOut:
        page = await _page(request, who, name, project)
        base = site_url(request)
        return m.ProjectOut(name=page.name, display_name=page.display_name, versions=page.versions,
                            files=[_file(f, base) for f in page.files])

    @api.delete("/indexes/{name}/projects/{project}", response_model=m.Changed, responses=ERRORS, tags=["projects"])
    async def delete_project(name: str, project: str, request: Request, who: SignedIn) -> m.Changed:
        await need(request, who, "delete", name, normalize(project))
        index = await hosted(name)
        files = await index.delete(project, actor=who.name, address=address(request))
        if files:  # this process's pages and file URLs change at once
            get_services().registry.note_bump(index.id)
        return m.Changed(files=files)

    @api.get("/indexes/{name}/projects/{project}/versions/{version}", response_model=m.ReleaseOut,
             responses=ERRORS, tags=["projects"])
    async def read_release(name: str, project: str, version: str, request: Request, who: Reader) -> m.ReleaseOut:
        page = await _page(request, who, name, project)
        files = [f for f in page.files if same_release(f.version, version)]
        if not files:
            raise NotFound(f"Project {project!r} has no release {version!r} in index {name!r}.")
        base = site_url(request)
        return m.ReleaseOut(project=page.name, version=files[0].version, files=[_file(f, base) for f in files])

    @api.delete("/indexes/{name}/projects/{project}/versions/{version}", response_model=m.Changed,
                responses=ERRORS, tags=["projects"])
    async def delete_release(name: str, project: str, version: str, request: Request, who: SignedIn) -> m.Changed:
        return m.Changed(files=await actions.delete_release(request, who, name, project, version))

    async def _yank(name: str, project: str, version: str | None, filename: str | None, reason: str | None,
                    yanked: bool, who: Any, request: Request) -> m.Changed:
        await need(request, who, "yank", name, normalize(project))
        index = await hosted(name)
        files = await index.set_yanked(project, version, yanked=yanked, reason=reason, filename=filename,
                                       actor=who.name, address=address(request))
        if files:
            get_services().registry.note_bump(index.id)
        return m.Changed(files=files)

    @api.post("/indexes/{name}/projects/{project}/versions/{version}/yank", response_model=m.Changed,
              responses=ERRORS, tags=["projects"])
    async def yank_release(name: str, project: str, version: str, body: m.YankIn, request: Request, who: SignedIn) -> m.Changed:
        return await _yank(name, project, version, None, body.reason, True, who, request)

    @api.post("/indexes/{name}/projects/{project}/versions/{version}/unyank", response_model=m.Changed,
              responses=ERRORS, tags=["projects"])
    async def unyank_release(name: str, project: str, version: str, request: Request, who: SignedIn) -> m.Changed:
        return await _yank(name, project, version, None, None, False, who, request)

    async def _file_record(request: Request, who: Any, name: str, filename: str) -> Any:
        svc = get_services()
        index = await readable(request, who, name)
        hidden = getattr(index, "hidden", frozenset())
        for index_id in index.dependencies():
            stored = svc.registry.record_by_id(index_id)
            if stored is None or stored.name in hidden:
                continue
            record = await svc.repo.find_file(index_id, filename)
            if record is not None:
                return record
        raise NotFound(f"No file {filename!r} in index {name!r}.")

    @api.get("/indexes/{name}/files/{filename}", response_model=m.FileOut, responses=ERRORS, tags=["files"])
    async def read_file(name: str, filename: str, request: Request, who: Reader) -> m.FileOut:
        r = await _file_record(request, who, name, filename)
        base = site_url(request)
        return m.FileOut(filename=r.filename, version=r.version, url=f"{base}files/sha256/{r.sha256}/{r.filename}",
                         sha256=r.sha256, size=r.size, requires_python=r.requires_python, yanked=r.yanked,
                         yanked_reason=r.yanked_reason, upload_time=r.upload_time, metadata_sha256=r.metadata_sha256)

    @api.delete("/indexes/{name}/files/{filename}", response_model=m.Changed, responses=ERRORS, tags=["files"])
    async def delete_file(name: str, filename: str, request: Request, who: SignedIn) -> m.Changed:
        await need(request, who, "read", name)
        record = await _file_record(request, who, name, filename)
        await need(request, who, "delete", name, record.project)
        index = await hosted(name)
        files = await index.delete(record.project, None, filename, actor=who.name, address=address(request))
        if files:
            get_services().registry.note_bump(index.id)
        return m.Changed(files=files)

    @api.post("/indexes/{name}/files/{filename}/yank", response_model=m.Changed, responses=ERRORS, tags=["files"])
    async def yank_file(name: str, filename: str, body: m.YankIn, request: Request, who: SignedIn) -> m.Changed:
        record = await _file_record(request, who, name, filename)
        return await _yank(name, record.project, None, filename, body.reason, True, who, request)

    @api.post("/indexes/{name}/files/{filename}/unyank", response_model=m.Changed, responses=ERRORS, tags=["files"])
    async def unyank_file(name: str, filename: str, request: Request, who: SignedIn) -> m.Changed:
        record = await _file_record(request, who, name, filename)
        return await _yank(name, record.project, None, filename, None, False, who, request)

    @api.post("/promote", response_model=m.Changed, responses=ERRORS, tags=["projects"])
    async def promote(body: m.PromoteIn, request: Request, who: SignedIn) -> m.Changed:
        return m.Changed(files=await promote_release(request, who, body.project, body.version, body.source, body.target))

    @api.post("/indexes/{name}/fetch", response_model=m.Changed, responses=ERRORS, tags=["projects"])
    async def fetch(name: str, body: m.FetchIn, request: Request, who: SignedIn) -> m.Changed:
        await need(request, who, "manage", name)
        index = await get_services().registry.get(name)
        if not isinstance(index, MirrorIndex):
            raise BadRequest(f"Index {name!r} is not a mirror.")
        files = await index.fetch_release(normalize(body.project), body.version)
        await get_services().repo.audit({"actor": who.name, "action": "mirror.fetch", "index_name": name,
                                         "project": normalize(body.project), "address": address(request),
                                         "detail": {"version": body.version, "files": files}})
        return m.Changed(files=files)

    # ------------------------------------------------------------ search

    @api.get("/search", response_model=list[m.SearchHit], responses=ERRORS, tags=["search"])
    async def search(
        request: Request,
        who: Reader,
        q: Annotated[str, Query(min_length=1, max_length=200, description="Text in a project's name or summary.")],
        index: Annotated[str, Query(max_length=64)] = "main",
    ) -> list[m.SearchHit]:
        svc = get_services()
        target = await readable(request, who, index)
        hidden = getattr(target, "hidden", frozenset())
        names = {r.id: r.name for r in await svc.registry.names()}
        ids = [i for i in target.dependencies() if names.get(i) not in hidden]
        # Best first; one hit per project (the first member of a virtual index that has it).
        hits: dict[str, m.SearchHit] = {}
        for hit in await ProjectSearch(svc.db).search(ids, q, limit=50 * max(1, len(ids))):
            if hit.name not in hits:
                hits[hit.name] = m.SearchHit(name=hit.name, display_name=hit.display_name, version=hit.version or "",
                                             summary=hit.summary, index=names.get(hit.index_id, index))
        return list(hits.values())[:50]

    api.include_router(accounts.router)
    api.include_router(webhooks.router)
    api.include_router(docs.router)
    return api
