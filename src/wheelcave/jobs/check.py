"""``wheelcave check``: every file row has its blob, of the recorded size (and hash)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio.to_thread

from wheelcave.db.repository import Repository
from wheelcave.storage.filesystem import FilesystemBlobStore

__all__ = ["Problem", "check_store"]


@dataclass(frozen=True)
class Problem:
    filename: str
    sha256: str
    message: str


def _hash_file(store: FilesystemBlobStore, sha256: str) -> str:
    digest = hashlib.sha256()
    with store.path(sha256).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def check_store(repo: Repository, store: FilesystemBlobStore, *, hashes: bool = False) -> AsyncIterator[Problem]:
    for filename, sha256, size, metadata_sha256 in await repo.file_blobs():
        try:
            path = store.path(sha256)
        except FileNotFoundError:
            yield Problem(filename, sha256, "blob missing")
            continue
        actual = path.stat().st_size
        if actual != size:
            yield Problem(filename, sha256, f"blob is {actual} bytes, the row says {size}")
        elif hashes and await anyio.to_thread.run_sync(_hash_file, store, sha256) != sha256:
            yield Problem(filename, sha256, "blob content does not match its sha256")
        if metadata_sha256 and not store.exists(metadata_sha256):
            yield Problem(filename, metadata_sha256, "metadata blob missing")
