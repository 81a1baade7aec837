"""Serving a stored blob: ETag (its sha256), immutable caching, HEAD, single ranges (206/416).

What pip, uv and poetry need (protocols §6): 200 with exact ``Content-Length`` and
``Accept-Ranges: bytes``, no ``Content-Encoding``, suffix and open ranges, ``If-Range``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from wheelcave.storage.base import BlobStore

__all__ = ["BlobResponse"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_MAX_DIGITS = 18  # more than any file's size; longer numbers are compared as text, never parsed
_CHUNK = 256 * 1024  # read in one go up to this size
_BIG_CHUNK = 1024 * 1024  # larger files: one read (one thread hop) per MiB


def _number(digits: str) -> int:
    """A range bound; one too long to be a file offset counts as "past any end" (5,000 digits
    would otherwise cost a big-integer parse, and Python refuses over 4,300)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive); None to ignore the header; False if unsatisfiable (RFC 9110 §14).

    >>> parse_range("bytes=0-9", 100), parse_range("bytes=-10", 100), parse_range("bytes=90-", 100)
    ((0, 9), (90, 99), (90, 99))
    >>> parse_range("bytes=5-2", 100), parse_range("bytes=1-2,4-5", 100), parse_range("bytes=" + "9" * 5000 + "-", 100)
    (None, None, False)
    """
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # malformed or multi-range: serve the whole file (allowed by RFC 9110)
    first, last = match.group(1), match.group(2)
    if not first:
        length = _number(last)
        if length == 0:
            return False
        return max(0, size - length), size - 1
    start = _number(first)
    if last and _number(last) < start:
        return None  # an invalid range-spec: ignore the header, send the whole file
    if start >= size:
        return False
    end = min(_number(last), size - 1) if last else size - 1
    return start, end


def _read(path: Path, start: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, start)
    finally:
        os.close(fd)


class BlobResponse(Response):
    """A blob from a local file (``path``: pread on a thread), or from the blob store's stream
    (``store`` and ``size``: an object store with no local file)."""

    def __init__(self, request: Request, path: Path | None, sha256: str, *, filename: str,
                 store: BlobStore | None = None, size: int | None = None) -> None:
        super().__init__(status_code=200, media_type="application/octet-stream")
        self.path = path
        self.sha256 = sha256
        self.store = store
        self.size = os.stat(path).st_size if path is not None else int(size or 0)
        self.start, self.end = 0, self.size - 1
        etag = f'"{sha256}"'
        headers = {
            "etag": etag,
            "accept-ranges": "bytes",
            "cache-control": "public, max-age=365000000, immutable",
            "content-disposition": f'attachment; filename="{filename}"',
        }
        self.send_body = request.method != "HEAD"
        inm = request.headers.get("if-none-match")
        if inm and (inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]):
            self.status_code = 304
            self.send_body = False
            self._set(headers, None)
            return
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if wanted and (if_range is None or if_range.strip() == etag):
            rng = parse_range(wanted, self.size)
            if rng is False:
                self.status_code = 416
                self.send_body = False
                headers["content-range"] = f"bytes */{self.size}"
                self._set(headers, 0)
                return
            if rng is not None:
                self.start, self.end = rng
                self.status_code = 206
                headers["content-range"] = f"bytes {self.start}-{self.end}/{self.size}"
        self._set(headers, self.end - self.start + 1)

    def _set(self, headers: dict[str, str], length: int | None) -> None:
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        if length is not None:
            raw.append((b"content-length", str(length).encode()))
        if self.status_code != 304:
            raw.append((b"content-type", b"application/octet-stream"))
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if not self.send_body:
            await send({"type": "http.response.body", "body": b""})
            return
        remaining = self.end - self.start + 1
        if self.path is None:
            assert self.store is not None
            if remaining <= 0:  # an empty blob: nothing to ask the store for
                await send({"type": "http.response.body", "body": b""})
                return
            async for chunk in self.store.aiter_range(self.sha256, self.start, self.end):
                chunk = chunk[:remaining]
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
                if remaining <= 0:
                    return
            raise OSError(f"blob {self.sha256} is shorter than its recorded size")
        if remaining <= _CHUNK:  # metadata files and most wheels: one read, one thread hop
            body = await anyio.to_thread.run_sync(_read, self.path, self.start, remaining)
            if len(body) < remaining:
                raise OSError(f"blob {self.path.name} is shorter than its recorded size")
            await send({"type": "http.response.body", "body": body})
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            offset = self.start
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(os.pread, fd, min(_BIG_CHUNK, remaining), offset)
                if not chunk:
                    break
                offset += len(chunk)
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        finally:
            os.close(fd)
        if remaining > 0:  # the file shrank under us: never pretend the body was complete
            raise OSError(f"blob {self.path.name} is shorter than its recorded size")
