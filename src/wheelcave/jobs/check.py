"""``wheelcave check``: every file row has its blob, of the recorded size (and hash).

A mirror lists files it has not downloaded yet: those are normal, counted apart, never a
problem (so ``check`` can run from cron on a busy mirror). A hosted file without its bytes is.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio.to_thread

from wheelcave.db.repository import Repository
from wheelcave.storage.base import BlobStore, StoreUnavailable

__all__ = ["CheckCounts", "Problem", "check_store"]


@dataclass(frozen=True)
class Problem:
    filename: str
    sha256: str
    message: str


@dataclass
class CheckCounts:
    """What a check saw besides problems."""

    stored: int = 0
    listed_only: int = 0


def _hash_file(store: BlobStore, sha256: str) -> str:
    digest = hashlib.sha256()
    with store.open(sha256) as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def check_store(
    repo: Repository, store: BlobStore, *, hashes: bool = False, counts: CheckCounts | None = None,
) -> AsyncIterator[Problem]:
    counts = counts if counts is not None else CheckCounts()
    unusable = await anyio.to_thread.run_sync(store.check)
    if unusable is not None:  # say so, not "blob missing" for every file
        raise StoreUnavailable(f"the blob store cannot be used: {unusable}")
    for filename, sha256, size, metadata_sha256, mirrored in await repo.file_blobs():
        try:
            actual = store.size(sha256)
        except FileNotFoundError:
            if mirrored:
                counts.listed_only += 1  # not downloaded yet: the normal state of a mirror
            else:
                yield Problem(filename, sha256, "blob missing")
            continue
        counts.stored += 1
        if size is not None and actual != size:
            yield Problem(filename, sha256, f"blob is {actual} bytes, the row says {size}")
        elif hashes and await anyio.to_thread.run_sync(_hash_file, store, sha256) != sha256:
            yield Problem(filename, sha256, "blob content does not match its sha256")
        if metadata_sha256 and not store.exists(metadata_sha256):
            yield Problem(filename, metadata_sha256, "metadata blob missing")
    # Files a mirror's pages list that nobody asked for yet have no row (their listings count them).
    counts.listed_only += await repo.mirror_files_without_rows()
