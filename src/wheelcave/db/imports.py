"""Bulk writes for ``wheelcave import``: a batch of checked files listed in one transaction
(projects, blobs, files, audit rows and webhook deliveries in a few statements) instead of one
per file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from wheelcave.core import webhooks
from wheelcave.db import tables as t
from wheelcave.db.engine import Database
from wheelcave.db.records import NewFile, summary_of, utcnow
from wheelcave.db.rows import bulk_insert

__all__ = ["ImportRows"]


class ImportRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def listed(self, index_id: int, filenames: Sequence[str]) -> dict[str, str]:
        """filename -> sha256 of those ``filenames`` the index lists already."""
        found: dict[str, str] = {}
        async with self.db.read() as conn:
            for start in range(0, len(filenames), 500):
                chunk = list(filenames[start : start + 500])
                query = sa.select(t.files.c.filename, t.files.c.sha256).where(
                    t.files.c.index_id == index_id, t.files.c.filename.in_(chunk))
                found.update({r.filename: r.sha256 for r in await conn.execute(query)})
        return found

    async def tombstoned(self, index_id: int, filenames: Sequence[str]) -> set[str]:
        found: set[str] = set()
        async with self.db.read() as conn:
            for start in range(0, len(filenames), 500):
                chunk = list(filenames[start : start + 500])
                query = sa.select(t.file_tombstones.c.filename).where(
                    t.file_tombstones.c.index_id == index_id, t.file_tombstones.c.filename.in_(chunk))
                found.update(r.filename for r in await conn.execute(query))
        return found

    async def add_files(self, index_id: int, news: Sequence[NewFile], audit: Mapping[str, Any]) -> dict[str, str]:
        """List a batch of files (their blobs are durable already) in one transaction; returns
        filename -> sha256 as listed afterwards (another writer's file under a name wins)."""
        if not news:
            return {}
        now = utcnow()
        async with self.db.write() as conn:
            projects = {n.project: n.display_name for n in news}
            await bulk_insert(conn, t.projects, [
                {"index_id": index_id, "name": name, "display_name": display, "created_at": now, "updated_at": now}
                for name, display in projects.items()], ignore_conflicts=True)
            ids: dict[str, int] = {}
            names = list(projects)
            for start in range(0, len(names), 500):
                query = sa.select(t.projects.c.name, t.projects.c.id).where(
                    t.projects.c.index_id == index_id, t.projects.c.name.in_(names[start : start + 500]))
                ids.update({r.name: r.id for r in await conn.execute(query)})
            blobs: dict[str, int] = {}
            for n in news:
                blobs[n.sha256] = n.size
                if n.metadata_sha256:
                    blobs[n.metadata_sha256] = n.metadata_size
            await bulk_insert(conn, t.blobs, [{"sha256": sha, "size": size, "created_at": now} for sha, size in blobs.items()],
                               ignore_conflicts=True)
            await bulk_insert(conn, t.files, [{
                "index_id": index_id, "project_id": ids[n.project], "filename": n.filename, "version": n.version,
                "kind": n.kind, "python_tag": n.python_tag, "sha256": n.sha256, "md5": n.md5,
                "blake2b_256": n.blake2b_256, "size": n.size, "requires_python": n.requires_python, "yanked": False,
                "yanked_reason": None, "upload_time": n.upload_time or now, "uploader": n.uploader,
                "metadata_sha256": n.metadata_sha256, "core_metadata": dict(n.core_metadata) if n.core_metadata else None,
                "summary": summary_of(n.core_metadata), "origin_url": None, "upstream_metadata": False, "origin_removed": False,
            } for n in news], ignore_conflicts=True)
            await conn.execute(sa.update(t.projects).where(t.projects.c.id.in_(list(ids.values()))).values(updated_at=now))
            await conn.execute(sa.update(t.indexes).where(t.indexes.c.id == index_id)
                               .values(generation=t.indexes.c.generation + 1))
            entries = [{
                "at": now, "actor": audit.get("actor"), "action": "file.import", "index_name": audit.get("index_name"),
                "project": n.project, "filename": n.filename, "address": None,
                "detail": {"sha256": n.sha256, "size": n.size, "version": n.version, "source": "import"},
            } for n in news]
            await bulk_insert(conn, t.audit_log, entries)
            listed: dict[str, str] = {}
            filenames = [n.filename for n in news]
            for start in range(0, len(filenames), 500):
                query = sa.select(t.files.c.filename, t.files.c.sha256).where(
                    t.files.c.index_id == index_id, t.files.c.filename.in_(filenames[start : start + 500]))
                listed.update({r.filename: r.sha256 for r in await conn.execute(query)})
            # An imported file is an upload to the index's webhooks (in this transaction: the
            # outbox); a name another writer took meanwhile is not this import's.
            hooks = (await conn.execute(sa.select(t.webhooks.c.id, t.webhooks.c.events)
                                        .where(t.webhooks.c.index_id == index_id))).all()
            wanted = [h.id for h in hooks if webhooks.wants(h.events, "upload")]
            if wanted:
                await bulk_insert(conn, t.webhook_deliveries, [
                    {"webhook_id": i, "event": "upload", "payload": webhooks.body_for("upload", entry, now),
                     "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
                    for entry, n in zip(entries, news, strict=True) if listed.get(n.filename) == n.sha256
                    for i in wanted])
            return listed
