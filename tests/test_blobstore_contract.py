"""The blob-store contract (wheelcave.storage.base.BlobStore), run against every backend: the
filesystem store, the in-memory one and the object store (obstore against an S3-compatible
server on 127.0.0.1: moto's server mode, a real HTTP server speaking S3). A consumer that works
through this interface works on each of them."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from wheelcave.storage.base import BlobStore
from wheelcave.storage.filesystem import FilesystemBlobStore
from wheelcave.storage.memory import MemoryBlobStore

from wheelcave.storage.objectstore import ObjectBlobStore
from tests.support.s3 import S3Server

BACKENDS: dict[str, Callable[[Path], BlobStore]] = {
    "filesystem": FilesystemBlobStore,
    "memory": lambda root: MemoryBlobStore(root / "spool"),
}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server().start()
    server.client().create_bucket(Bucket="blobs")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in server.env.items():
            mp.setenv(name, value)
        yield server
    server.stop()


@pytest.fixture(params=[*sorted(BACKENDS), "object"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "object":
        request.getfixturevalue("s3")
        # a prefix of its own per test: the bucket is shared by the module
        return ObjectBlobStore(f"s3://blobs/t{uuid.uuid4().hex[:12]}", tmp_path / "spool", chunk_size=5 * 2**20)
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
    for call in (store.size, store.open, store.read_bytes):
        with pytest.raises(FileNotFoundError):
            call(missing)
    if store.local_path(store.put_bytes(b"x")) is not None:  # a backend with local files says so
        with pytest.raises(FileNotFoundError):
            store.local_path(missing)
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


def test_ranges_read_and_stream(store: BlobStore) -> None:
    data = os.urandom(3 * 2**20 + 17)
    sha = store.put_bytes(data)
    assert store.read_range(sha, 5, 10) == data[5:15]
    assert store.read_range(sha, len(data) - 3, 100) == data[-3:]  # short only at the end
    assert store.read_range(sha, 0, 0) == b""

    async def collect(start: int, end: int) -> bytes:
        return b"".join([chunk async for chunk in store.aiter_range(sha, start, end)])

    assert anyio.run(collect, 0, len(data) - 1) == data
    assert anyio.run(collect, 1_000_000, 2_500_000) == data[1_000_000:2_500_001]
    with pytest.raises(FileNotFoundError):
        store.read_range("e" * 64, 0, 1)


def test_an_opened_blob_seeks_as_a_file_does(store: BlobStore) -> None:
    """What zipfile does with a blob: seek from the end, and a blob too short for that is "not a
    zip file" (zipfile takes an OSError from the seek before the start for that, on a backend
    that does not stop at the start as a BytesIO does; any other error would escape it)."""
    tiny = store.put_bytes(b"PK\x05\x06short")  # a 9-byte "wheel" an upstream could list
    with store.open(tiny) as fh:
        assert fh.seek(-4, os.SEEK_END) == 5 and fh.read() == b"hort"
    with store.open(tiny) as fh, pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(fh)
    data = os.urandom(100_000)
    with store.open(store.put_bytes(data)) as fh:
        fh.seek(50_000)
        assert fh.tell() == 50_000 and fh.read(10) == data[50_000:50_010]
        assert fh.seek(-10, os.SEEK_CUR) == 50_000 and fh.read() == data[50_000:]


def test_a_big_blob_goes_up_in_parts_and_reads_back(store: BlobStore, tmp_path: Path) -> None:
    """Larger than the object store's part size: a multipart upload, read back exactly."""
    data = os.urandom(11 * 2**20 + 3)
    temp = store.new_temp()
    for i in range(0, len(data), 2**20):
        temp.write(data[i : i + 2**20])
    sha = store.commit(temp)
    assert sha == _sha(data) and store.size(sha) == len(data)
    with store.open(sha) as fh:
        fh.seek(6 * 2**20)
        assert fh.read(2**20) == data[6 * 2**20 : 7 * 2**20]
    assert not list(store.tmp.glob("*.part"))  # the spool keeps nothing once committed


def test_the_spool_names_temps_and_clears_leftovers(store: BlobStore) -> None:
    named = store.new_temp(name="abc.dl")
    named.write(b"partial")
    named.finish()
    assert (store.tmp / "abc.dl.part").read_bytes() == b"partial"
    again = store.new_temp(name="abc.dl")  # a crash's leftover under that name is replaced
    again.discard()
    store.lock_path("x").touch()
    store.new_temp().finish()
    assert store.remove_stale_temps() >= 1 and not list(store.tmp.glob("*.part"))


def test_ready_check(store: BlobStore) -> None:
    assert store.check() is None


def test_object_store_gc_marks_survive_a_writer_during_set_aside(s3: S3Server, tmp_path: Path) -> None:
    """The object store's gc without an atomic move: a writer that finds the blob present (its
    second look, after leaving its mark) while gc copies it away right after: the mark is newer
    than gc's cut-off, so purge puts the blob back instead of deleting what a row is about to
    point at. Without the mark the blob (stored "two hours ago") would be purged."""
    import datetime

    store = ObjectBlobStore(f"s3://blobs/t{uuid.uuid4().hex[:12]}", tmp_path / "spool")
    sha = store.put_bytes(b"shared bytes")
    final = f"sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    real_head = store._head  # noqa: SLF001
    looks = {"final": 0}

    def head(key: str):  # type: ignore[no-untyped-def]
        meta = real_head(key)
        if key == final and meta is not None:
            meta = {**meta, "last_modified": meta["last_modified"] - datetime.timedelta(hours=2)}
            looks["final"] += 1
            if looks["final"] == 2:  # the writer's second look saw it; gc sets it aside now
                store.set_aside(sha)
        return meta

    store._head = head  # type: ignore[method-assign]  # noqa: SLF001
    assert store.put_bytes(b"shared bytes") == sha  # the writer keeps the stored blob
    assert not store.exists(sha)  # ... which gc has just set aside
    store._head = real_head  # type: ignore[method-assign]  # noqa: SLF001
    assert not store.purge(sha, older_than=time.time() - 3600)  # the mark: put back
    assert store.read_bytes(sha) == b"shared bytes"


def test_an_unreachable_object_store_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on the endpoint: every call fails with StoreUnavailable (the web answers
    503, the CLI one error line), never obstore's own exception types; check() says why."""
    from tests.support.server import free_port
    from wheelcave.storage.base import StoreUnavailable

    closed = f"http://127.0.0.1:{free_port()}"
    for name, value in {"AWS_ENDPOINT_URL": closed, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    store = ObjectBlobStore("s3://nowhere/p", tmp_path / "spool", retry_config={"max_retries": 0})
    for call in (lambda: store.exists("a" * 64), lambda: store.put_bytes(b"x"), lambda: list(store.iter_blobs())):
        with pytest.raises(StoreUnavailable, match="the object store cannot be used"):
            call()
    assert store.check() is not None
    assert not list(store.tmp.glob("*.part"))  # the failed put left nothing in the spool


def test_the_object_store_asks_a_blobs_size_once(s3: S3Server, tmp_path: Path) -> None:
    """A download needs the size, then the bytes: the size is asked once per blob (it never
    changes); a blob deleted or set aside here is asked again (and is absent)."""
    store = ObjectBlobStore(f"s3://blobs/t{uuid.uuid4().hex[:12]}", tmp_path / "spool")
    sha = store.put_bytes(b"sized once")
    heads: list[str] = []
    real_head = store._head  # noqa: SLF001

    def counting(key: str):  # type: ignore[no-untyped-def]
        heads.append(key)
        return real_head(key)

    store._head = counting  # type: ignore[method-assign]  # noqa: SLF001
    assert store.size(sha) == 10 and store.size(sha) == 10 and len(heads) == 1
    assert store.exists(sha) and len(heads) == 2  # existence is always asked
    store.delete(sha)
    with pytest.raises(FileNotFoundError):
        store.size(sha)
    again = store.put_bytes(b"sized twice")
    store.size(again)
    store.set_aside(again)
    with pytest.raises(FileNotFoundError):
        store.size(again)
