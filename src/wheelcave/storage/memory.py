"""A blob store that keeps the bytes in memory, for fast tests: the same contract as the others
(tests/test_blobstore_contract.py), and like an object store it has no local paths. Temporary
blobs are files in a spool folder, as with every backend (an upload is spooled, then committed)."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from wheelcave.storage.base import BlobInfo, LocalSpool, TempBlob, iter_range_by_reads, put_through_temp

__all__ = ["MemoryBlobStore"]

_HEX = re.compile(r"[0-9a-f]{64}")


def _checked(sha256: str) -> str:
    if not _HEX.fullmatch(sha256):
        msg = f"not a sha256 hex digest: {sha256!r}"
        raise ValueError(msg)
    return sha256


class MemoryBlobStore(LocalSpool):
    url = "memory:"  # not for other processes: its bytes live in this one

    def __init__(self, spool: Path) -> None:
        self._open_spool(spool)
        self._blobs: dict[str, tuple[bytes, float]] = {}
        self._aside: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def commit(self, temp: TempBlob, *, sync: bool = True) -> str:
        temp.finish(sync=False)
        sha256 = temp.digests.sha256
        data = temp.path.read_bytes()
        temp.discard()
        with self._lock:
            kept = self._blobs.get(sha256)
            self._blobs[sha256] = (kept[0] if kept else data, time.time())  # wanted again: fresh for gc
        return sha256

    def put_bytes(self, data: bytes, *, sync: bool = True) -> str:
        return put_through_temp(self, data, sync=sync)

    def sync(self, sha256: str) -> None:
        self._get(sha256)  # nothing to flush; absent is an error as elsewhere

    def _get(self, sha256: str) -> bytes:
        with self._lock:
            found = self._blobs.get(_checked(sha256))
        if found is None:
            raise FileNotFoundError(sha256)
        return found[0]

    def exists(self, sha256: str) -> bool:
        with self._lock:
            return _checked(sha256) in self._blobs

    def size(self, sha256: str) -> int:
        return len(self._get(sha256))

    def open(self, sha256: str) -> BinaryIO:
        return io.BytesIO(self._get(sha256))

    def read_bytes(self, sha256: str) -> bytes:
        return self._get(sha256)

    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        return self._get(sha256)[start : start + max(0, length)]

    def aiter_range(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        return iter_range_by_reads(self, sha256, start, end)

    def presigned_url(self, sha256: str, expires: float) -> str | None:
        return None

    def check(self) -> str | None:
        return None

    def delete(self, sha256: str) -> bool:
        with self._lock:
            return self._blobs.pop(_checked(sha256), None) is not None

    def iter_blobs(self) -> Iterator[BlobInfo]:
        with self._lock:
            items = list(self._blobs.items())
        for sha256, (data, mtime) in items:
            yield BlobInfo(sha256, len(data), mtime)

    def set_aside(self, sha256: str) -> BlobInfo | None:
        with self._lock:
            found = self._blobs.pop(_checked(sha256), None)
            if found is None:
                return None
            self._aside[sha256] = found
        return BlobInfo(sha256, len(found[0]), found[1])

    def put_back(self, sha256: str) -> None:
        with self._lock:
            found = self._aside.pop(sha256, None)
            if found is not None and sha256 not in self._blobs:
                self._blobs[sha256] = found

    def purge(self, sha256: str, *, older_than: float) -> bool:
        with self._lock:
            found = self._aside.get(sha256)
        if found is None:
            return False
        if found[1] > older_than:
            self.put_back(sha256)
            return False
        with self._lock:
            self._aside.pop(sha256, None)
        return True

    def recover_aside(self, keep: Callable[[str], bool]) -> None:
        for sha256 in list(self._aside):
            if keep(sha256):
                self.put_back(sha256)
            else:
                with self._lock:
                    self._aside.pop(sha256, None)

    def local_path(self, sha256: str) -> Path | None:
        _checked(sha256)
        return None
