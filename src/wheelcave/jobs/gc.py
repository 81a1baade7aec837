"""``wheelcave gc``: pre-release retention, then blobs nothing lists any more.

Retention: a hosted index with ``prerelease_keep = N`` keeps the newest N pre-releases of
each project (by version) and deletes the older ones, as a delete would (tombstones, audit).
Blobs: content-addressed bytes that no file row lists are removed, but only once they are
older than ``grace`` seconds, so a blob committed a moment before its row is never taken.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from wheelcave.db.repository import Repository
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.storage.filesystem import FilesystemBlobStore

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
            except InvalidVersion:
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
    indexes: list[HostedIndex], repo: Repository, store: FilesystemBlobStore, *, grace: float = 3600, dry_run: bool = False
) -> GcReport:
    report = GcReport()
    if not dry_run:
        for index in indexes:
            await _retention(index, repo, report)
    referenced = await repo.referenced_hashes()
    cutoff = time.time() - grace
    gone = []
    for path in (store.root / "sha256").glob("*/*/*"):
        if path.name in referenced or not path.is_file():
            continue
        stat = path.stat()
        if stat.st_mtime > cutoff:
            continue
        report.removed_blobs += 1
        report.freed_bytes += stat.st_size
        gone.append(path.name)
        if not dry_run:
            path.unlink(missing_ok=True)
    if not dry_run:
        await repo.forget_blobs(gone)
    return report
