"""``wheelcave gc``: pre-release retention, then blobs nothing lists any more.

Retention: a hosted index with ``prerelease_keep = N`` keeps the newest N pre-releases of
each project (by version) and deletes the older ones, as a delete would (tombstones, audit).
Blobs, mark and sweep: content-addressed bytes that no file row lists and that are older than
``grace`` seconds. Each candidate is checked against the database again, moved aside into
``trash/`` (atomically), and looked at once more: if an upload or download touched it
meanwhile (its commit marks a blob it reuses, before writing its row) or a row now lists it,
it goes back; otherwise it is deleted. An upload that finds the blob gone writes its own copy.
So a blob a concurrent write is about to reference is never lost. Leftovers of a gc killed
midway (a file in ``trash/``, a ``blobs`` row without bytes) are finished by the next one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
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
    indexes: list[HostedIndex], repo: Repository, store: FilesystemBlobStore, *, grace: float = 3600,
    dry_run: bool = False, on_trashed: Callable[[str], Awaitable[None]] | None = None,
) -> GcReport:
    """``on_trashed``: a hook for tests, called with a blob's name once it is in ``trash/``."""
    report = GcReport()
    if not dry_run:
        for index in indexes:
            await _retention(index, repo, report)
    trash = store.root / "trash"
    trash.mkdir(exist_ok=True)
    referenced = await repo.referenced_hashes()
    if not dry_run:
        _finish_interrupted(store, trash, referenced)
    cutoff = time.time() - grace
    gone = []
    for path in (store.root / "sha256").glob("*/*/*"):
        if path.name in referenced or not path.is_file():
            continue
        stat = path.stat()
        if stat.st_mtime > cutoff:
            continue
        if dry_run:
            report.removed_blobs += 1
            report.freed_bytes += stat.st_size
            continue
        if await repo.blob_referenced(path.name):  # listed since the first look
            continue
        aside = trash / path.name
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            continue
        if on_trashed is not None:
            await on_trashed(path.name)
        if aside.stat().st_mtime > cutoff or await repo.blob_referenced(path.name):
            _put_back(aside, path)
            continue
        report.removed_blobs += 1
        report.freed_bytes += aside.stat().st_size
        aside.unlink()
        gone.append(path.name)
    if not dry_run:
        # rows of blobs whose bytes are gone (this run, or a gc killed before it forgot them)
        gone += [sha for sha in await repo.unreferenced_blobs() if not store.exists(sha) and sha not in gone]
        await repo.forget_blobs(gone)
    return report


def _put_back(aside: os.PathLike[str], path: os.PathLike[str]) -> None:
    """Return a blob from trash, unless an upload already wrote the same bytes in its place."""
    if os.path.exists(path):
        os.unlink(aside)
    else:
        os.replace(aside, path)


def _finish_interrupted(store: FilesystemBlobStore, trash: os.PathLike[str], referenced: set[str]) -> None:
    """A gc killed midway left blobs in trash: a listed one goes back, the rest is deleted."""
    for aside in os.scandir(trash):
        final = store.root / "sha256" / aside.name[:2] / aside.name[2:4] / aside.name
        if aside.name in referenced:
            final.parent.mkdir(parents=True, exist_ok=True)
            _put_back(aside.path, final)
        else:
            os.unlink(aside.path)
