"""The blob store interface: content-addressed by sha256, written once, never rewritten.

A write goes to a :class:`TempBlob` that hashes while it is fed; ``commit`` makes it visible
under its sha256 atomically, or discards it when that content is already stored.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

__all__ = ["BlobInfo", "BlobStore", "Digests", "LocalSpool", "StoreUnavailable", "TempBlob", "iter_range_by_reads",
           "put_through_temp"]


class StoreUnavailable(Exception):
    """The blob store could not be reached, or refused the request (an object store that is
    down, wrong credentials, a missing bucket); the web answers 503, the CLI one error line."""



class Digests:
    """sha256, md5 and blake2b-256 of a stream, computed on the fly; only sha256 where that is all
    the writer keeps (a mirror's download: its row knows the upstream's sha256, nothing else),
    as md5 and blake2b cost four times sha256's CPU a byte here."""

    __slots__ = ("_blake2", "_md5", "_sha256", "size")

    def __init__(self, *, sha256_only: bool = False) -> None:
        self._sha256 = hashlib.sha256()
        self._md5 = None if sha256_only else hashlib.md5(usedforsecurity=False)
        self._blake2 = None if sha256_only else hashlib.blake2b(digest_size=32)
        self.size = 0

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._blake2 is not None:
            self._blake2.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        if self._md5 is None:
            raise ValueError("md5 was not computed (sha256_only)")
        return self._md5.hexdigest()

    @property
    def blake2b_256(self) -> str:
        if self._blake2 is None:
            raise ValueError("blake2b-256 was not computed (sha256_only)")
        return self._blake2.hexdigest()


class TempBlob:
    """A temporary file being written; hashes everything written to it."""

    def __init__(self, path: Path, fh: BinaryIO, *, sha256_only: bool = False) -> None:
        self.path = path
        self._fh = fh
        self.digests = Digests(sha256_only=sha256_only)
        self.closed = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # an unbuffered file may write less than asked
            written = self._fh.write(view)
            view = view[written if written is not None else len(view) :]
        self.digests.update(data)

    @property
    def size(self) -> int:
        return self.digests.size

    def finish(self, *, sync: bool = True) -> None:
        """Flush and fsync (unless ``sync`` is false: the caller syncs a batch); after this
        the file is complete and can be read."""
        if not self.closed:
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
            self._fh.close()
            self.closed = True

    def discard(self) -> None:
        if not self.closed:
            self._fh.close()
            self.closed = True
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    #: When it was last written or wanted again (Unix seconds): gc spares what is recent.
    mtime: float


class BlobStore(Protocol):
    """Content-addressed bytes: written once through a temporary blob, never rewritten, read by
    sha256. No local paths: a backend that has them offers :meth:`local_path` (a fast path for
    sendfile and zip reading), every reader works with :meth:`open` alone.

    Every backend keeps a local spool (``tmp``, ``lock_path``): temporary blobs are files being
    written there, and writers in several processes of one machine coordinate with lock files
    in it; the blobs themselves live wherever the backend keeps them."""

    #: The local folder: the blobs themselves (the filesystem store) or only the spool.
    root: Path
    #: The spool's folder of temporary blobs.
    tmp: Path
    #: Where the blobs live when not in ``root``: the object store's URL ("" for the folder).
    #: Another process opens the same store from ``(root, url)`` (storage.select).
    url: str

    def new_temp(self, *, buffered: bool = True, name: str | None = None, sha256_only: bool = False) -> TempBlob:
        """A new temporary blob; unbuffered when readers follow it while it grows. ``name``: a
        known name (``<name>.part`` in :attr:`tmp`) other processes can find, for a writer
        that holds the lock of that name (a leftover of a crash under it is replaced).
        ``sha256_only``: the writer needs no md5 or blake2b-256 of it (see :class:`Digests`)."""
        ...

    def lock_path(self, name: str) -> Path:
        """A lock file in the spool, for writers in several processes of this machine."""
        ...

    def remove_stale_temps(self, older_than: float = 0.0) -> int:
        """Delete leftovers of interrupted writes (at start-up, before serving)."""
        ...

    def commit(self, temp: TempBlob, *, sync: bool = True) -> str:
        """Make ``temp`` visible under its sha256 (returned); never rewrite an existing blob.
        ``sync=False``: durable only after :meth:`sync` (or the caller's batch sync)."""
        ...

    def put_bytes(self, data: bytes, *, sync: bool = True) -> str: ...

    def sync(self, sha256: str) -> None:
        """Make a blob committed with ``sync=False`` durable."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int:
        """The blob's size (FileNotFoundError if absent)."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """A seekable binary reader of the blob (FileNotFoundError if absent); the caller closes it."""
        ...

    def read_bytes(self, sha256: str) -> bytes: ...

    def read_range(self, sha256: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start`` (fewer only at the end of the blob)."""
        ...

    def aiter_range(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (inclusive), streamed without blocking the event loop."""
        ...

    def presigned_url(self, sha256: str, expires: float) -> str | None:
        """A URL a client may fetch the blob from directly for ``expires`` seconds, where the
        backend has such a thing (None otherwise)."""
        ...

    def check(self) -> str | None:
        """None when the store can be used; else why not, in a few words (for ``/ready``)."""
        ...

    def delete(self, sha256: str) -> bool:
        """Remove a blob; False if there was none."""
        ...

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every blob, in no particular order."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """The blob as a local file, where the backend keeps local files (FileNotFoundError if
        the blob is absent); None from a backend that keeps none, without asking whether the
        blob exists (that costs an object store a request: ask :meth:`size`)."""
        ...

    # Garbage collection sets a blob aside (readers no longer find it), looks once more, then
    # purges it or puts it back; a gc killed midway is finished by the next one's recover_aside.

    def set_aside(self, sha256: str) -> BlobInfo | None:
        """Take the blob out of reach atomically; its size and mtime. None if it is gone."""
        ...

    def put_back(self, sha256: str) -> None:
        """Return a set-aside blob (unless a writer already stored the same bytes again)."""
        ...

    def purge(self, sha256: str, *, older_than: float) -> bool:
        """Delete a set-aside blob for good, unless a writer reused it after ``older_than`` (its
        mtime moved: then it goes back); True if deleted."""
        ...

    def recover_aside(self, keep: Callable[[str], bool]) -> None:
        """Finish a gc killed midway: put back what ``keep`` names, purge the rest."""
        ...


class LocalSpool:
    """The local spool every backend keeps under ``root``: ``tmp/`` for temporary blobs and
    ``locks/`` for the lock files of writers in several processes (see :class:`BlobStore`)."""

    root: Path
    tmp: Path

    def _open_spool(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        (root / "locks").mkdir(parents=True, exist_ok=True)

    def new_temp(self, *, buffered: bool = True, name: str | None = None, sha256_only: bool = False) -> TempBlob:
        if name is None:
            path = self.tmp / f"{uuid.uuid4().hex}.part"
        else:
            path = self.tmp / f"{name}.part"
            path.unlink(missing_ok=True)  # a crash's leftover under that name
        return TempBlob(path, path.open("xb", buffering=-1 if buffered else 0), sha256_only=sha256_only)  # type: ignore[arg-type]

    def lock_path(self, name: str) -> Path:
        """Lock files stay (removing one another process may be locking is a race); start-up
        clears them."""
        return self.root / "locks" / name

    def remove_stale_temps(self, older_than: float = 0.0) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for part in [*self.tmp.glob("*.part"), *(self.root / "locks").iterdir()]:
            try:
                if part.stat().st_mtime <= cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


async def iter_range_by_reads(store: BlobStore, sha256: str, start: int, end: int,
                              chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """``aiter_range`` as a backend with cheap reads does it: one read per MiB, on a thread."""
    import anyio.to_thread

    offset = start
    while offset <= end:
        data = await anyio.to_thread.run_sync(store.read_range, sha256, offset, min(chunk, end + 1 - offset))
        if not data:
            raise OSError(f"blob {sha256} is shorter than its recorded size")
        offset += len(data)
        yield data


def put_through_temp(store: BlobStore, data: bytes, *, sync: bool = True) -> str:
    """``put_bytes`` as every backend does it: a temporary blob, committed (discarded on failure)."""
    temp = store.new_temp()
    try:
        temp.write(data)
        return store.commit(temp, sync=sync)
    except BaseException:
        temp.discard()
        raise
