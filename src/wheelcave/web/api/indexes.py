"""``/api/v1/indexes``: the indexes a caller may read, and (administrators, managers) their
creation, settings and deletion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from wheelcave.core.redact import mask_url
from wheelcave.errors import NotFound
from wheelcave.indexes.admin import IndexAdmin, default_grants
from wheelcave.web.api import models as m
from wheelcave.web.api.deps import Reader, SignedIn, need, need_admin, readable, services
from wheelcave.web.api.errors import ERRORS

__all__ = ["index_out", "router"]

router = APIRouter(responses=ERRORS)


def _shown(config: dict[str, Any], admin: bool) -> dict[str, Any]:
    """An index's settings as a caller may see them: the upstream (masked) for administrators only."""
    out = dict(config)
    if not admin:
        out.pop("upstream", None)
    elif isinstance(out.get("upstream"), str):
        out["upstream"] = mask_url(out["upstream"])
    return out


def index_out(record: Any, admin: bool) -> m.IndexOut:
    return m.IndexOut(name=record.name, kind=record.kind, config=_shown(dict(record.config), admin))


@router.get("/indexes", response_model=list[m.IndexOut], tags=["indexes"])
async def list_indexes(request: Request, who: Reader) -> list[m.IndexOut]:
    access = await services(request).auth.access()
    admin = who is not None and who.is_admin
    return [index_out(r, admin) for r in await services(request).registry.names() if access.can(who, "read", r.name)]


@router.post("/indexes", status_code=201, response_model=m.IndexOut, tags=["indexes"])
async def create_index(body: m.IndexCreate, request: Request, who: SignedIn) -> m.IndexOut:
    need_admin(who)
    svc = services(request)
    grants = default_grants(body.kind, private=body.private)
    record = await IndexAdmin(svc.repo).create(body.name, body.kind, body.config, actor=who.name, grants=grants)
    svc.registry.note_write(record.id)
    svc.auth.changed()
    return index_out(record, True)


@router.get("/indexes/{name}", response_model=m.IndexOut, tags=["indexes"])
async def read_index(name: str, request: Request, who: Reader) -> m.IndexOut:
    await readable(request, who, name)
    record = await services(request).repo.find_index(name)
    if record is None:
        raise NotFound(f"No index named {name!r}.")
    return index_out(record, who is not None and who.is_admin)


@router.patch("/indexes/{name}", response_model=m.IndexOut, tags=["indexes"])
async def update_index(name: str, body: m.IndexPatch, request: Request, who: SignedIn) -> m.IndexOut:
    await need(request, who, "manage", name)
    record = await IndexAdmin(services(request).repo).update(name, body.config, actor=who.name)
    services(request).registry.note_write(record.id)
    return index_out(record, who.is_admin)


@router.delete("/indexes/{name}", status_code=204, tags=["indexes"])
async def delete_index(name: str, request: Request, who: SignedIn) -> Response:
    need_admin(who)
    await IndexAdmin(services(request).repo).delete(name, actor=who.name)
    services(request).registry.note_write(0)
    services(request).auth.changed()
    return Response(status_code=204)
