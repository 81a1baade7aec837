"""``/api/v1``: projects, releases and files of an index (read, yank, delete), promotion between
indexes, pulling a release into a mirror, and search. Reads follow each index's access list;
every change needs the right grant and lands in the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from wheelcave.core.names import normalize
from wheelcave.core.pages import FileEntry
from wheelcave.core.versions import same_release
from wheelcave.db.search import ProjectSearch
from wheelcave.errors import BadRequest, NotFound
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.indexes.mirror import MirrorIndex
from wheelcave.web import actions
from wheelcave.web.actions import promote_release
from wheelcave.web.api import models as m
from wheelcave.web.api.deps import Reader, SignedIn, need, readable, services
from wheelcave.web.api.errors import ERRORS
from wheelcave.web.deps import site_url

__all__ = ["router"]

router = APIRouter(responses=ERRORS)


def _file(f: FileEntry, base: str) -> m.FileOut:
    return m.FileOut(
        filename=f.filename, version=f.version, url=base + f.url, sha256=f.sha256, size=f.size,
        requires_python=f.requires_python, yanked=f.yanked, yanked_reason=f.yanked_reason,
        upload_time=f.upload_time, metadata_sha256=f.metadata_sha256,
    )


def address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def hosted(request: Request, name: str) -> HostedIndex:
    index = await services(request).registry.get(name)
    if not isinstance(index, HostedIndex):
        raise BadRequest(f"Index {name!r} is a {index.kind} index; this needs a hosted one.")
    return index


@router.get("/indexes/{name}/projects", response_model=list[m.ProjectSummary], tags=["projects"])
async def list_projects(name: str, request: Request, who: Reader) -> list[m.ProjectSummary]:
    index = await readable(request, who, name)
    return [m.ProjectSummary(name=n, display_name=d) for n, d in await index.list_projects()]


async def _page(request: Request, who: Any, name: str, project: str) -> Any:
    index = await readable(request, who, name)
    page = await index.project(normalize(project))
    if page is None:
        raise NotFound(f"Project {project!r} not found in index {name!r}.")
    return page


@router.get("/indexes/{name}/projects/{project}", response_model=m.ProjectOut, tags=["projects"])
async def read_project(name: str, project: str, request: Request, who: Reader) -> m.ProjectOut:
    page = await _page(request, who, name, project)
    base = site_url(request)
    return m.ProjectOut(name=page.name, display_name=page.display_name, versions=page.versions,
                        files=[_file(f, base) for f in page.files])


@router.delete("/indexes/{name}/projects/{project}", response_model=m.Changed, tags=["projects"])
async def delete_project(name: str, project: str, request: Request, who: SignedIn) -> m.Changed:
    await need(request, who, "delete", name, normalize(project))
    index = await hosted(request, name)
    files = await index.delete(project, actor=who.name, address=address(request))
    if files:  # this process's pages and file URLs change at once
        services(request).registry.note_bump(index.id)
    return m.Changed(files=files)


@router.get("/indexes/{name}/projects/{project}/versions/{version}", response_model=m.ReleaseOut,
         tags=["projects"])
async def read_release(name: str, project: str, version: str, request: Request, who: Reader) -> m.ReleaseOut:
    page = await _page(request, who, name, project)
    files = [f for f in page.files if same_release(f.version, version)]
    if not files:
        raise NotFound(f"Project {project!r} has no release {version!r} in index {name!r}.")
    base = site_url(request)
    return m.ReleaseOut(project=page.name, version=files[0].version, files=[_file(f, base) for f in files])


@router.delete("/indexes/{name}/projects/{project}/versions/{version}", response_model=m.Changed,
            tags=["projects"])
async def delete_release(name: str, project: str, version: str, request: Request, who: SignedIn) -> m.Changed:
    return m.Changed(files=await actions.delete_release(request, who, name, project, version))


async def _yank(name: str, project: str, version: str | None, filename: str | None, reason: str | None,
                yanked: bool, who: Any, request: Request) -> m.Changed:
    await need(request, who, "yank", name, normalize(project))
    index = await hosted(request, name)
    files = await index.set_yanked(project, version, yanked=yanked, reason=reason, filename=filename,
                                   actor=who.name, address=address(request))
    if files:
        services(request).registry.note_bump(index.id)
    return m.Changed(files=files)


@router.post("/indexes/{name}/projects/{project}/versions/{version}/yank", response_model=m.Changed,
          tags=["projects"])
async def yank_release(name: str, project: str, version: str, body: m.YankIn, request: Request, who: SignedIn) -> m.Changed:
    return await _yank(name, project, version, None, body.reason, True, who, request)


@router.post("/indexes/{name}/projects/{project}/versions/{version}/unyank", response_model=m.Changed,
          tags=["projects"])
async def unyank_release(name: str, project: str, version: str, request: Request, who: SignedIn) -> m.Changed:
    return await _yank(name, project, version, None, None, False, who, request)


async def _file_record(request: Request, who: Any, name: str, filename: str) -> Any:
    svc = services(request)
    index = await readable(request, who, name)
    hidden = getattr(index, "hidden", frozenset())
    for index_id in index.dependencies():
        stored = svc.registry.record_by_id(index_id)
        if stored is None or stored.name in hidden:
            continue
        record = await svc.repo.find_file(index_id, filename)
        member = svc.registry.by_id(index_id) if record is None else None
        if isinstance(member, MirrorIndex):  # a file nobody asked for yet has no row
            record = await member.record_named(filename)
        if record is not None:
            return record
    raise NotFound(f"No file {filename!r} in index {name!r}.")


@router.get("/indexes/{name}/files/{filename}", response_model=m.FileOut, tags=["files"])
async def read_file(name: str, filename: str, request: Request, who: Reader) -> m.FileOut:
    r = await _file_record(request, who, name, filename)
    base = site_url(request)
    return m.FileOut(filename=r.filename, version=r.version, url=f"{base}files/sha256/{r.sha256}/{r.filename}",
                     sha256=r.sha256, size=r.size, requires_python=r.requires_python, yanked=r.yanked,
                     yanked_reason=r.yanked_reason, upload_time=r.upload_time, metadata_sha256=r.metadata_sha256)


@router.delete("/indexes/{name}/files/{filename}", response_model=m.Changed, tags=["files"])
async def delete_file(name: str, filename: str, request: Request, who: SignedIn) -> m.Changed:
    await need(request, who, "read", name)
    record = await _file_record(request, who, name, filename)
    await need(request, who, "delete", name, record.project)
    index = await hosted(request, name)
    files = await index.delete(record.project, None, filename, actor=who.name, address=address(request))
    if files:
        services(request).registry.note_bump(index.id)
    return m.Changed(files=files)


@router.post("/indexes/{name}/files/{filename}/yank", response_model=m.Changed, tags=["files"])
async def yank_file(name: str, filename: str, body: m.YankIn, request: Request, who: SignedIn) -> m.Changed:
    record = await _file_record(request, who, name, filename)
    return await _yank(name, record.project, None, filename, body.reason, True, who, request)


@router.post("/indexes/{name}/files/{filename}/unyank", response_model=m.Changed, tags=["files"])
async def unyank_file(name: str, filename: str, request: Request, who: SignedIn) -> m.Changed:
    record = await _file_record(request, who, name, filename)
    return await _yank(name, record.project, None, filename, None, False, who, request)


@router.post("/promote", response_model=m.Changed, tags=["projects"])
async def promote(body: m.PromoteIn, request: Request, who: SignedIn) -> m.Changed:
    return m.Changed(files=await promote_release(request, who, body.project, body.version, body.source, body.target))


@router.post("/indexes/{name}/fetch", response_model=m.Changed, tags=["projects"])
async def fetch(name: str, body: m.FetchIn, request: Request, who: SignedIn) -> m.Changed:
    await need(request, who, "manage", name)
    index = await services(request).registry.get(name)
    if not isinstance(index, MirrorIndex):
        raise BadRequest(f"Index {name!r} is not a mirror.")
    files = await index.fetch_release(normalize(body.project), body.version)
    await services(request).repo.audit({"actor": who.name, "action": "mirror.fetch", "index_name": name,
                                     "project": normalize(body.project), "address": address(request),
                                     "detail": {"version": body.version, "files": files}})
    return m.Changed(files=files)


@router.get("/search", response_model=list[m.SearchHit], tags=["search"])
async def search(
    request: Request,
    who: Reader,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Text in a project's name or summary.")],
    index: Annotated[str, Query(max_length=64)] = "main",
) -> list[m.SearchHit]:
    svc = services(request)
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
