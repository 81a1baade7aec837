"""Blob store in an object store through obstore: S3-compatible, GCS or Azure, chosen by a URL
(``s3://bucket/prefix``); credentials and endpoint from the usual environment (``AWS_*``,
``GOOGLE_*``, ``AZURE_*``). Keys: ``<prefix>/sha256/ab/cd/<hex>``.

Writes go through a local spool (a temporary blob hashes while it is written, as with every
backend), then one streamed upload: a multipart upload in ``chunk_size`` parts, at most
``max_concurrency`` in flight, so memory stays bounded for any size. An object store write is
atomic and durable when it returns, so ``sync`` has nothing to do.

Garbage collection without an atomic move (an object store has none): ``set_aside`` copies the
blob to ``trash/<hex>/<mtime>`` (keeping its age in the key, since a copy's own time is new),
then deletes it. A writer that finds the blob already stored leaves a ``wanted/<hex>`` marker
first and looks again after: if the blob was set aside in between, the writer uploads its own
copy; if it was set aside after, the marker is newer than gc's cut-off and ``purge`` puts the
blob back instead of deleting it. The times compared are the store's (``last_modified``) and
this machine's clock: they must agree to well within gc's grace (an hour by default).
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import obstore
import obstore.exceptions
import obstore.store

from wheelcave.storage.base import (
    BlobInfo,
    LocalSpool,
    StoreUnavailable,
    TempBlob,
    put_through_temp,
)
from wheelcave.storage.sizedfile import SizedReader

__all__ = ["ObjectBlobStore"]

_HEX = re.compile(r"[0-9a-f]{64}")
_READ_BUFFER = 1024 * 1024


def _checked(sha256: str) -> str:
    if not _HEX.fullmatch(sha256):
        msg = f"not a sha256 hex digest: {sha256!r}"
        raise ValueError(msg)
    return sha256


def _unavailable(exc: Exception) -> StoreUnavailable:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StoreUnavailable(f"the object store cannot be used: {detail[:200]}")


def _translated(method: Callable[..., Any]) -> Callable[..., Any]:
    """obstore's errors (other than "not found", a FileNotFoundError) as StoreUnavailable."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except obstore.exceptions.BaseError as exc:
            raise _unavailable(exc) from exc

    return call


def _key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{_checked(sha256)}"


class _RangeReader(SizedReader):
    """A seekable reader of one object: each read is a ranged GET (wrapped in a buffer)."""

    def __init__(self, store: Any, key: str, size: int) -> None:
        super().__init__(size)
        self._store, self._key = store, key

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self.size - self._pos)
        if length <= 0:
            return 0
        data = obstore.get_range(self._store, self._key, start=self._pos, length=length)
        view = memoryview(data)
        buffer[: len(view)] = view
        self._pos += len(view)
        return len(view)


class ObjectBlobStore(LocalSpool):
    def __init__(self, url: str, spool: Path, *, chunk_size: int = 8 * 2**20, max_concurrency: int = 4,
                 **options: Any) -> None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        client_options = {"allow_http": True} if endpoint.startswith("http://") else None
        self.url = url
        self.store = obstore.store.from_url(url, client_options=client_options, **options)
        self.chunk_size = chunk_size
        self.max_concurrency = max_concurrency
        #: Sizes seen (a blob's never changes): a download asks the store once, not twice. A
        #: blob deleted here is forgotten; one another process deletes is one no index lists
        #: any more, so no download reaches it.
        self._sizes: dict[str, int] = {}
        # The local spool: temporary blobs (uploads and downloads being written) and the lock
        # files of writers in several processes of one machine.
        self._open_spool(spool)

    # -- blobs ------------------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return obstore.head(self.store, key)  # type: ignore[return-value]
        except FileNotFoundError:
            return None

    @_translated
    def commit(self, temp: TempBlob, *, sync: bool = True) -> str:
        temp.finish(sync=False)  # the spool is scratch: the object store's write is the durable one
        sha256 = temp.digests.sha256
        key = _key(sha256)
        try:
            if self._head(key) is not None:
                # Wanted again: mark it before looking once more, so a gc that sets it aside
                # after this look sees the mark and puts it back (see the module docstring).
                obstore.put(self.store, f"wanted/{sha256}", b"")
                if self._head(key) is not None:
                    return sha256
            obstore.put(self.store, key, temp.path, chunk_size=self.chunk_size,
                        max_concurrency=self.max_concurrency)
            return sha256
        finally:
            temp.discard()

    def put_bytes(self, data: bytes, *, sync: bool = True) -> str:
        return put_through_temp(self, data, sync=sync)

    @_translated
    def sync(self, sha256: str) -> None:
        if self._head(_key(sha256)) is None:
            raise FileNotFoundError(sha256)

    @_translated
    def exists(self, sha256: str) -> bool:
        return self._head(_key(sha256)) is not None

    @_translated
    def size(self, sha256: str) -> int:
        known = self._sizes.get(sha256)
        if known is not None:
            return known
        meta = self._head(_key(sha256))
        if meta is None:
            raise FileNotFoundError(sha256)
        if len(self._sizes) >= 200_000:
            self._sizes.clear()
        self._sizes[sha256] = int(meta["size"])
        return int(meta["size"])

    @_translated
    def open(self, sha256: str) -> BinaryIO:
        key = _key(sha256)
        size = self.size(sha256)
        return io.BufferedReader(_RangeReader(self.store, key, size), buffer_size=_READ_BUFFER)  # type: ignore[return-value]

    @_translated
    def read_bytes(self, sha256: str) -> bytes:
        return bytes(obstore.get(self.store, _key(sha256)).bytes())

    @_translated
    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return bytes(obstore.get_range(self.store, _key(sha256), start=start, length=length))

    async def aiter_range(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (inclusive) as one streamed GET."""
        try:
            result = await obstore.get_async(self.store, _key(sha256), options={"range": (start, end + 1)})
            async for chunk in result.stream(min_chunk_size=_READ_BUFFER):
                yield bytes(chunk)
        except obstore.exceptions.BaseError as exc:
            raise _unavailable(exc) from exc

    def local_path(self, sha256: str) -> Path | None:
        _checked(sha256)
        return None  # no local files: no request to find that out

    @_translated
    def presigned_url(self, sha256: str, expires: float) -> str | None:
        """A URL that reads the blob straight from the store for ``expires`` seconds."""
        from datetime import timedelta

        return str(obstore.sign(self.store, "GET", _key(sha256), timedelta(seconds=expires)))  # type: ignore[arg-type]

    @_translated
    def delete(self, sha256: str) -> bool:
        key = _key(sha256)
        self._sizes.pop(sha256, None)
        if self._head(key) is None:
            return False
        obstore.delete(self.store, key)
        obstore.delete(self.store, f"wanted/{sha256}")
        return True

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        try:
            for chunk in obstore.list(self.store, prefix=prefix):
                yield from chunk  # type: ignore[misc]
        except obstore.exceptions.BaseError as exc:
            raise _unavailable(exc) from exc

    def _wanted(self) -> dict[str, float]:
        return {m["path"].rsplit("/", 1)[-1]: m["last_modified"].timestamp() for m in self._list("wanted/")}

    def iter_blobs(self) -> Iterator[BlobInfo]:
        wanted = self._wanted()
        for meta in self._list("sha256/"):
            sha256 = meta["path"].rsplit("/", 1)[-1]
            if not _HEX.fullmatch(sha256):
                continue
            mtime = max(meta["last_modified"].timestamp(), wanted.get(sha256, 0.0))
            yield BlobInfo(sha256, int(meta["size"]), mtime)

    # -- garbage collection (see the module docstring) --------------------------------------

    def _aside(self, sha256: str) -> tuple[str, float] | None:
        """The set-aside copy's key and the blob's age when it was set aside."""
        for meta in self._list(f"trash/{_checked(sha256)}/"):
            try:
                return meta["path"], float(meta["path"].rsplit("/", 1)[-1])
            except ValueError:
                continue
        return None

    @_translated
    def set_aside(self, sha256: str) -> BlobInfo | None:
        key = _key(sha256)
        self._sizes.pop(sha256, None)
        meta = self._head(key)
        if meta is None:
            return None
        wanted = self._head(f"wanted/{sha256}")
        mtime = max(meta["last_modified"].timestamp(), wanted["last_modified"].timestamp() if wanted else 0.0)
        aside = f"trash/{sha256}/{mtime:.3f}"
        try:
            obstore.copy(self.store, key, aside)
        except FileNotFoundError:
            return None  # set aside (or deleted) by another gc meanwhile
        obstore.delete(self.store, key)
        return BlobInfo(sha256, int(meta["size"]), mtime)

    @_translated
    def put_back(self, sha256: str) -> None:
        found = self._aside(sha256)
        if found is None:
            return
        if self._head(_key(sha256)) is None:
            obstore.copy(self.store, found[0], _key(sha256))
        obstore.delete(self.store, found[0])  # or a writer stored the same bytes in its place

    @_translated
    def purge(self, sha256: str, *, older_than: float) -> bool:
        found = self._aside(sha256)
        if found is None:
            return False
        wanted = self._head(f"wanted/{sha256}")
        touched = max(found[1], wanted["last_modified"].timestamp() if wanted else 0.0)
        if touched > older_than:
            self.put_back(sha256)
            return False
        obstore.delete(self.store, found[0])
        obstore.delete(self.store, f"wanted/{sha256}")
        return True

    @_translated
    def recover_aside(self, keep: Callable[[str], bool]) -> None:
        for meta in list(self._list("trash/")):
            parts = meta["path"].split("/")
            if len(parts) != 3 or not _HEX.fullmatch(parts[1]):
                continue
            if keep(parts[1]):
                self.put_back(parts[1])
            else:
                obstore.delete(self.store, meta["path"])

    def check(self) -> str | None:
        """None when the store answers; else why not (for /ready)."""
        try:
            next(iter(obstore.list(self.store, prefix="sha256/", chunk_size=1)), None)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return f"{type(exc).__name__}: {exc}"[:200]
        return None
