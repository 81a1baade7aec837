"""What the API's routes share: the services, the caller, and the checks on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from wheelcave.auth.access import AccessList, Principal
from wheelcave.auth.admin import Actor
from wheelcave.errors import Forbidden, NotFound, Unauthorized
from wheelcave.indexes.base import Index
from wheelcave.web.access import caller, deny, hidden_members
from wheelcave.web.deps import services

__all__ = ["Caller", "Reader", "SignedIn", "actor", "need", "need_admin", "readable", "services"]


async def _principal(request: Request) -> Principal | None:
    return await caller(request)


async def _reader(request: Request, who: Annotated[Principal | None, Depends(_principal)]) -> Principal | None:
    if who is None and not services(request).settings.anonymous_read:
        raise Unauthorized("This index needs credentials to read.")
    return who


async def _signed_in(who: Annotated[Principal | None, Depends(_principal)]) -> Principal:
    if who is None:
        raise Unauthorized("This needs credentials: HTTP Basic with a user and password or __token__.")
    return who


Caller = Annotated[Principal | None, Depends(_principal)]
Reader = Annotated[Principal | None, Depends(_reader)]
SignedIn = Annotated[Principal, Depends(_signed_in)]


def actor(request: Request, who: Principal) -> Actor:
    return Actor(who.name, request.client.host if request.client else None)


def need_admin(who: Principal) -> None:
    if not who.is_admin:
        raise Forbidden(f"The user {who.name!r} isn't an administrator (or acts through a limited token).")


async def need(request: Request, who: Principal, action: str, index: str, project: str | None = None) -> AccessList:
    """Refuse unless ``who`` may do ``action`` on ``index`` (404 when they may not even read it)."""
    access = await services(request).auth.access()
    if not access.can(who, action, index, project):
        if not access.can(who, "read", index):
            raise NotFound(f"No index named {index!r}.")
        where = f" project {project!r} in" if project else ""
        raise Forbidden(f"The user {who.name!r} isn't allowed to {action} on{where} index {index!r}.")
    return access


async def readable(request: Request, who: Principal | None, name: str) -> Index:
    """Index ``name`` as ``who`` may see it (members they may not read left out), or 401/404."""
    svc = services(request)
    access = await svc.auth.access()
    if not access.can(who, "read", name):
        raise await deny(svc, who, access, f"No index named {name!r}.")
    index = await svc.registry.get(name)
    hidden = hidden_members(svc, access, who, index)
    return await svc.registry.get(name, hidden) if hidden else index
