"""gc against concurrent writes (issue 10, defect 8), in process on SQLite: the moments a
concurrent upload could strike are reached through gc's ``on_trashed`` hook, not by timing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa

from tests.test_db import new_file
from wheelcave.db import tables as t
from wheelcave.db.engine import Database
from wheelcave.db.repository import Repository
from wheelcave.jobs.gc import collect_garbage
from wheelcave.storage.filesystem import FilesystemBlobStore

DATA = b"bytes an old upload left behind"
SHA = hashlib.sha256(DATA).hexdigest()


def _old(store: FilesystemBlobStore) -> Path:
    path = store.path(SHA)
    past = time.time() - 7 * 86400
    os.utime(path, (past, past))
    return path


async def _setup(tmp_path: Path) -> tuple[Database, Repository, int, FilesystemBlobStore]:
    """A migrated SQLite database with one hosted index, and a blob store."""
    db = Database(f"sqlite:///{tmp_path / 'gc.db'}")
    await db.migrate()
    repo = Repository(db)
    index = await repo.create_index("h", "hosted", {})
    assert index is not None
    return db, repo, index.id, FilesystemBlobStore(tmp_path / "blobs")


def _run(tmp_path: Path, hook: Callable[[Repository, FilesystemBlobStore, int], Awaitable[None]] | None) -> tuple[bool, int]:
    """gc over one old, unlisted blob; ``hook`` plays the concurrent write. Whether the blob is
    there after, and how many blobs gc removed."""
    async def go() -> tuple[bool, int]:
        db, repo, index_id, store = await _setup(tmp_path)
        store.put_bytes(DATA)
        _old(store)
        async def on_trashed(name: str) -> None:
            if hook is not None and name == SHA:
                await hook(repo, store, index_id)

        report = await collect_garbage([], repo, store, grace=3600, on_trashed=on_trashed)
        there = store.exists(SHA)
        await db.dispose()
        return there, report.removed_blobs

    return asyncio.run(go())


def test_an_unlisted_old_blob_is_collected(tmp_path: Path) -> None:
    assert _run(tmp_path, None) == (False, 1)


def test_a_blob_touched_before_it_was_moved_aside_goes_back(tmp_path: Path) -> None:
    """An upload reused the blob (its commit touched it) just before gc moved it: gc sees the
    touch on the moved file and puts it back."""
    async def touched(repo: Repository, store: FilesystemBlobStore, index_id: int) -> None:
        os.utime(store.root / "trash" / SHA)  # the same inode the upload touched
    assert _run(tmp_path, touched) == (True, 0)


def test_an_upload_after_the_move_writes_its_own_copy(tmp_path: Path) -> None:
    """An upload of the same bytes right after gc moved the blob aside: its commit finds no blob
    and puts its own copy in place; gc deletes only the aside copy; the upload's row is fine."""
    async def upload(repo: Repository, store: FilesystemBlobStore, index_id: int) -> None:
        temp = store.new_temp()
        temp.write(DATA)
        assert store.commit(temp) == SHA  # its row is written after gc is done: the bytes are there for it
    assert _run(tmp_path, upload) == (True, 1)


def test_a_row_committed_meanwhile_keeps_the_blob(tmp_path: Path) -> None:
    async def insert(repo: Repository, store: FilesystemBlobStore, index_id: int) -> None:
        # the row commits while gc holds the blob aside
        await repo.add_file(new_file(index_id, "p-1.0-py3-none-any.whl", SHA), {"actor": "t", "action": "file.upload"})
    assert _run(tmp_path, insert) == (True, 0)


def test_a_gc_killed_midway_is_finished_by_the_next(tmp_path: Path) -> None:
    async def go() -> None:
        db, repo, index_id, store = await _setup(tmp_path)
        (store.root / "trash").mkdir()
        listed, unlisted = b"listed bytes", b"unlisted bytes"
        for data in (listed, unlisted):  # what the killed gc had moved aside
            (store.root / "trash" / hashlib.sha256(data).hexdigest()).write_bytes(data)
        await repo.add_file(new_file(index_id, "p-1.0-py3-none-any.whl", hashlib.sha256(listed).hexdigest()),
                            {"actor": "t", "action": "file.upload"})
        async with db.write() as conn:  # a blobs row whose bytes the killed gc had deleted
            await conn.execute(sa.insert(t.blobs).values(sha256="e" * 64, size=1, created_at=sa.func.now()))
        await collect_garbage([], repo, store, grace=0)
        assert store.read_bytes(hashlib.sha256(listed).hexdigest()) == listed
        assert list((store.root / "trash").iterdir()) == []
        assert "e" * 64 not in await repo.unreferenced_blobs()
        await db.dispose()

    asyncio.run(go())
