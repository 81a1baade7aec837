"""``/api/v1``: who may do what. Users, groups, tokens, per-index access lists, project owners,
trusted publishers and the audit log.

Granting rights (users, groups, grants, publishers) is for administrators. Anyone signed in may
make tokens for themselves, never with a right they do not hold; an owner of a project (or a
manager of its index) may add and remove its owners.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from wheelcave.auth.access import Scope
from wheelcave.config import ConfigError, parse_duration
from wheelcave.core.names import normalize
from wheelcave.db.accounts import PublisherRecord, TokenRecord
from wheelcave.errors import BadRequest, Forbidden, NotFound
from wheelcave.web.api import models as m
from wheelcave.web.api.deps import Caller, SignedIn, actor, need, need_admin, readable, services
from wheelcave.web.api.errors import ERRORS

__all__ = ["router"]

Id = Annotated[int, Path(ge=0, le=2**31 - 1)]
router = APIRouter(responses=ERRORS)


def _listed(value: Any) -> list[str] | None:
    return None if value is None else sorted(str(v) for v in value)


def _token_out(t: TokenRecord) -> m.TokenOut:
    scope = t.scope or {}
    return m.TokenOut(id=t.id, user=t.user_name, prefix=t.prefix, description=t.description,
                      indexes=_listed(scope.get("indexes")), projects=_listed(scope.get("projects")),
                      permissions=_listed(scope.get("permissions")), created_at=t.created_at,
                      last_used=t.last_used, expires_at=t.expires_at)


def _publisher_out(p: PublisherRecord) -> m.PublisherOut:
    return m.PublisherOut(id=p.id, index=p.index_name, project=p.project, issuer=p.issuer, claims=dict(p.claims),
                          created_at=p.created_at, created_by=p.created_by)


# ------------------------------------------------------------ who am I, users

@router.get("/whoami", response_model=m.WhoAmI, tags=["users"])
async def whoami(who: Caller) -> m.WhoAmI:
    if who is None:
        return m.WhoAmI(name=None, is_admin=False)
    scope = who.scope
    return m.WhoAmI(name=who.name, is_admin=who.is_admin, groups=sorted(who.groups),
                    indexes=_listed(scope.indexes) if scope else None, projects=_listed(scope.projects) if scope else None,
                    permissions=_listed(scope.permissions) if scope else None, expires_at=who.expires_at)


@router.get("/users", response_model=list[m.UserOut], tags=["users"])
async def list_users(request: Request, who: SignedIn) -> list[m.UserOut]:
    need_admin(who)
    return [m.UserOut(name=u.name, is_admin=u.is_admin) for u in await services(request).accounts.list_users()]


@router.post("/users", status_code=201, response_model=m.UserOut, tags=["users"])
async def create_user(body: m.UserIn, request: Request, who: SignedIn) -> m.UserOut:
    need_admin(who)
    record = await services(request).people.add_user(body.name, body.password, is_admin=body.is_admin,
                                                     actor=actor(request, who))
    return m.UserOut(name=record.name, is_admin=record.is_admin)


@router.patch("/users/{name}", status_code=204, tags=["users"])
async def update_user(name: str, body: m.UserPatch, request: Request, who: SignedIn) -> Response:
    """A new password (yourself, signed in with your password; or an administrator), or the
    administrator flag (administrators)."""
    people = services(request).people
    if body.is_admin is not None or name != who.name:
        need_admin(who)
    elif who.token_id is not None:
        raise Forbidden("Change your password signed in with your password, not a token.")
    if body.password is not None:
        await people.set_password(name, body.password, actor=actor(request, who))
    if body.is_admin is not None:
        await people.set_admin(name, body.is_admin, actor=actor(request, who))
    return Response(status_code=204)


@router.delete("/users/{name}", status_code=204, tags=["users"])
async def delete_user(name: str, request: Request, who: SignedIn) -> Response:
    need_admin(who)
    if name == who.name:
        raise BadRequest("An administrator cannot remove themselves; another administrator can.")
    await services(request).people.remove_user(name, actor=actor(request, who))
    return Response(status_code=204)


# ------------------------------------------------------------ groups

@router.get("/groups", response_model=list[m.GroupOut], tags=["groups"])
async def list_groups(request: Request, who: SignedIn) -> list[m.GroupOut]:
    need_admin(who)
    return [m.GroupOut(name=n, members=u) for n, u in (await services(request).accounts.list_groups()).items()]


@router.post("/groups", status_code=201, response_model=m.GroupOut, tags=["groups"])
async def create_group(body: m.GroupIn, request: Request, who: SignedIn) -> m.GroupOut:
    need_admin(who)
    await services(request).people.add_group(body.name, actor=actor(request, who))
    return m.GroupOut(name=body.name, members=[])


@router.delete("/groups/{name}", status_code=204, tags=["groups"])
async def delete_group(name: str, request: Request, who: SignedIn) -> Response:
    need_admin(who)
    await services(request).people.remove_group(name, actor=actor(request, who))
    return Response(status_code=204)


@router.post("/groups/{name}/members", response_model=m.GroupOut, tags=["groups"])
async def add_members(name: str, body: m.MembersIn, request: Request, who: SignedIn) -> m.GroupOut:
    need_admin(who)
    svc = services(request)
    await svc.people.set_members(name, body.users, member=True, actor=actor(request, who))
    return m.GroupOut(name=name, members=(await svc.accounts.list_groups()).get(name, []))


@router.delete("/groups/{name}/members/{user}", response_model=m.GroupOut, tags=["groups"])
async def remove_member(name: str, user: str, request: Request, who: SignedIn) -> m.GroupOut:
    need_admin(who)
    svc = services(request)
    await svc.people.set_members(name, [user], member=False, actor=actor(request, who))
    return m.GroupOut(name=name, members=(await svc.accounts.list_groups()).get(name, []))


# ------------------------------------------------------------ access lists

@router.get("/indexes/{name}/acl", response_model=list[m.AclEntry], tags=["access"])
async def read_acl(name: str, request: Request, who: SignedIn) -> list[m.AclEntry]:
    await need(request, who, "manage", name)
    access = await services(request).auth.access()
    return [m.AclEntry(principal=p, permissions=sorted(perms)) for p, perms in access.entries(name).items()]


async def _set_grants(name: str, body: m.GrantIn, request: Request, who: Any, *, granted: bool) -> list[m.AclEntry]:
    need_admin(who)
    svc = services(request)
    await svc.people.set_grants(name, body.principal, list(body.permissions), granted=granted, actor=actor(request, who))
    access = await svc.auth.access()
    return [m.AclEntry(principal=p, permissions=sorted(perms)) for p, perms in access.entries(name).items()]


@router.post("/indexes/{name}/acl/grant", response_model=list[m.AclEntry], tags=["access"])
async def grant(name: str, body: m.GrantIn, request: Request, who: SignedIn) -> list[m.AclEntry]:
    return await _set_grants(name, body, request, who, granted=True)


@router.post("/indexes/{name}/acl/revoke", response_model=list[m.AclEntry], tags=["access"])
async def revoke(name: str, body: m.GrantIn, request: Request, who: SignedIn) -> list[m.AclEntry]:
    return await _set_grants(name, body, request, who, granted=False)


# ------------------------------------------------------------ project owners

async def _owners_index(request: Request, who: Any, name: str) -> int:
    await readable(request, who, name)
    record = await services(request).repo.find_index(name)
    if record is None or record.kind != "hosted":
        raise NotFound(f"No hosted index named {name!r}.")
    return record.id


@router.get("/indexes/{name}/projects/{project}/owners", response_model=list[str], tags=["access"])
async def read_owners(name: str, project: str, request: Request, who: SignedIn) -> list[str]:
    index_id = await _owners_index(request, who, name)
    return await services(request).accounts.owners(index_id, normalize(project))


async def _change_owner(name: str, project: str, principal: str, request: Request, who: Any, *, owner: bool) -> list[str]:
    svc = services(request)
    index_id = await _owners_index(request, who, name)
    owners = await svc.accounts.owners(index_id, normalize(project))
    access = await svc.auth.access()
    if not (who.owner_keys & set(owners) or access.can(who, "manage", name)) or not who.allows_project(normalize(project)):
        raise Forbidden(f"Only an owner of {project!r} (or a manager of index {name!r}) changes its owners.")
    await svc.people.set_owner(name, project, principal, owner=owner, actor=actor(request, who))
    return await svc.accounts.owners(index_id, normalize(project))


@router.post("/indexes/{name}/projects/{project}/owners", response_model=list[str], tags=["access"])
async def add_owner(name: str, project: str, body: m.OwnerIn, request: Request, who: SignedIn) -> list[str]:
    return await _change_owner(name, project, body.principal, request, who, owner=True)


@router.delete("/indexes/{name}/projects/{project}/owners/{principal}", response_model=list[str], tags=["access"])
async def remove_owner(name: str, project: str, principal: str, request: Request, who: SignedIn) -> list[str]:
    return await _change_owner(name, project, principal, request, who, owner=False)


# ------------------------------------------------------------ tokens

@router.get("/tokens", response_model=list[m.TokenOut], tags=["tokens"])
async def list_tokens(request: Request, who: SignedIn) -> list[m.TokenOut]:
    tokens = await services(request).accounts.list_tokens(None if who.is_admin else who.name)
    return [_token_out(t) for t in tokens if who.is_admin or t.user_name == who.name]


@router.post("/tokens", status_code=201, response_model=m.TokenCreated, tags=["tokens"])
async def create_token(body: m.TokenIn, request: Request, who: SignedIn) -> m.TokenCreated:
    """A token for yourself (signed in with your password or an unlimited token), never with a
    right you do not hold; administrators may make them for others."""
    owner = body.user or who.name
    if owner != who.name or who.scope is not None or who.publisher_index is not None:
        need_admin(who)  # tokens for others, or made by a limited token: administrators only
    if body.index is not None and body.indexes is not None:
        raise BadRequest("give index or indexes, not both")
    indexes = [body.index] if body.index is not None else body.indexes
    permissions = list(body.permissions) if body.permissions else None
    if indexes is not None and permissions is None:
        permissions = ["upload"]  # a token for an index uploads unless told otherwise (as before)
    scope = None
    if indexes is not None or body.projects is not None or permissions is not None:
        scope = Scope(frozenset(indexes) if indexes is not None else None,
                      frozenset(normalize(p) for p in body.projects) if body.projects is not None else None,
                      frozenset(permissions) if permissions is not None else None)
    expires_in = None
    if body.expires_in is not None:
        try:
            expires_in = parse_duration(body.expires_in)
        except ConfigError as exc:
            raise BadRequest(str(exc)) from None
    svc = services(request)
    token_id, secret = await svc.people.create_token(owner, description=body.description, scope=scope,
                                                     expires_in=expires_in, actor=actor(request, who))
    created = next(t for t in await svc.accounts.list_tokens(owner) if t.id == token_id)
    return m.TokenCreated(**_token_out(created).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"])
async def delete_token(token_id: Id, request: Request, who: SignedIn) -> Response:
    await services(request).people.revoke_token(token_id, by=who, actor=actor(request, who))
    return Response(status_code=204)


# ------------------------------------------------------------ trusted publishers

@router.get("/publishers", response_model=list[m.PublisherOut], tags=["access"])
async def list_publishers(request: Request, who: SignedIn) -> list[m.PublisherOut]:
    need_admin(who)
    return [_publisher_out(p) for p in await services(request).accounts.publishers()]


@router.post("/indexes/{name}/publishers", status_code=201, response_model=m.PublisherOut, tags=["access"])
async def add_publisher(name: str, body: m.PublisherIn, request: Request, who: SignedIn) -> m.PublisherOut:
    need_admin(who)
    svc = services(request)
    publisher_id = await svc.people.add_publisher(name, body.issuer, body.claims, body.project, actor=actor(request, who))
    return _publisher_out(next(p for p in await svc.accounts.publishers() if p.id == publisher_id))


@router.delete("/publishers/{publisher_id}", status_code=204, tags=["access"])
async def delete_publisher(publisher_id: Id, request: Request, who: SignedIn) -> Response:
    need_admin(who)
    await services(request).people.remove_publisher(publisher_id, actor=actor(request, who))
    return Response(status_code=204)


# ------------------------------------------------------------ audit

@router.get("/audit", response_model=list[m.AuditEntry], tags=["audit"])
async def audit(
    request: Request,
    who: SignedIn,
    index: Annotated[str | None, Query(max_length=64)] = None,
    actor_name: Annotated[str | None, Query(alias="actor", max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    project: Annotated[str | None, Query(max_length=200)] = None,
    before: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Entries older than this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[m.AuditEntry]:
    """Administrators see everything; a manager of an index sees that index's entries."""
    if not who.is_admin:
        if index is None:
            raise Forbidden("The audit log is for administrators (managers of an index: name it with ?index=).")
        await need(request, who, "manage", index)
    entries = await services(request).repo.audit_entries(limit, index=index, actor=actor_name, action=action,
                                                         project=project, before_id=before)
    return [m.AuditEntry(id=e["id"], at=e["at"], actor=e["actor"], action=e["action"], index=e["index_name"],
                         project=e["project"], filename=e["filename"], address=e["address"],
                         detail=e["detail"] if isinstance(e["detail"], dict) else None) for e in entries]
