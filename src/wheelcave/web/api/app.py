"""``/api/v1``: indexes, projects, releases, files, yank, delete, promote, fetch, search, audit,
users and tokens. Reads follow ``anonymous_read``; every change needs credentials and the
right permission (an administrator, or a token scoped to the index), and lands in the audit log.
"""


from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wheelcave import __version__
from wheelcave.auth.service import Principal
from wheelcave.core.errors import CoreError
from wheelcave.core.names import normalize
from wheelcave.core.pages import FileEntry
from wheelcave.core.versions import same_release, version_key
from wheelcave.errors import BadRequest, Forbidden, NotFound, Unauthorized, WheelcaveError
from wheelcave.indexes.admin import IndexAdmin
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.indexes.mirror import MirrorIndex
from wheelcave.services import Services
from wheelcave.upstream.client import mask_url
from wheelcave.web.api import models as m

__all__ = ["create_api"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.Error, "description": text}
    for code, text in ((400, "Bad input"), (401, "Credentials needed or wrong"), (403, "Not allowed"),
                       (404, "Not found"), (409, "Conflict"), (502, "Upstream failed"), (504, "Upstream timed out"))
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="wheelcave"'} if status == 401 else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _masked(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    if isinstance(out.get("upstream"), str):
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
        title="wheelcave", version=__version__, openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
        description="Management API of a wheelcave package index. Authenticate with HTTP Basic "
        "(user and password, or __token__ and an API token).",
    )

    @api.exception_handler(WheelcaveError)
    async def _wheelcave_error(_: Request, exc: WheelcaveError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

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

    async def principal(request: Request) -> Principal | None:
        return await get_services().auth.authenticate(request.headers.get("authorization"))

    async def reader(who: Annotated[Principal | None, Depends(principal)]) -> Principal | None:
        if who is None and not get_services().settings.anonymous_read:
            raise Unauthorized("This index needs credentials to read.")
        return who

    async def signed_in(who: Annotated[Principal | None, Depends(principal)]) -> Principal:
        if who is None:
            raise Unauthorized("This needs credentials: HTTP Basic with a user and password or __token__.")
        return who

    def need(who: Principal, action: str, index: str | None) -> None:
        if not who.can(action, index):
            where = f" on index {index!r}" if index else ""
            raise Forbidden(f"The user {who.name!r} isn't allowed to {action}{where}.")

    def address(request: Request) -> str | None:
        return request.client.host if request.client else None

    Reader = Annotated[Principal | None, Depends(reader)]
    SignedIn = Annotated[Principal, Depends(signed_in)]

    async def hosted(name: str) -> HostedIndex:
        index = await get_services().registry.get(name)
        if not isinstance(index, HostedIndex):
            raise BadRequest(f"Index {name!r} is a {index.kind} index; this needs a hosted one.")
        return index

    # ------------------------------------------------------------ indexes

    @api.get("/indexes", response_model=list[m.IndexOut], responses=ERRORS, tags=["indexes"])
    async def list_indexes(_: Reader) -> list[m.IndexOut]:
        return [m.IndexOut(name=r.name, kind=r.kind, config=_masked(dict(r.config)))  # type: ignore[arg-type]
                for r in await get_services().registry.names()]

    @api.post("/indexes", status_code=201, response_model=m.IndexOut, responses=ERRORS, tags=["indexes"])
    async def create_index(body: m.IndexCreate, who: SignedIn) -> m.IndexOut:
        need(who, "manage", None)
        record = await IndexAdmin(get_services().repo).create(body.name, body.kind, body.config, actor=who.name)
        get_services().registry.note_write(record.id)
        return m.IndexOut(name=record.name, kind=record.kind, config=_masked(dict(record.config)))  # type: ignore[arg-type]

    @api.get("/indexes/{name}", response_model=m.IndexOut, responses=ERRORS, tags=["indexes"])
    async def read_index(name: str, _: Reader) -> m.IndexOut:
        record = await get_services().repo.find_index(name)
        if record is None:
            raise NotFound(f"No index named {name!r}.")
        return m.IndexOut(name=record.name, kind=record.kind, config=_masked(dict(record.config)))  # type: ignore[arg-type]

    @api.patch("/indexes/{name}", response_model=m.IndexOut, responses=ERRORS, tags=["indexes"])
    async def update_index(name: str, body: m.IndexPatch, who: SignedIn) -> m.IndexOut:
        need(who, "manage", name)
        record = await IndexAdmin(get_services().repo).update(name, body.config, actor=who.name)
        get_services().registry.note_write(record.id)
        return m.IndexOut(name=record.name, kind=record.kind, config=_masked(dict(record.config)))  # type: ignore[arg-type]

    @api.delete("/indexes/{name}", status_code=204, responses=ERRORS, tags=["indexes"])
    async def delete_index(name: str, who: SignedIn) -> Response:
        need(who, "manage", None)
        await IndexAdmin(get_services().repo).delete(name, actor=who.name)
        get_services().registry.note_write(0)
        return Response(status_code=204)

    # ------------------------------------------------------------ projects, releases, files

    @api.get("/indexes/{name}/projects", response_model=list[m.ProjectSummary], responses=ERRORS, tags=["projects"])
    async def list_projects(name: str, _: Reader) -> list[m.ProjectSummary]:
        index = await get_services().registry.get(name)
        return [m.ProjectSummary(name=n, display_name=d) for n, d in await index.list_projects()]

    async def _page(name: str, project: str) -> Any:
        index = await get_services().registry.get(name)
        page = await index.project(normalize(project))
        if page is None:
            raise NotFound(f"Project {project!r} not found in index {name!r}.")
        return page

    @api.get("/indexes/{name}/projects/{project}", response_model=m.ProjectOut, responses=ERRORS, tags=["projects"])
    async def read_project(name: str, project: str, request: Request, _: Reader) -> m.ProjectOut:
        page = await _page(name, project)
        base = str(request.base_url).removesuffix("api/v1/")
        return m.ProjectOut(name=page.name, display_name=page.display_name, versions=page.versions,
                            files=[_file(f, base) for f in page.files])

    @api.delete("/indexes/{name}/projects/{project}", response_model=m.Changed, responses=ERRORS, tags=["projects"])
    async def delete_project(name: str, project: str, request: Request, who: SignedIn) -> m.Changed:
        need(who, "delete", name)
        index = await hosted(name)
        files = await index.delete(project, actor=who.name, address=address(request))
        if files:  # this process's pages and file URLs change at once
            get_services().registry.note_bump(index.id)
        return m.Changed(files=files)

    @api.get("/indexes/{name}/projects/{project}/versions/{version}", response_model=m.ReleaseOut,
             responses=ERRORS, tags=["projects"])
    async def read_release(name: str, project: str, version: str, request: Request, _: Reader) -> m.ReleaseOut:
        page = await _page(name, project)
        files = [f for f in page.files if same_release(f.version, version)]
        if not files:
            raise NotFound(f"Project {project!r} has no release {version!r} in index {name!r}.")
        base = str(request.base_url).removesuffix("api/v1/")
        return m.ReleaseOut(project=page.name, version=files[0].version, files=[_file(f, base) for f in files])

    @api.delete("/indexes/{name}/projects/{project}/versions/{version}", response_model=m.Changed,
                responses=ERRORS, tags=["projects"])
    async def delete_release(name: str, project: str, version: str, request: Request, who: SignedIn) -> m.Changed:
        need(who, "delete", name)
        index = await hosted(name)
        files = await index.delete(project, version, actor=who.name, address=address(request))
        if files:
            get_services().registry.note_bump(index.id)
        return m.Changed(files=files)

    async def _yank(name: str, project: str, version: str | None, filename: str | None, reason: str | None,
                    yanked: bool, who: Principal, request: Request) -> m.Changed:
        need(who, "yank", name)
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

    async def _file_record(name: str, filename: str) -> Any:
        svc = get_services()
        index = await svc.registry.get(name)
        for index_id in index.dependencies():
            record = await svc.repo.find_file(index_id, filename)
            if record is not None:
                return record
        raise NotFound(f"No file {filename!r} in index {name!r}.")

    @api.get("/indexes/{name}/files/{filename}", response_model=m.FileOut, responses=ERRORS, tags=["files"])
    async def read_file(name: str, filename: str, request: Request, _: Reader) -> m.FileOut:
        r = await _file_record(name, filename)
        base = str(request.base_url).removesuffix("api/v1/")
        return m.FileOut(filename=r.filename, version=r.version, url=f"{base}files/sha256/{r.sha256}/{r.filename}",
                         sha256=r.sha256, size=r.size, requires_python=r.requires_python, yanked=r.yanked,
                         yanked_reason=r.yanked_reason, upload_time=r.upload_time, metadata_sha256=r.metadata_sha256)

    @api.delete("/indexes/{name}/files/{filename}", response_model=m.Changed, responses=ERRORS, tags=["files"])
    async def delete_file(name: str, filename: str, request: Request, who: SignedIn) -> m.Changed:
        need(who, "delete", name)
        index = await hosted(name)
        record = await _file_record(name, filename)
        return m.Changed(files=await index.delete(record.project, None, filename, actor=who.name, address=address(request)))

    @api.post("/indexes/{name}/files/{filename}/yank", response_model=m.Changed, responses=ERRORS, tags=["files"])
    async def yank_file(name: str, filename: str, body: m.YankIn, request: Request, who: SignedIn) -> m.Changed:
        record = await _file_record(name, filename)
        return await _yank(name, record.project, None, filename, body.reason, True, who, request)

    @api.post("/indexes/{name}/files/{filename}/unyank", response_model=m.Changed, responses=ERRORS, tags=["files"])
    async def unyank_file(name: str, filename: str, request: Request, who: SignedIn) -> m.Changed:
        record = await _file_record(name, filename)
        return await _yank(name, record.project, None, filename, None, False, who, request)

    @api.post("/promote", response_model=m.Changed, responses=ERRORS, tags=["projects"])
    async def promote(body: m.PromoteIn, request: Request, who: SignedIn) -> m.Changed:
        need(who, "upload", body.target)
        files = await get_services().registry.promote(body.project, body.version, body.source, body.target,
                                                      actor=who.name, address=address(request))
        return m.Changed(files=files)

    @api.post("/indexes/{name}/fetch", response_model=m.Changed, responses=ERRORS, tags=["projects"])
    async def fetch(name: str, body: m.FetchIn, request: Request, who: SignedIn) -> m.Changed:
        need(who, "manage", name)
        index = await get_services().registry.get(name)
        if not isinstance(index, MirrorIndex):
            raise BadRequest(f"Index {name!r} is not a mirror.")
        files = await index.fetch_release(normalize(body.project), body.version)
        await get_services().repo.audit({"actor": who.name, "action": "mirror.fetch", "index_name": name,
                                         "project": normalize(body.project), "address": address(request),
                                         "detail": {"version": body.version, "files": files}})
        return m.Changed(files=files)

    # ------------------------------------------------------------ search and audit

    @api.get("/search", response_model=list[m.SearchHit], responses=ERRORS, tags=["search"])
    async def search(
        _: Reader,
        q: Annotated[str, Query(min_length=1, max_length=200, description="Text in a project's name or summary.")],
        index: Annotated[str, Query(max_length=64)] = "main",
    ) -> list[m.SearchHit]:
        svc = get_services()
        target = await svc.registry.get(index)
        names = {r.id: r.name for r in await svc.registry.names()}
        best: dict[str, tuple[Any, ...]] = {}
        for index_id, project, display, version, summary in await svc.repo.search(target.dependencies(), q):
            key = version_key(version)
            if project not in best or key > best[project][0]:
                best[project] = (key, display, version, summary, names.get(index_id, index))
        return [m.SearchHit(name=p, display_name=v[1], version=v[2], summary=v[3], index=v[4])
                for p, v in sorted(best.items())][:50]

    @api.get("/audit", response_model=list[m.AuditEntry], responses=ERRORS, tags=["audit"])
    async def audit(
        who: SignedIn,
        index: Annotated[str | None, Query(max_length=64)] = None,
        actor: Annotated[str | None, Query(max_length=64)] = None,
        action: Annotated[str | None, Query(max_length=32)] = None,
        project: Annotated[str | None, Query(max_length=200)] = None,
        before: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Entries older than this id.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[m.AuditEntry]:
        if not who.is_admin:
            if who.index is None or (index is not None and index != who.index):
                raise Forbidden("The audit log is for administrators (or a token's own index).")
            index = who.index
        entries = await get_services().repo.audit_entries(limit, index=index, actor=actor, action=action,
                                                          project=project, before_id=before)
        return [m.AuditEntry(id=e["id"], at=e["at"], actor=e["actor"], action=e["action"], index=e["index_name"],
                             project=e["project"], filename=e["filename"], address=e["address"],
                             detail=e["detail"] if isinstance(e["detail"], dict) else None) for e in entries]

    # ------------------------------------------------------------ users and tokens

    @api.get("/whoami", response_model=m.WhoAmI, responses=ERRORS, tags=["users"])
    async def whoami(who: Annotated[Principal | None, Depends(principal)]) -> m.WhoAmI:
        if who is None:
            return m.WhoAmI(name=None, is_admin=False, index=None, permissions=[])
        return m.WhoAmI(name=who.name, is_admin=who.is_admin, index=who.index, permissions=sorted(who.permissions))

    @api.get("/users", response_model=list[m.UserOut], responses=ERRORS, tags=["users"])
    async def list_users(who: SignedIn) -> list[m.UserOut]:
        need(who, "manage", None)
        return [m.UserOut(name=u.name, is_admin=u.is_admin) for u in await get_services().repo.list_users()]

    @api.post("/users", status_code=201, response_model=m.UserOut, responses=ERRORS, tags=["users"])
    async def create_user(body: m.UserIn, who: SignedIn) -> m.UserOut:
        need(who, "manage", None)
        record = await get_services().auth.add_user(body.name, body.password, is_admin=body.is_admin, actor=who.name)
        return m.UserOut(name=record.name, is_admin=record.is_admin)

    def _token_out(t: Any) -> m.TokenOut:
        return m.TokenOut(id=t.id, user=t.user_name, prefix=t.prefix, description=t.description, index=t.index_name,
                          permissions=t.permissions.split(",") if t.permissions else None, created_at=t.created_at)

    @api.get("/tokens", response_model=list[m.TokenOut], responses=ERRORS, tags=["users"])
    async def list_tokens(who: SignedIn) -> list[m.TokenOut]:
        tokens = await get_services().repo.list_tokens(None if who.is_admin else who.name)
        return [_token_out(t) for t in tokens]

    @api.post("/tokens", status_code=201, response_model=m.TokenCreated, responses=ERRORS, tags=["users"])
    async def create_token(body: m.TokenIn, request: Request, who: SignedIn) -> m.TokenCreated:
        user = body.user or who.name
        if user != who.name or who.index is not None:
            need(who, "manage", None)  # tokens for others, or from a scoped token: admins only
        svc = get_services()
        if body.index is not None and await svc.repo.find_index(body.index) is None:
            raise BadRequest(f"No index named {body.index!r}.")
        token_id, secret = await svc.auth.create_token(
            user, body.description, index=body.index, permissions=list(body.permissions) if body.permissions else None,
            actor=who.name, address=address(request))
        created = next(t for t in await svc.repo.list_tokens(user) if t.id == token_id)
        return m.TokenCreated(**_token_out(created).model_dump(), token=secret)

    @api.delete("/tokens/{token_id}", status_code=204, responses=ERRORS, tags=["users"])
    async def delete_token(token_id: Annotated[int, Path(ge=0, le=2**31 - 1)], request: Request, who: SignedIn) -> Response:
        svc = get_services()
        token = next((t for t in await svc.repo.list_tokens() if t.id == token_id), None)
        if token is None or (token.user_name != who.name and not who.is_admin):
            raise NotFound(f"No token with id {token_id}.")
        await svc.repo.delete_token(token_id)
        await svc.repo.audit({"actor": who.name, "action": "token.revoke", "address": address(request),
                              "detail": {"id": token_id, "user": token.user_name}})
        return Response(status_code=204)

    return api
