"""The blob-store contract (wheelcave.storage.base.BlobStore), run against every backend: the
filesystem store and the in-memory one (the object store joins when it is built). A consumer
that works through this interface works on each of them."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from wheelcave.storage.base import BlobStore
from wheelcave.storage.filesystem import FilesystemBlobStore
from wheelcave.storage.memory import MemoryBlobStore

BACKENDS: dict[str, Callable[[Path], BlobStore]] = {
    "filesystem": FilesystemBlobStore,
    "memory": lambda root: MemoryBlobStore(root / "spool"),
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return BACKENDS[request.param](tmp_path)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_then_read_every_way(store: BlobStore) -> None:
    data = os.urandom(300_000)
    sha = store.put_bytes(data)
    assert sha == _sha(data) and store.exists(sha) and store.size(sha) == len(data)
    assert store.read_bytes(sha) == data
    with store.open(sha) as fh:
        fh.seek(1000)
        assert fh.read(10) == data[1000:1010]
        fh.seek(-5, os.SEEK_END)
        assert fh.read() == data[-5:]
    local = store.local_path(sha)
    assert local is None or local.read_bytes() == data


def test_a_temp_hashes_while_written_and_commits_once(store: BlobStore) -> None:
    temp = store.new_temp()
    for piece in (b"hello ", b"world"):
        temp.write(piece)
    assert temp.digests.sha256 == _sha(b"hello world") and temp.size == 11
    assert temp.digests.md5 == hashlib.md5(b"hello world").hexdigest()
    sha = store.commit(temp)
    assert store.read_bytes(sha) == b"hello world"
    again = store.new_temp()
    again.write(b"hello world")
    assert store.commit(again) == sha  # the same content: the blob stays one
    assert [b.sha256 for b in store.iter_blobs()] == [sha]


def test_a_discarded_temp_leaves_nothing(store: BlobStore) -> None:
    temp = store.new_temp()
    temp.write(b"never committed")
    temp.discard()
    assert list(store.iter_blobs()) == [] and not store.exists(_sha(b"never committed"))


def test_unsynced_commits_read_at_once_and_sync_later(store: BlobStore) -> None:
    sha = store.put_bytes(b"answered first", sync=False)
    assert store.read_bytes(sha) == b"answered first"
    store.sync(sha)
    with pytest.raises(FileNotFoundError):
        store.sync("0" * 64)


def test_absent_blobs_and_bad_names(store: BlobStore) -> None:
    missing = "f" * 64
    assert not store.exists(missing) and not store.delete(missing)
    for call in (store.size, store.open, store.read_bytes, store.local_path):
        with pytest.raises(FileNotFoundError):
            call(missing)
    for bad in ("../../etc/passwd", "F" * 64, "a" * 63, "", "a" * 64 + "/x"):
        with pytest.raises(ValueError):
            store.exists(bad)
        with pytest.raises(ValueError):
            store.read_bytes(bad)


def test_delete_and_iterate(store: BlobStore) -> None:
    shas = {store.put_bytes(f"blob {i}".encode()) for i in range(5)}
    listed = {b.sha256: b for b in store.iter_blobs()}
    assert set(listed) == shas and all(b.size == 6 for b in listed.values()) and all(b.mtime > 0 for b in listed.values())
    gone = sorted(shas)[0]
    assert store.delete(gone) and not store.exists(gone)
    assert {b.sha256 for b in store.iter_blobs()} == shas - {gone}


def test_concurrent_writers_of_one_content(store: BlobStore) -> None:
    data = os.urandom(100_000)
    results: list[str] = []

    def write() -> None:
        results.append(store.put_bytes(data))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {_sha(data)} and store.read_bytes(_sha(data)) == data
    assert [b.sha256 for b in store.iter_blobs()] == [_sha(data)]
