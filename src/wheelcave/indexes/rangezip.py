"""A wheel's METADATA read from an upstream with HTTP Range requests, not the whole wheel.

The zip directory sits at the end of a wheel: one request for the last 64 KiB usually holds the
end record and the whole central directory, one more the METADATA member (uv reads wheels it
has not downloaded the same way). Parsing is the standard library's ``zipfile`` over a sparse
file that holds only the ranges fetched so far; when it asks for bytes not fetched, the read
raises :class:`NeedBytes` and the caller fetches them and tries again. The same checks as for a
cached wheel apply (:func:`wheelcave.indexes.archive.wheel_metadata_from_zip`).
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable

from wheelcave.core.filenames import DistFilename
from wheelcave.indexes.archive import ArchiveError, wheel_metadata_from_zip

__all__ = ["CHUNK", "TAIL", "NeedBytes", "SparseFile", "wheel_metadata_by_range"]

#: The first request: the end record (22 bytes), a comment of up to 64 KiB, and most directories.
TAIL = 65536 + 22
#: Later requests ask at least this much (a member's local header and data in one go).
CHUNK = 65536
#: Requests one wheel may cost before we give up (tail, directory, member, and some slack).
MAX_REQUESTS = 6

#: (first byte, last byte or None for a suffix of -first bytes) -> (offset, total size, bytes),
#: or None when the upstream answered the whole file instead (it ignores Range).
Fetch = Callable[[int, int | None], Awaitable[tuple[int, int, bytes] | None]]


class NeedBytes(Exception):  # not an OSError: zipfile turns those into "not a zip file"
    def __init__(self, start: int, length: int) -> None:
        super().__init__(f"bytes {start}+{length} not fetched")
        self.start = start
        self.length = length


class SparseFile(io.RawIOBase):
    """A read-only file of ``size`` bytes of which only some ranges are known."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0
        self._pieces: list[tuple[int, bytes]] = []

    def add(self, start: int, data: bytes) -> None:
        self._pieces.append((start, data))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start")
        self._pos = base + offset
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self._pos + n)
        if self._pos >= end:
            return b""
        for start, data in self._pieces:
            if start <= self._pos and end <= start + len(data):
                out = data[self._pos - start:end - start]
                self._pos = end
                return out
        raise NeedBytes(self._pos, end - self._pos)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


async def wheel_metadata_by_range(fetch: Fetch, dist: DistFilename, limit: int) -> bytes | None:
    """The METADATA of the remote wheel ``fetch`` reads; None if the upstream ignores Range.
    Raises :class:`ArchiveError` for a wheel that is not a valid one."""
    first = await fetch(-TAIL, None)
    if first is None:
        return None
    start, total, data = first
    sparse = SparseFile(total)
    sparse.add(start, data)
    for _ in range(MAX_REQUESTS - 1):
        try:
            sparse.seek(0)
            return wheel_metadata_from_zip(sparse, dist, total, limit)
        except NeedBytes as need:
            last = min(total, need.start + max(need.length, CHUNK)) - 1
            got = await fetch(need.start, last)
            if got is None:
                return None
            sparse.add(got[0], got[2])
    raise ArchiveError(f"{dist.filename}: its metadata could not be read in {MAX_REQUESTS} range requests")
