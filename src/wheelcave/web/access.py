"""Read and write checks for routes, in one place.

A reader who may not see something gets, without credentials, 401 with ``WWW-Authenticate``
(pip and uv then ask for credentials, keyring or netrc), and with credentials 404: an index,
project or file the reader may not read answers exactly like one that does not exist, so
names never leak. On a server where every index is public, an unknown index is a plain 404.
"""

from __future__ import annotations

from starlette.requests import Request

from wheelcave.auth.access import AccessList, Principal
from wheelcave.errors import Forbidden, NotFound, Unauthorized
from wheelcave.indexes.base import Index
from wheelcave.services import Services
from wheelcave.web.deps import client_address, services

__all__ = ["NEEDS_CREDENTIALS", "caller", "deny", "hidden_members", "readable_index", "require"]

NEEDS_CREDENTIALS = "This index needs credentials to read."


async def caller(request: Request) -> Principal | None:
    """The authenticated principal of a request (None without credentials); bad ones raise."""
    cached = request.scope.get("wheelcave.principal", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    who = await services(request).auth.authenticate(request.headers.get("authorization"), client_address(request))
    request.scope["wheelcave.principal"] = who
    return who


async def _everything_public(svc: Services, access: AccessList) -> bool:
    return all(access.public(r.name) for r in await svc.registry.names())


async def deny(svc: Services, who: Principal | None, access: AccessList, message: str) -> Exception:
    """The error for something this reader may not see (see the module docstring)."""
    if who is None and not await _everything_public(svc, access):
        return Unauthorized(NEEDS_CREDENTIALS)
    return NotFound(message)


def hidden_members(svc: Services, access: AccessList, who: Principal | None, index: Index) -> frozenset[str]:
    """The member indexes of ``index`` this reader may not read (empty for most)."""
    if index.kind != "virtual":
        return frozenset()
    return frozenset(n for n in svc.registry.member_names(index)[1:] if not access.can(who, "read", n))


async def readable_index(request: Request, name: str) -> tuple[Index, Principal | None, AccessList]:
    """Index ``name`` as this reader may see it, or the error for one they may not."""
    svc = services(request)
    who = await caller(request)
    access = await svc.auth.access()
    if not access.can(who, "read", name):
        raise await deny(svc, who, access, f"No index named {name!r}.")
    index = await svc.registry.get(name)
    hidden = hidden_members(svc, access, who, index)
    return (await svc.registry.get(name, hidden) if hidden else index), who, access


async def require(request: Request, action: str, index: str, project: str | None = None) -> Principal:
    """The caller, if they may do ``action`` on ``index`` (401, 404 or 403 otherwise); without
    ``project``, on the index at all (a token limited to projects is checked per project later)."""
    svc = services(request)
    who = await caller(request)
    if who is None:
        raise Unauthorized("This needs credentials: HTTP Basic with a user and password, or __token__ and an API token.")
    access = await svc.auth.access()
    if not access.can(who, "read", index) and not access.can(who, action, index):
        raise NotFound(f"No index named {index!r}.")
    allowed = access.can(who, action, index, project) if project is not None else action in access.rights(who, index)
    if not allowed:
        what = f" project {project!r} in" if project else ""
        raise Forbidden(f"The user {who.name!r} isn't allowed to {action} to{what} index {index!r}."
                        if action == "upload" else f"The user {who.name!r} isn't allowed to {action} on{what} index {index!r}.")
    return who
