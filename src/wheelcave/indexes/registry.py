"""The registry: index name → :class:`Index`, built from the ``indexes`` table.

The table is re-read at most every ``refresh_interval`` seconds (one small query), which
gives both the index definitions and their generation counters: a write committed by
another worker or replica shows in this process's pages within that interval.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Collection, Mapping, Sequence

import anyio

from wheelcave.core.remote import RemoteFile
from wheelcave.db.repository import FileRecord, IndexRecord, Repository
from wheelcave.errors import BadRequest, NotFound
from wheelcave.indexes.admin import default_grants
from wheelcave.indexes.base import Index
from wheelcave.indexes.changes import LocalChanges
from wheelcave.indexes.fetcher import ClusterLocks, FileFetcher
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.indexes.mirror import MirrorIndex
from wheelcave.indexes.mirror_config import MirrorConfig
from wheelcave.indexes.quiet import Quiet
from wheelcave.indexes.upstreams import UpstreamPool
from wheelcave.indexes.virtual import VirtualIndex
from wheelcave.metrics import Metrics
from wheelcave.storage.base import BlobStore
from wheelcave.upstream.discovery import PIP_DEFAULT

__all__ = ["DEFAULT_INDEXES", "Registry"]

#: What a new data folder gets: ``pypi`` mirrors the index pip on this machine uses.
DEFAULT_INDEXES: Sequence[tuple[str, str, Mapping[str, object]]] = (
    ("local", "hosted", {}),
    ("pypi", "mirror", {"upstream": PIP_DEFAULT}),
    ("main", "virtual", {"members": ["local", "pypi"], "upload_to": "local"}),
)


class Registry:
    def __init__(
        self,
        repo: Repository,
        blobs: BlobStore,
        *,
        max_metadata_size: int,
        refresh_interval: float = 0.5,
        metrics: Metrics | None = None,
        early_answers: bool = False,
        offline: bool = False,
        cluster_locks: ClusterLocks | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        #: Mirrors never contact their upstream (an export shows what they hold).
        self.offline = offline
        #: Mirrors answer first fetches before writing their rows: only where this process is
        #: the only one serving the database (SQLite, one worker), see MirrorIndex._answer_early.
        self.early_answers = early_answers
        #: Shared by the mirrors: their early answers' rows wait for a pause in their fetching.
        self.quiet = Quiet()
        self.fetcher = FileFetcher(cluster_locks)
        self.upstreams = UpstreamPool(self.fetcher)
        self.repo = repo
        self.blobs = blobs
        self.max_metadata_size = max_metadata_size
        self.refresh_interval = refresh_interval
        self._records: dict[str, IndexRecord] = {}
        self._by_id: dict[int, IndexRecord] = {}
        self._built: dict[str, Index] = {}
        self._views: dict[tuple[str, frozenset[str]], Index] = {}
        self._loaded_at = -1e9
        self._lock = anyio.Lock()
        #: Changes only this process knows of at once (a mirror page fetched, a file cached),
        #: part of the page tokens.
        self.changes = LocalChanges()
        self._epoch: tuple[tuple[int, int], ...] = ()

    async def ensure_defaults(self) -> None:
        """Create the default indexes in a data folder that has none."""
        if await self.repo.list_indexes():
            return
        for name, kind, config in DEFAULT_INDEXES:
            await self.repo.create_index(name, kind, config, exist_ok=True, grants=default_grants(kind))
        await self.reload()

    async def reload(self) -> None:
        records = await self.repo.list_indexes()
        old = self._records
        self._records = {r.name: r for r in records}
        self._by_id = {r.id: r for r in records}
        self._set_epoch()
        if {n: (r.kind, r.config) for n, r in old.items()} != {
            n: (r.kind, r.config) for n, r in self._records.items()
        }:
            self._built = {}
            self._views = {}
            await self.upstreams.keep_only(self._records.values())
        elif self.upstreams.has_retired:
            await self.upstreams.close_retired()
        self._loaded_at = time.monotonic()

    def expire(self) -> None:
        """Another process changed an index (a notification said so): re-read on the next use."""
        self._loaded_at = -1e9

    async def _fresh(self) -> None:
        if self.is_fresh():
            return
        async with self._lock:
            if not self.is_fresh():
                await self.reload()

    async def generations(self, index: Index) -> tuple[int, ...]:
        """The cache token of an index: the generations of everything its pages depend on."""
        await self._fresh()
        return self._generations(index)

    def _generations(self, index: Index) -> tuple[int, ...]:
        return tuple(self._by_id[i].generation if i in self._by_id else -1 for i in index.dependencies())

    def is_fresh(self) -> bool:
        """True while the definitions and generations need no re-read: then :meth:`get_now` and
        :meth:`page_token_now` answer without I/O (the hot path's synchronous answer)."""
        return time.monotonic() - self._loaded_at < self.refresh_interval

    def _set_epoch(self) -> None:
        self._epoch = tuple(sorted((r.id, r.generation) for r in self._by_id.values()))

    async def epoch(self) -> tuple[tuple[int, int], ...]:
        """Every index's (id, generation), and this process's own mirror changes: changes with any
        write that bumps one (an upload, a delete, a yank, a definition change), here or in
        another process, and at once with a mirror change made here (a metadata file corrected)."""
        await self._fresh()
        return (*self._epoch, (-1, self.changes.count(None)))

    async def page_token(self, index: Index, project: str | None) -> tuple[int, ...]:
        """The cache token of one page: :meth:`generations` and this process's own changes to
        the project (or, for a project list, to any project)."""
        await self._fresh()
        return self._page_token(index, project)

    def page_token_now(self, index: Index, project: str | None) -> tuple[int, ...] | None:
        """:meth:`page_token` without I/O, or None when the definitions are due for a re-read."""
        return self._page_token(index, project) if self.is_fresh() else None

    def _page_token(self, index: Index, project: str | None) -> tuple[int, ...]:
        return (*self._generations(index), self.changes.count(project))

    def project_changed(self, project: str) -> None:
        """A mirror changed what ``project``'s page shows, in this process (see LocalChanges)."""
        self.changes.changed(project)

    def own_changes(self) -> contextlib.AbstractContextManager[dict[str, int]]:
        return self.changes.own()

    async def settled_token(
        self, index: Index, project: str | None, before: tuple[int, ...], own: dict[str, int]
    ) -> tuple[int, ...]:
        """The token to cache a page computed since ``before`` under (see LocalChanges.settle)."""
        return self.changes.settle(project, before, await self.page_token(index, project), own)

    def note_write(self, index_id: int) -> None:
        """Called after this process changed index definitions: re-read them on the next request."""
        self._loaded_at = -1e9
        del index_id

    def note_bump(self, index_id: int) -> None:
        """Called after this process committed a write that bumped ``index_id``'s generation (an
        upload, a delete, a yank): its pages and file URLs change here at once, without the
        query a re-read costs (uploads in a row would pay it each time).

        The local counter only has to differ from every value this process used before, which
        adding one does (generations only grow); the next periodic re-read replaces it with the
        stored value, which is at least as large, so no token is ever used for two contents.
        """
        record = self._by_id.get(index_id)
        if record is None:
            self.note_write(index_id)
            return
        bumped = dataclasses.replace(record, generation=record.generation + 1)
        self._by_id[index_id] = self._records[record.name] = bumped
        self._set_epoch()

    async def names(self) -> list[IndexRecord]:
        await self._fresh()
        return sorted(self._records.values(), key=lambda r: r.name)

    async def get(self, name: str, hidden: frozenset[str] = frozenset()) -> Index:
        """Index ``name``; with ``hidden``, the view of a virtual index for a reader who may not
        read those member indexes (see :class:`VirtualIndex`)."""
        await self._fresh()
        if not hidden:
            return self._build(name, ())
        view = self._views.get((name, hidden))
        if view is None:
            if len(self._views) > 1000:
                self._views.clear()
            view = self._views[(name, hidden)] = self._view(name, hidden, ())
        return view

    def get_now(self, name: str) -> Index | None:
        """Index ``name`` (the whole of it) as last built, without I/O; None when it is not built
        yet or the definitions are due for a re-read."""
        return self._built.get(name) if self.is_fresh() else None

    def _view(self, name: str, hidden: frozenset[str], path: tuple[str, ...]) -> Index:
        index = self._build(name, path)
        if not isinstance(index, VirtualIndex):
            return index
        members = [self._view(m.name, hidden, (*path, name)) for m in index.members]
        return VirtualIndex(index.name, index.id, members, list(index.allow_upstream), cooldown=index.cooldown,
                            cooldown_exempt=list(index.cooldown_exempt), hidden=hidden)

    def count_cached_page(self, index: Index) -> None:
        """A project page of ``index`` was answered from the page cache: for each mirror it
        reads, that is a page hit (the mirror itself was not asked, so it did not count it)."""
        for i in index.dependencies():
            record = self._by_id.get(i)
            if record is not None and record.kind == "mirror":
                self.metrics.page(record.name, "hit")

    def member_names(self, index: Index) -> list[str]:
        """The names of every stored index the pages of ``index`` read (itself first)."""
        return [r.name for i in index.dependencies() if (r := self._by_id.get(i)) is not None]

    async def upload_target(self, name: str) -> HostedIndex:
        """The hosted index that receives uploads sent to index ``name``."""
        await self._fresh()
        record = self._record(name)
        if record.kind == "virtual":
            target = record.config.get("upload_to")
            if not target:
                raise BadRequest(f"Index {name!r} is virtual and has no upload target.")
            record = self._record(str(target))
        index = self._build(record.name, ())
        if not isinstance(index, HostedIndex):
            raise BadRequest(f"Index {record.name!r} is a {record.kind} index; upload to a hosted index.")
        return index

    def _generation_of(self, index_id: int) -> int:
        record = self._by_id.get(index_id)
        return record.generation if record is not None else -1

    def record_by_id(self, index_id: int) -> IndexRecord | None:
        return self._by_id.get(index_id)

    def record_by_name(self, name: str) -> IndexRecord | None:
        return self._records.get(name)

    def by_id(self, index_id: int) -> Index | None:
        record = self._by_id.get(index_id)
        return self._build(record.name, ()) if record else None

    def _mirror(self, record: IndexRecord) -> MirrorIndex:
        client = self.upstreams.client(record.name, MirrorConfig.from_config(record.name, dict(record.config)))
        if self.offline:
            record = dataclasses.replace(record, config={**record.config, "offline": True})
        return MirrorIndex(record, self.repo, self.blobs, client, self.fetcher, self.metrics, self.project_changed,
                           early_answers=self.early_answers, quiet=self.quiet)

    def pending_mirrors(self, sha256: str, filename: str) -> list[MirrorIndex]:
        """The mirrors whose early answer listed this file while its row is still being written."""
        return [i for i in list(self._built.values())
                if isinstance(i, MirrorIndex) and i.pending_file(sha256, filename) is not None]

    def _mirrors(self) -> list[MirrorIndex]:
        return [m for r in list(self._by_id.values()) if r.kind == "mirror"
                and isinstance(m := self._build(r.name, ()), MirrorIndex)]

    async def listing_mirrors(self, sha256: str, filename: str) -> dict[str, tuple[str, RemoteFile]]:
        """The mirrors whose stored pages list this file with this content, each with (its
        project, its entry): where it may have no row of its own yet (no client asked for it)."""
        found: dict[str, tuple[str, RemoteFile]] = {}
        for mirror in self._mirrors():
            entry = await mirror.listed_entry(sha256, filename)
            if entry is not None:
                found[mirror.name] = entry
        return found

    async def listed_mirror_record(
        self, sha256: str, filename: str, among: Collection[str] | None = None,
        found: Mapping[str, tuple[str, RemoteFile]] | None = None,
    ) -> FileRecord | None:
        """The row of a file a mirror lists with this content, made now if it had none (the
        first mirror that lists it, of ``among`` where given: a reader's request makes no row in
        a mirror the reader may not read). ``found``: what :meth:`listing_mirrors` found a
        moment ago (only those mirrors are asked, without looking their pages up again)."""
        for mirror in self._mirrors():
            if among is not None and mirror.name not in among:
                continue
            if found is None:
                record = await mirror.listed_record(sha256, filename)
            elif mirror.name in found:
                record = await mirror.row_of(*found[mirror.name], sha256)
            else:
                continue
            if record is not None:
                return record
        return None

    async def close(self) -> None:
        for index in list(self._built.values()):
            if isinstance(index, MirrorIndex):
                await index.drain()
        await self.fetcher.close()
        await self.upstreams.close()

    def _record(self, name: str) -> IndexRecord:
        record = self._records.get(name)
        if record is None:
            raise NotFound(f"No index named {name!r}.")
        return record

    def _build(self, name: str, path: tuple[str, ...]) -> Index:
        built = self._built.get(name)
        if built is not None:
            return built
        if name in path:
            raise BadRequest(f"Index {name!r} is part of a member cycle: {' -> '.join((*path, name))}.")
        record = self._record(name)
        index: Index
        if record.kind == "hosted":
            index = HostedIndex(record, self.repo, self.blobs, max_metadata_size=self.max_metadata_size,
                                generation=functools.partial(self._generation_of, record.id))
        elif record.kind == "mirror":
            index = self._mirror(record)
        elif record.kind == "virtual":
            members = [self._build(str(m), (*path, name)) for m in record.config.get("members", [])]
            config = record.config
            index = VirtualIndex(
                record.name, record.id, members, [str(x) for x in config.get("allow_upstream", [])],
                cooldown=float(config.get("cooldown", 0)),
                cooldown_exempt=[str(x) for x in config.get("cooldown_exempt", [])],
            )
        else:
            raise BadRequest(f"Index {name!r} has an unknown kind {record.kind!r}.")
        self._built[name] = index
        return index
