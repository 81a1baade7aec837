"""``wheelcave import``: fill a hosted index from folders, wheelhouses, pip's wheel cache and
air-gap bundles.

Every file gets the checks an upload gets (:func:`inspect_archive`: the filename, the
archive, its core metadata and that they agree) and is refused with the upload's reason
when it fails them; a refused file is never stored. A file the index lists with the same
bytes is "already there" (a second run imports nothing); other bytes under a listed or
deleted (immutable index) filename are refused. Upload times come from the file's mtime, or
from a bundle's manifest, which also carries yank state.

Speed: the checks and the copying into the blob store run in worker processes; the blobs of a
batch are made durable with one :func:`os.sync` and only then listed, the whole batch in one
transaction (:class:`ImportRows`). So an import of 100,000 small files does not pay an fsync
and a commit per file, and "no row without its bytes" holds as for uploads.

A bundle is checked whole against its manifest before anything of it is stored
(:func:`read_bundle`).
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread

from wheelcave.db.imports import ImportRows
from wheelcave.db.repository import NewFile
from wheelcave.errors import WheelcaveError
from wheelcave.indexes.hosted import HostedIndex, inspect_archive
from wheelcave.jobs.bundles import MANIFEST, BundleError, ReadBundle, read_bundle, read_manifest
from wheelcave.storage.base import BlobStore
from wheelcave.storage.select import open_blob_store

__all__ = ["Importer", "Outcome", "discover"]

#: Names that look like distributions (the rest of a folder is left alone, not refused).
_DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")
#: Files listed per transaction.
BATCH = 1000
#: Files a worker process checks per round trip.
_CHUNK = 50


@dataclass(frozen=True)
class Outcome:
    source: str  # the path as the user gave it (or bundle:member)
    filename: str
    status: str  # "imported", "present" or "refused"
    reason: str | None = None


@dataclass(frozen=True)
class _Item:
    source: str
    path: Path
    filename: str
    upload_time: datetime | None
    yanked: bool = False
    yanked_reason: str | None = None


def _is_bundle(path: Path) -> bool:
    return path.is_file() and path.name.endswith(".tar") and not path.name.endswith(".tar.gz")


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Distribution files under ``paths`` (folders recursively, in name order), bundles
    (``.tar``) as themselves. Hidden folders and partial downloads are skipped."""
    for path in paths:
        if path.is_dir() and not (path / MANIFEST).is_file():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(_DIST_SUFFIXES) and not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


_STORES: dict[tuple[str, str], BlobStore] = {}


def _die_with_parent() -> None:
    """A worker process's initializer: on Linux, ask to be killed when the importing process
    dies (a ``kill -9`` of ``wheelcave import`` must not leave idle workers behind)."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _inspect_many(jobs: list[tuple[str, str]], store_spec: tuple[str, str], max_metadata: int,
                  max_size: int | None) -> list[dict[str, Any]]:
    """In a worker process: :func:`_inspect` a chunk of (source, filename) (one round trip)."""
    return [_inspect(source, filename, store_spec, max_metadata, max_size) for source, filename in jobs]


def _inspect(source: str, filename: str, store_spec: tuple[str, str], max_metadata: int, max_size: int | None) -> dict[str, Any]:
    """In a worker process: copy one file into the blob store's temporary folder (hashing
    it), check it as an upload is checked, and commit its blob and metadata blob without an
    fsync (the parent syncs the batch before listing it)."""
    store = _STORES.get(store_spec)
    if store is None:  # this process's own client of the same store (the folder, or the bucket)
        store = _STORES[store_spec] = open_blob_store(Path(store_spec[0]), store_spec[1])
    temp = store.new_temp()
    try:
        with open(source, "rb") as fh:
            while chunk := fh.read(1 << 20):
                temp.write(chunk)
                if max_size is not None and temp.size > max_size:
                    return {"refused": f"{filename} is over this index's size limit of {max_size} bytes"}
        temp.finish(sync=False)
        try:
            dist, meta, metadata_bytes = inspect_archive(temp.path, filename, max_metadata)
        except WheelcaveError as exc:
            return {"refused": exc.message}
        digests = temp.digests
        sha256 = store.commit(temp, sync=False)
        metadata_sha = store.put_bytes(metadata_bytes, sync=False) if dist.kind == "wheel" else None
        return {
            "project": dist.project, "display_name": meta.name, "version": str(meta.version), "kind": dist.kind,
            "python_tag": dist.python_tag, "sha256": sha256, "md5": digests.md5, "blake2b_256": digests.blake2b_256,
            "size": digests.size, "requires_python": meta.requires_python, "metadata_sha256": metadata_sha,
            "metadata_size": len(metadata_bytes), "core_metadata": dict(meta.fields),
        }
    except OSError as exc:
        return {"refused": f"cannot read it: {exc.strerror or exc}"}
    finally:
        temp.discard()  # a no-op once committed


class Importer:
    def __init__(
        self, index: HostedIndex, blobs: BlobStore, rows: ImportRows, *, actor: str = "import",
        jobs: int = 2, on_outcome: Callable[[Outcome], None] = lambda o: None,
        on_bytes: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.rows = rows
        self.actor = actor
        self.jobs = max(1, jobs)
        self.on_outcome = on_outcome
        self.on_bytes = on_bytes

    async def run(self, paths: Iterable[Path]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        items: list[_Item] = []
        bundles: list[ReadBundle] = []
        try:
            for path in discover(paths):
                if _is_bundle(path) or (path.is_dir() and (path / MANIFEST).is_file()):
                    found = await self._open_bundle(path)
                    if isinstance(found, Outcome):
                        outcomes.append(found)
                        continue
                    bundles.append(found)
                    for entry in found.manifest.files:
                        items.append(_Item(f"{path}:{entry.filename}", found.temps[entry.filename].path, entry.filename,
                                           _parse_time(entry.upload_time), entry.yanked, entry.yanked_reason))
                elif not path.is_file():
                    outcomes.append(self._tell(Outcome(str(path), path.name, "refused", "not a file")))
                else:
                    try:
                        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    except OSError as exc:
                        outcomes.append(self._tell(Outcome(str(path), path.name, "refused", f"cannot read it: {exc.strerror}")))
                        continue
                    items.append(_Item(str(path), path, path.name, mtime))
            outcomes += await self._import(items)
        finally:
            for bundle in bundles:
                bundle.discard()
        return outcomes

    async def _open_bundle(self, path: Path) -> ReadBundle | Outcome:
        try:
            if path.is_dir():
                return await anyio.to_thread.run_sync(_read_folder, path, self.blobs, self.on_bytes)
            return await anyio.to_thread.run_sync(read_bundle, path, self.blobs, self.on_bytes)
        except (BundleError, OSError) as exc:
            return self._tell(Outcome(str(path), path.name, "refused", f"bundle refused, nothing imported: {exc}"))

    def _tell(self, outcome: Outcome) -> Outcome:
        self.on_outcome(outcome)
        return outcome

    async def _import(self, items: list[_Item]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        index_id = self.index.id
        listed = await self.rows.listed(index_id, sorted({i.filename for i in items}))
        gone = await self.rows.tombstoned(index_id, [i.filename for i in items if i.filename not in listed]) \
            if self.index.policy.immutable else set()
        todo: list[_Item] = []
        first: dict[str, _Item] = {}
        for item in items:
            if item.filename in listed or item.filename in first:
                todo.append(item)  # decided by its hash below
                continue
            if item.filename in gone:
                outcomes.append(self._tell(Outcome(item.source, item.filename, "refused",
                                                   f"File already exists: {item.filename} was used by a file that has since "
                                                   "been deleted, and this index never takes a filename twice")))
                continue
            first[item.filename] = item
        outcomes += await self._compare(todo, listed, first)
        new = list(first.values())
        context = multiprocessing.get_context("spawn")  # no fork of a process running threads
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_die_with_parent) if len(new) > 1 else _Inline() as pool:
            for start in range(0, len(new), BATCH):
                batch = new[start : start + BATCH]
                chunks = [batch[at : at + _CHUNK] for at in range(0, len(batch), _CHUNK)]
                futures = [loop.run_in_executor(pool, _inspect_many, [(str(i.path), i.filename) for i in chunk],
                                                (str(self.blobs.root), self.blobs.url), self.index.max_metadata_size,
                                                self.index.policy.max_file_size) for chunk in chunks]
                results = [r for chunk_results in await asyncio.gather(*futures) for r in chunk_results]
                outcomes += await self._list(batch, results)
        return outcomes

    async def _compare(self, items: list[_Item], listed: dict[str, str], first: dict[str, _Item]) -> list[Outcome]:
        """Files whose name the index lists, or that an earlier file of this run takes:
        the same bytes are already there, others are refused."""
        outcomes = []
        for item in items:
            sha = await anyio.to_thread.run_sync(_sha256, item.path)
            theirs = listed.get(item.filename)
            if theirs is None:  # the name is taken by an earlier file of this run
                theirs = await anyio.to_thread.run_sync(_sha256, first[item.filename].path)
            if sha == theirs:
                outcomes.append(self._tell(Outcome(item.source, item.filename, "present")))
            else:
                outcomes.append(self._tell(Outcome(item.source, item.filename, "refused",
                                                   f"File already exists: {item.filename} with other bytes")))
        return outcomes

    async def _list(self, batch: list[_Item], results: list[dict[str, Any]]) -> list[Outcome]:
        outcomes = []
        news: list[tuple[_Item, NewFile]] = []
        for item, result in zip(batch, results, strict=True):
            if "refused" in result:
                outcomes.append(self._tell(Outcome(item.source, item.filename, "refused", result["refused"])))
                continue
            self.on_bytes(result["size"])
            news.append((item, NewFile(index_id=self.index.id, filename=item.filename, uploader=self.actor,
                                       upload_time=item.upload_time, **result)))
        if not news:
            return outcomes
        await anyio.to_thread.run_sync(os.sync)  # the batch's blobs are durable before any row names them
        listed = await self.rows.add_files(self.index.id, [n for _, n in news],
                                           {"actor": self.actor, "index_name": self.index.name})
        for item, new in news:
            if listed.get(item.filename) != new.sha256:  # a concurrent upload took the name
                outcomes.append(self._tell(Outcome(item.source, item.filename, "refused",
                                                   f"File already exists: {item.filename} with other bytes")))
                continue
            if item.yanked:
                await self.index.set_yanked(new.project, None, yanked=True, reason=item.yanked_reason,
                                            filename=item.filename, actor=self.actor)
            outcomes.append(self._tell(Outcome(item.source, item.filename, "imported")))
        return outcomes


class _Inline(Executor):
    """Runs work in the calling thread (a single file needs no worker process)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(exc)
        return future


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _read_folder(folder: Path, blobs: BlobStore, progress: Callable[[int], None]) -> ReadBundle:
    """An extracted bundle: checked like a tar (its files are packed into one first, which
    keeps a single reader and its checks)."""
    import tarfile
    import tempfile

    manifest = read_manifest(folder / MANIFEST)
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "bundle.tar"
        with tarfile.open(packed, "w") as tar:
            tar.add(folder / MANIFEST, MANIFEST, recursive=False)
            for f in manifest.files:
                for name in (f.filename, f"{f.filename}.metadata" if f.metadata_sha256 else None):
                    if name is None:
                        continue
                    member = folder / name
                    if not member.is_file() or member.is_symlink():
                        raise BundleError(f"{folder.name}: {name} is listed in the manifest but missing")
                    tar.add(member, name, recursive=False)
        return read_bundle(packed, blobs, progress)
