"""A read-only raw file of a known size, read where its subclass finds the bytes: the seeking
every such reader shares (a wheel read by Range requests, a blob in an object store)."""

from __future__ import annotations

import io

__all__ = ["SizedReader"]


class SizedReader(io.RawIOBase):
    """Seekable within ``size`` bytes. A seek before the start raises OSError, as a real file's
    does: zipfile takes that as "too short to be an archive" (any other error would escape it)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the file")
        self._pos = base + offset
        return self._pos
