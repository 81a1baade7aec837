"""``wheelcave gc``: pre-release retention, then blobs nothing lists any more.

Retention: a hosted index with ``prerelease_keep = N`` keeps the newest N pre-releases of
each project (by version) and deletes the older ones, as a delete would (tombstones, audit).
Blobs, mark and sweep: content-addressed bytes that no file row lists and that are older than
``grace`` seconds. Each candidate is checked against the database again, set aside by the
blob store (atomically: on the filesystem a move into ``trash/``), and looked at once more: if an upload or download touched it
meanwhile (its commit marks a blob it reuses, before writing its row) or a row now lists it,
it goes back; otherwise it is deleted. An upload that finds the blob gone writes its own copy.
So a blob a concurrent write is about to reference is never lost. Leftovers of a gc killed
midway (a blob set aside, a ``blobs`` row without bytes) are finished by the next one. All of it
goes through the blob-store interface, so it works on every backend.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from wheelcave.db.repository import Repository
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.storage.base import BlobStore

__all__ = ["GcReport", "collect_garbage"]


@dataclass
class GcReport:
    deleted_files: list[str] = field(default_factory=list)
    removed_blobs: int = 0
    freed_bytes: int = 0


async def _retention(index: HostedIndex, repo: Repository, report: GcReport) -> None:
    keep = index.policy.prerelease_keep
    if keep is None:
        return
    for project, _ in await repo.list_projects(index.id):
        versions = {r.version for r in await repo.project_files(index.id, project)}
        pre = []
        for v in versions:
            try:
                parsed = Version(v)
            except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
                continue
            if parsed.is_prerelease or parsed.is_devrelease:
                pre.append((parsed, v))
        for _, version in sorted(pre, reverse=True)[keep:]:
            report.deleted_files += await repo.delete_files(
                index.id, project, version, None,
                {"actor": "gc", "action": "file.delete", "index_name": index.name, "project": project,
                 "detail": {"reason": f"prerelease_keep={keep}"}},
            )


async def collect_garbage(
    indexes: list[HostedIndex], repo: Repository, store: BlobStore, *, grace: float = 3600,
    dry_run: bool = False, on_trashed: Callable[[str], Awaitable[None]] | None = None,
) -> GcReport:
    """``on_trashed``: a hook for tests, called with a blob's name once it is set aside."""
    report = GcReport()
    if not dry_run:
        for index in indexes:
            await _retention(index, repo, report)
    referenced = await repo.referenced_hashes()
    if not dry_run:
        store.recover_aside(lambda sha: sha in referenced)
    cutoff = time.time() - grace
    gone = []
    for blob in list(store.iter_blobs()):
        if blob.sha256 in referenced or blob.mtime > cutoff:
            continue
        if dry_run:
            report.removed_blobs += 1
            report.freed_bytes += blob.size
            continue
        if await repo.blob_referenced(blob.sha256):  # listed since the first look
            continue
        aside = store.set_aside(blob.sha256)
        if aside is None:
            continue
        if on_trashed is not None:
            await on_trashed(blob.sha256)
        if await repo.blob_referenced(blob.sha256):
            store.put_back(blob.sha256)
            continue
        if not store.purge(blob.sha256, older_than=cutoff):
            continue  # a writer reused it meanwhile: back in place
        report.removed_blobs += 1
        report.freed_bytes += aside.size
        gone.append(blob.sha256)
    if not dry_run:
        # rows of blobs whose bytes are gone (this run, or a gc killed before it forgot them)
        gone += [sha for sha in await repo.unreferenced_blobs() if not store.exists(sha) and sha not in gone]
        await repo.forget_blobs(gone)
    return report
