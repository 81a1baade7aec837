"""Changes that the API and the web pages both offer, written once: the rights they check,
the index's own policy, and what follows (ownership claims, page bumps)."""

from __future__ import annotations

from starlette.requests import Request

from wheelcave.auth.access import Principal
from wheelcave.core.names import normalize
from wheelcave.errors import BadRequest, Forbidden
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.indexes.promotion import promote
from wheelcave.web.api.deps import need
from wheelcave.web.deps import client_address, services

__all__ = ["delete_release", "promote_release"]


async def promote_release(request: Request, who: Principal, project: str, version: str, source: str, target: str) -> list[str]:
    """List a release of ``source`` in ``target`` too (read on the source, upload on the target,
    and ownership of the project there where it applies)."""
    svc = services(request)
    name = normalize(project)
    await need(request, who, "read", source)
    access = await need(request, who, "upload", target, name)
    index = await svc.registry.get(target)
    if not isinstance(index, HostedIndex):
        raise BadRequest(f"Index {target!r} is a {index.kind} index; promotion goes to a hosted index.")
    owners = None
    if index.policy.project_ownership and not access.can(who, "manage", index.name):
        owners = await svc.accounts.owners(index.id, name)
        if owners and not who.owner_keys & set(owners):
            raise Forbidden(f"The user {who.name!r} isn't an owner of project {name!r} in index {index.name!r}.")
    files = await promote(svc.registry, project, version, source, target, actor=who.name, address=client_address(request))
    if files and owners == []:
        await svc.accounts.claim_project(index.id, name, who.owner_key)
    return files


async def delete_release(request: Request, who: Principal, index_name: str, project: str, version: str | None) -> list[str]:
    """Delete a release (or every release) from a hosted index whose policy allows deletes."""
    await need(request, who, "delete", index_name, normalize(project))
    index = await services(request).registry.get(index_name)
    if not isinstance(index, HostedIndex):
        raise BadRequest(f"Index {index_name!r} is a {index.kind} index; files are deleted where they were uploaded.")
    files = await index.delete(project, version, actor=who.name, address=client_address(request))
    if files:
        services(request).registry.note_bump(index.id)
    return files
