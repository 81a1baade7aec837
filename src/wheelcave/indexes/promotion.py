"""Promotion: a release of one hosted index listed in another (the blobs are shared, nothing is
copied); the target's policies, audit log and webhooks apply as for an upload."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wheelcave.core.names import normalize
from wheelcave.core.versions import same_release
from wheelcave.errors import BadRequest, NotFound
from wheelcave.indexes.hosted import HostedIndex

if TYPE_CHECKING:
    from wheelcave.indexes.registry import Registry

__all__ = ["promote"]


async def promote(
    registry: Registry, project: str, version: str, source: str, target: str, *, actor: str | None,
    address: str | None = None,
) -> list[str]:
    """List a release's files from hosted index ``source`` in hosted index ``target``; the
    filenames listed."""
    src, dst = await registry.get(source), await registry.get(target)
    if not isinstance(src, HostedIndex) or not isinstance(dst, HostedIndex):
        raise BadRequest("Promotion goes from one hosted index to another.")
    if src is dst:
        raise BadRequest("Promotion needs two different indexes.")
    name = normalize(project)
    records = [r for r in await registry.repo.project_files(src.id, name, with_metadata=True)
               if same_release(r.version, version)]
    if not records:
        raise NotFound(f"No release {project} {version} in index {source!r}.")
    return await dst.receive(records, source=source, actor=actor, address=address)
