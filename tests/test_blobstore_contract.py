"""The blob-store contract (wheelcave.storage.base.BlobStore), run against every backend: the
filesystem store and the in-memory one (the object store joins when it is built). A consumer
that works through this interface works on each of them."""

from __future__ import annotations

import hashlib
import os
import threading
import time
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


def test_set_aside_then_purge_or_put_back(store: BlobStore) -> None:
    """What gc does: a blob set aside is out of reach; put back it is there again; purged it is
    gone, unless a writer reused it after the cut-off (then it goes back)."""
    keep, drop = store.put_bytes(b"keep me"), store.put_bytes(b"drop me")
    for sha in (keep, drop):
        info = store.set_aside(sha)
        assert info is not None and info.size == 7 and not store.exists(sha)
    assert store.set_aside(keep) is None  # already aside
    store.put_back(keep)
    assert store.read_bytes(keep) == b"keep me"
    assert store.purge(drop, older_than=time.time() + 60) and not store.exists(drop)
    fresh = store.put_bytes(b"reused")
    assert store.set_aside(fresh) is not None
    assert not store.purge(fresh, older_than=time.time() - 3600)  # touched after the cut-off
    assert store.read_bytes(fresh) == b"reused"


def test_a_writer_of_the_same_bytes_while_aside_wins(store: BlobStore) -> None:
    sha = store.put_bytes(b"same bytes")
    store.set_aside(sha)
    assert store.put_bytes(b"same bytes") == sha  # the blob is gone: the writer stores its own
    store.put_back(sha)  # gc changes its mind: the writer's copy stays, one blob
    assert store.read_bytes(sha) == b"same bytes" and [b.sha256 for b in store.iter_blobs()] == [sha]


def test_recover_aside_finishes_a_killed_gc(store: BlobStore) -> None:
    listed, unlisted = store.put_bytes(b"listed"), store.put_bytes(b"unlisted")
    store.set_aside(listed)
    store.set_aside(unlisted)
    store.recover_aside(lambda sha: sha == listed)
    assert store.exists(listed) and not store.exists(unlisted)
    store.recover_aside(lambda sha: True)  # nothing left aside
    assert not store.exists(unlisted)
