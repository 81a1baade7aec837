"""Blob store on the local filesystem: ``<root>/sha256/ab/cd/<hex>``, temp files in ``<root>/tmp``.

Durability: a blob's bytes are fsynced before the rename that makes it visible, and the folder
(and any folder the rename needed) after it, so once ``commit`` returns the blob survives a
power loss; the caller writes its row only after that.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from wheelcave.storage.base import BlobInfo, LocalSpool, TempBlob, iter_range_by_reads, put_through_temp

__all__ = ["FilesystemBlobStore"]

_HEX = re.compile(r"[0-9a-f]{64}")


def _fsync_dir(path: Path) -> None:
    """Make a rename (or a new entry) in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemBlobStore(LocalSpool):
    url = ""

    def __init__(self, root: Path) -> None:
        self._open_spool(root)
        (root / "sha256").mkdir(parents=True, exist_ok=True)
        self._trash = root / "trash"

    def _final(self, sha256: str) -> Path:
        if not _HEX.fullmatch(sha256):
            msg = f"not a sha256 hex digest: {sha256!r}"
            raise ValueError(msg)
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def commit(self, temp: TempBlob, *, sync: bool = True) -> str:
        """``sync=False``: leave the fsyncs to the caller, who syncs a whole batch at once
        (:func:`os.sync`) before any row points at these blobs (bulk imports)."""
        temp.finish(sync=sync)
        sha256 = temp.digests.sha256
        final = self._final(sha256)
        if final.exists():
            try:
                # Freshly wanted again: gc spares (and puts back) blobs touched while it decides,
                # so a row about to point here is safe.
                os.utime(final)
            except FileNotFoundError:
                pass  # collected this instant: our copy takes its place below
            else:
                temp.discard()
                return sha256
        created = [p for p in (final.parent.parent, final.parent) if not p.is_dir()]
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp.path, final)
        if sync:
            for folder in (final.parent, *(p.parent for p in reversed(created))):
                _fsync_dir(folder)
        return sha256

    def sync(self, sha256: str) -> None:
        """Make a blob committed with ``sync=False`` durable: its bytes and the folders that
        name it (a row may point at it once this returns)."""
        final = self._final(sha256)
        fd = os.open(final, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        for folder in (final.parent, final.parent.parent, final.parent.parent.parent):
            _fsync_dir(folder)

    def put_bytes(self, data: bytes, *, sync: bool = True) -> str:
        return put_through_temp(self, data, sync=sync)

    def exists(self, sha256: str) -> bool:
        return self._final(sha256).is_file()

    def path(self, sha256: str) -> Path:
        final = self._final(sha256)
        if not final.is_file():
            raise FileNotFoundError(sha256)
        return final

    def read_bytes(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        fd = os.open(self.path(sha256), os.O_RDONLY)
        try:
            return os.pread(fd, max(0, length), start)
        finally:
            os.close(fd)

    def aiter_range(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        return iter_range_by_reads(self, sha256, start, end)

    def presigned_url(self, sha256: str, expires: float) -> str | None:
        return None

    def check(self) -> str | None:
        return None if self.tmp.is_dir() and (self.root / "sha256").is_dir() else "blob folder missing"

    def open(self, sha256: str) -> BinaryIO:
        return self._final(sha256).open("rb")

    def local_path(self, sha256: str) -> Path | None:
        return self.path(sha256)

    def delete(self, sha256: str) -> bool:
        try:
            self._final(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def set_aside(self, sha256: str) -> BlobInfo | None:
        final = self._final(sha256)
        aside = self._trash / sha256
        self._trash.mkdir(exist_ok=True)
        try:
            os.replace(final, aside)
        except FileNotFoundError:
            return None
        stat = aside.stat()
        return BlobInfo(sha256, stat.st_size, stat.st_mtime)

    def put_back(self, sha256: str) -> None:
        final, aside = self._final(sha256), self._trash / sha256
        if final.exists():
            aside.unlink(missing_ok=True)  # an upload wrote the same bytes in its place
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(aside, final)

    def purge(self, sha256: str, *, older_than: float) -> bool:
        aside = self._trash / self._final(sha256).name
        try:
            touched = aside.stat().st_mtime > older_than  # the same inode a commit touched
        except FileNotFoundError:
            return False
        if touched:
            self.put_back(sha256)
            return False
        aside.unlink(missing_ok=True)
        return True

    def recover_aside(self, keep: Callable[[str], bool]) -> None:
        if not self._trash.is_dir():
            return
        for entry in os.scandir(self._trash):
            if not _HEX.fullmatch(entry.name):
                continue
            if keep(entry.name):
                self.put_back(entry.name)
            else:
                os.unlink(entry.path)  # a gc killed midway had decided

    def iter_blobs(self) -> Iterator[BlobInfo]:
        for path in (self.root / "sha256").glob("*/*/*"):
            if not _HEX.fullmatch(path.name):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # removed meanwhile
            yield BlobInfo(path.name, stat.st_size, stat.st_mtime)
