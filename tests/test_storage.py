"""The filesystem blob store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from wheelcave.storage.filesystem import FilesystemBlobStore


def test_temp_commit_and_digests(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    temp = store.new_temp()
    temp.write(b"hello ")
    temp.write(b"world")
    assert temp.digests.md5 == hashlib.md5(b"hello world").hexdigest()
    assert temp.digests.blake2b_256 == hashlib.blake2b(b"hello world", digest_size=32).hexdigest()
    sha = store.commit(temp)
    assert sha == hashlib.sha256(b"hello world").hexdigest()
    assert store.path(sha) == tmp_path / "sha256" / sha[:2] / sha[2:4] / sha
    assert store.read_bytes(sha) == b"hello world"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_sha256_only_temp_commits_the_same_blob_and_refuses_the_other_digests(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    temp = store.new_temp(sha256_only=True)
    temp.write(b"hello world")
    with pytest.raises(ValueError, match="not computed"):
        _ = temp.digests.md5  # never a digest of nothing
    with pytest.raises(ValueError, match="not computed"):
        _ = temp.digests.blake2b_256
    assert store.commit(temp) == hashlib.sha256(b"hello world").hexdigest()


def test_existing_blob_is_never_rewritten(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    sha = store.put_bytes(b"same")
    before = store.path(sha).stat()
    assert store.put_bytes(b"same") == sha
    after = store.path(sha).stat()
    assert before.st_ino == after.st_ino  # the same file, not a new one
    assert after.st_mtime_ns >= before.st_mtime_ns  # touched: gc spares blobs wanted again
    assert store.read_bytes(sha) == b"same"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_discard_and_stale_cleanup(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    temp = store.new_temp()
    temp.write(b"partial")
    temp.discard()
    assert not temp.path.exists()
    left = store.new_temp()
    left.write(b"abandoned")
    assert store.remove_stale_temps() == 1
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "abc", "g" * 64])
def test_only_hex_keys(tmp_path: Path, bad: str) -> None:
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        store.path(bad)
    assert not store.exists("0" * 64)
    with pytest.raises(FileNotFoundError):
        store.path("0" * 64)


def test_commit_is_durable_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes and the rename are fsynced before commit returns (a power loss cannot be had
    here, so os.fsync is watched: every call is still made for real)."""
    import os
    import stat as stat_module

    from wheelcave.storage.filesystem import FilesystemBlobStore

    store = FilesystemBlobStore(tmp_path / "blobs")
    synced: list[str] = []
    real = os.fsync

    def watched(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append("dir" if stat_module.S_ISDIR(mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", watched)
    temp = store.new_temp()
    temp.write(b"durable bytes")
    sha = store.commit(temp)
    assert store.read_bytes(sha) == b"durable bytes"
    # the file, then its folder and the two folders made for it
    assert synced == ["file", "dir", "dir", "dir"]


def test_sqlite_commits_are_durable(tmp_path: Path) -> None:
    import asyncio

    import sqlalchemy as sa

    from wheelcave.db.engine import Database

    async def go(mode: str) -> int:
        db = Database(f"sqlite:///{tmp_path / mode}.db", sqlite_synchronous=mode)
        async with db.write() as conn:
            value = (await conn.execute(sa.text("PRAGMA synchronous"))).scalar_one()
        await db.dispose()
        return int(value)

    assert asyncio.run(go("full")) == 2 and asyncio.run(go("normal")) == 1
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Database("sqlite:///x.db", sqlite_synchronous="off")


def test_a_blob_committed_unsynced_is_readable_at_once_and_synced_later(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    sha = store.put_bytes(b"answered first", sync=False)
    assert store.read_bytes(sha) == b"answered first"
    store.sync(sha)  # what a row waits for
    assert store.read_bytes(sha) == b"answered first"
    with pytest.raises(FileNotFoundError):
        store.sync("0" * 64)  # nothing to make durable: the caller writes no row
    with pytest.raises(ValueError):
        store.sync("../../etc/passwd")
