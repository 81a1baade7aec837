"""One upstream download per file, however many clients ask at once, in this process and in the
other worker processes of the same data folder.

The download runs as its own task, writing to an unbuffered temporary blob while hashing.
Every client that asks meanwhile follows the growing file, so the first bytes reach the first
client while the rest is still arriving. At the end the sha256 is checked against what the
upstream's page promised: a match commits the blob; a mismatch or a truncated transfer keeps
nothing, and every follower's transfer fails. Followers never send the last byte before the
hash is verified, so a client (or a proxy between) never holds a complete body of wrong bytes:
the response is cut short and the client reports an error. A download that is cancelled (a
shutdown) fails its followers the same way instead of leaving them waiting.

Across worker processes (``--workers N``): the downloading process holds a lock file for the
sha256 and writes to a temporary file of a known name; a process that finds the lock taken
follows that file instead of downloading again (:class:`RemoteDownload`: it polls the file's
growth and the lock, and holds back the last byte until the blob is committed).

Across replicas (other machines, one database and one blob store): a download first takes a
cluster lock for the sha256 (:class:`ClusterLocks`: PostgreSQL advisory locks). A replica that
finds it taken waits; when it gets the lock, the blob is usually in the shared store by then, and
its clients get the bytes from there, not from the upstream. Only one upstream download then,
whichever replica each client reaches.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread

from wheelcave.errors import UpstreamError
from wheelcave.storage.base import BlobStore
from wheelcave.core.redact import mask_url, redact
from wheelcave.upstream.client import UpstreamClient

__all__ = ["ClusterLocks", "Download", "FileFetcher", "NoClusterLocks"]

log = logging.getLogger("wheelcave.mirror")
_CHUNK = 256 * 1024


class ClusterLocks(Protocol):
    """One holder at a time of a named lock across every replica of the database."""

    def hold(self, name: str) -> AbstractAsyncContextManager[None]: ...


class NoClusterLocks:
    """One machine (SQLite): the lock files of the spool are enough."""

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        yield


@dataclass(frozen=True)
class DownloadSpec:
    url: str
    sha256: str
    filename: str
    size: int | None


def _try_lock(path: os.PathLike[str] | str, *, shared: bool = False) -> int | None:
    """An fd holding ``flock`` on ``path``, or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


async def _read(fd: int, sent: int, ready: int, filename: str) -> bytes:
    """The next chunk a follower may send: bytes ``sent`` up to ``ready`` (1 MiB at most)."""
    chunk = await anyio.to_thread.run_sync(os.pread, fd, min(_CHUNK * 4, ready - sent), sent)
    if not chunk:
        raise UpstreamError(f"{filename}: cached bytes vanished")
    return chunk


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class Download:
    def __init__(self, spec: DownloadSpec, store: BlobStore, lock_fd: int | None = None,
                 cluster: ClusterLocks | None = None) -> None:
        self.spec = spec
        self.store = store
        self.cluster = cluster or NoClusterLocks()
        #: Where the bytes came from: "upstream", or "store" (another replica fetched them).
        self.source = "upstream"
        self.lock_fd = lock_fd  # held until the blob is committed or the download failed
        # Its row keeps the upstream's sha256 and nothing else: no md5 or blake2b-256 to make.
        self.temp = store.new_temp(buffered=False, name=f"{spec.sha256}.dl", sha256_only=True)
        self.written = 0
        self.total: int | None = spec.size
        self.done = False
        self.error: Exception | None = None
        self.started = asyncio.Event()  # headers arrived (or the download failed before)
        self.recorded = asyncio.Event()  # finished, and its rows written (or that failed)
        self._progress = asyncio.Event()

    def _pulse(self) -> None:
        event, self._progress = self._progress, asyncio.Event()
        event.set()

    async def _receive(self, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            # writing and hashing 256 KiB is off the event loop
            await anyio.to_thread.run_sync(self.temp.write, chunk)
            self.written += len(chunk)
            self._pulse()

    async def _from_upstream(self, client: UpstreamClient) -> None:
        async with client.download(self.spec.url) as response:
            length = response.headers.get("content-length")
            if length and length.isdigit():
                if self.total is not None and int(length) != self.total:
                    raise UpstreamError(
                        f"{self.spec.filename}: upstream sends {length} bytes, its page said {self.total}"
                    )
                self.total = int(length)
            self.started.set()
            await self._receive(response.aiter_raw(_CHUNK))

    async def _from_store(self) -> None:
        """Another replica downloaded it while this one waited for the lock: from the store."""
        self.source = "store"
        size = await anyio.to_thread.run_sync(self.store.size, self.spec.sha256)
        if self.total is not None and size != self.total:
            raise UpstreamError(f"{self.spec.filename}: the stored blob has {size} bytes, the page said {self.total}")
        self.total = size
        self.started.set()
        if size:
            await self._receive(self.store.aiter_range(self.spec.sha256, 0, size - 1))

    async def run(self, client: UpstreamClient, on_commit: Callable[[Download], Awaitable[None]]) -> None:
        try:
            # Held until the blob is committed: a replica that waited finds it in the store.
            async with self.cluster.hold(self.spec.sha256):
                if await anyio.to_thread.run_sync(self.store.exists, self.spec.sha256):
                    await self._from_store()
                else:
                    await self._from_upstream(client)
                if self.total is not None and self.written != self.total:
                    raise UpstreamError(f"{self.spec.filename}: upstream sent {self.written} of {self.total} bytes")
                actual = self.temp.digests.sha256
                if actual != self.spec.sha256:
                    raise UpstreamError(
                        f"{self.spec.filename}: sha256 {actual} does not match the upstream's {self.spec.sha256}"
                    )
                self.total = self.written
                await anyio.to_thread.run_sync(self.store.commit, self.temp)
            self.done = True  # verified and in the blob store: followers may finish now
        except Exception as exc:  # noqa: BLE001 - every failure ends the download the same way
            self.error = exc if isinstance(exc, UpstreamError) else UpstreamError(
                f"{self.spec.filename}: download from {mask_url(self.spec.url)} failed: {type(exc).__name__}: {redact(str(exc))}"
            )
            log.error("mirror.download_failed file=%s: %s", self.spec.filename, self.error)
            self.temp.discard()
        except BaseException:  # cancelled (a shutdown): followers must not wait for bytes that never come
            self.error = UpstreamError(f"{self.spec.filename}: the download was cancelled")
            self.temp.discard()
            self._release()
            self.started.set()
            self._pulse()
            self.recorded.set()
            raise
        finally:
            self._release()
            self.started.set()
            self._pulse()
        try:
            if self.done:
                await on_commit(self)  # the rows; a client does not wait for them
        except Exception as exc:  # noqa: BLE001 - the bytes are kept; the next request records them
            log.error("mirror.record_failed file=%s: %s: %s", self.spec.filename, type(exc).__name__, exc)
        finally:
            self.recorded.set()

    def _release(self) -> None:
        if self.lock_fd is not None:
            _unlock(self.lock_fd)
            self.lock_fd = None

    def open_follower(self) -> int:
        """A file descriptor on the growing file; valid even after commit (rename) or discard."""
        return os.open(self.temp.path, os.O_RDONLY)

    async def follow(self, fd: int) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive; raises if the download fails. The last byte waits
        for the verified hash (see the module docstring)."""
        sent = 0
        try:
            while True:
                progress = self._progress
                if self.error is not None:
                    raise self.error
                ready = self.written if self.done else self.written - 1
                if sent < ready:
                    chunk = await _read(fd, sent, ready, self.spec.filename)
                    sent += len(chunk)
                    yield chunk
                    continue
                if self.done:
                    return
                await progress.wait()
        finally:
            os.close(fd)


class RemoteDownload:
    """A download another worker process is making: its growing file, followed by polling.

    Offers what the files route uses of a :class:`Download` (``started``, ``error``,
    ``written``, ``total``, ``follow``). Finished is when the other process released the lock:
    the blob is there (the rest is read from it) or the download failed (the transfer is cut)."""

    POLL = 0.02

    def __init__(self, spec: DownloadSpec, store: BlobStore) -> None:
        self.spec = spec
        self.store = store
        self.total = spec.size
        self.written = 1  # bytes are on their way (the files route only asks "none at all?")
        self.error: Exception | None = None
        self.started = asyncio.Event()
        self.started.set()

    def _finished(self) -> bool:
        fd = _try_lock(self.store.lock_path(self.spec.sha256), shared=True)
        if fd is None:
            return False
        _unlock(fd)
        return True

    async def follow(self, fd: int | None) -> AsyncIterator[bytes]:
        """The other process's file as it grows; once it finished, the rest from the blob store
        (``fd`` None: it had finished before we looked)."""
        sent = 0
        try:
            while fd is not None:
                finished = self._finished()
                if finished:
                    if not self.store.exists(self.spec.sha256):
                        raise UpstreamError(f"{self.spec.filename}: the download by another worker failed")
                    break
                ready = os.fstat(fd).st_size - 1
                if sent < ready:
                    chunk = await _read(fd, sent, ready, self.spec.filename)
                    sent += len(chunk)
                    yield chunk
                    continue
                await asyncio.sleep(self.POLL)
            size = await anyio.to_thread.run_sync(self.store.size, self.spec.sha256)
            if sent < size:
                async for chunk in self.store.aiter_range(self.spec.sha256, sent, size - 1):
                    yield chunk
        finally:
            if fd is not None:
                os.close(fd)


class FileFetcher:
    """Single-flight downloads, keyed by sha256: in this process, in the other processes of its
    spool (lock files), and across replicas (``cluster``)."""

    def __init__(self, cluster: ClusterLocks | None = None) -> None:
        self.cluster = cluster or NoClusterLocks()
        self._active: dict[str, Download] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: dict[asyncio.Task[None], UpstreamClient] = {}

    def uses(self, client: UpstreamClient) -> bool:
        """Whether a download in flight reads from ``client`` (it must not be closed yet)."""
        return any(c is client for c in self._clients.values())

    def get(
        self, spec: DownloadSpec, store: BlobStore, client: UpstreamClient,
        on_commit: Callable[[Download], Awaitable[None]],
    ) -> tuple[Download, int | None, bool]:
        """The download of ``spec`` (started if new), a follower fd on it (None: read the blob
        store), and whether it is new."""
        download = self._active.get(spec.sha256)
        if download is not None and download.error is None:
            try:
                return download, download.open_follower(), False
            except FileNotFoundError:
                pass  # finished and committed this instant: start over (the caller re-checks)
        lock_fd = _try_lock(store.lock_path(spec.sha256))
        if lock_fd is None:  # another worker process downloads it: follow its file
            remote = self._remote(spec, store)
            if remote is not None:
                return remote  # type: ignore[return-value]
            if store.exists(spec.sha256):  # it finished meanwhile: the bytes are here
                return RemoteDownload(spec, store), None, False  # type: ignore[return-value]
            lock_fd = _try_lock(store.lock_path(spec.sha256))  # it failed meanwhile: our turn
        download = Download(spec, store, lock_fd, self.cluster)
        fd = download.open_follower()
        self._active[spec.sha256] = download
        task = asyncio.create_task(download.run(client, on_commit))
        self._tasks.add(task)
        self._clients[task] = client

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._clients.pop(t, None)
            if self._active.get(spec.sha256) is download:
                del self._active[spec.sha256]

        task.add_done_callback(finished)
        return download, fd, True

    @staticmethod
    def _remote(spec: DownloadSpec, store: BlobStore) -> tuple[RemoteDownload, int, bool] | None:
        """A follower of another process's download; None when there is none (any more)."""
        remote = RemoteDownload(spec, store)
        for _ in range(100):  # the other process creates its file right after taking the lock
            try:
                return remote, os.open(store.tmp / f"{spec.sha256}.dl.part", os.O_RDONLY), False
            except FileNotFoundError:
                if remote._finished():  # noqa: SLF001 - its own class's check
                    return None
                time.sleep(0.001)
        return None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
