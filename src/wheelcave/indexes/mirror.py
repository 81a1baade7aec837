"""Mirror indexes: an on-demand cache of one upstream simple index.

Pages: the upstream's page is kept as one record, its listing (:mod:`wheelcave.core.mirror_listing`);
a file gets a row (like a hosted file's, with ``origin_url``) once a client asks for its bytes or
metadata, and the row then carries what the mirror learned (cached size, metadata). A page is
fresh for ``ttl`` seconds, then revalidated with a conditional GET (one per project at a time). If
the upstream fails, times out or answers 5xx, the cached page is served ("stale"); a project
never seen answers 502/504. A file the upstream stops listing stays listed while its bytes
are cached (``keep_removed``). ``offline`` never contacts the upstream.

Files (their bytes, and metadata for every wheel): :mod:`wheelcave.indexes.mirror_files`, the
file half of :class:`MirrorIndex`.

First fetches: the page is answered from the parsed upstream page. Where this process is the
only one serving the database (SQLite, one worker: ``early_answers``), it is answered before
its rows are written, and the rows wait for a pause in the mirrors' upstream fetching
(:mod:`wheelcave.indexes.quiet`: a cold resolution's requests come one after another); until
they are written, the page is answered again from memory, the files route finds the listed
files here (``pending_file``) and their metadata and bytes are fetched without waiting for the
rows. Elsewhere the rows are written first, as another process may be asked for the files.
Recording what a client was already given (a cached file, a metadata file) happens after the
answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from packaging.utils import NormalizedName

from wheelcave.core.mirror_listing import Listing, listed_and_entries, listed_files
from wheelcave.core.names import is_valid_project_name
from wheelcave.core.pages import ProjectPage, apply_cooldown
from wheelcave.core.remote import RemoteFile
from wheelcave.db.repository import FileRecord, IndexRecord, Repository, off_loop
from wheelcave.errors import BadRequest, UpstreamError
from wheelcave.indexes.ahead import AheadPages
from wheelcave.indexes.fetcher import FileFetcher
from wheelcave.indexes.known import KnownNames
from wheelcave.indexes.mirror_config import MirrorConfig
from wheelcave.indexes.mirror_files import MirrorFiles
from wheelcave.indexes.mirror_listings import MirrorListings
from wheelcave.indexes.mirror_metadata import MetadataMaker
from wheelcave.indexes.quiet import Quiet
from wheelcave.metrics import Metrics
from wheelcave.storage.base import BlobStore
from wheelcave.upstream.client import Fetched, Missing, NotModified, UpstreamClient, mask_url

__all__ = ["MirrorIndex"]

log = logging.getLogger("wheelcave.mirror")


@dataclass(frozen=True)
class _PendingRows:
    task: asyncio.Task[None]
    files: dict[str, RemoteFile]  # by filename, as the rows will list them
    page: ProjectPage | None  # the answer, for the requests that come before the rows
    hurry: asyncio.Event  # set: write the rows now, quiet or not
    fetched_at: float  # time.time() of the upstream's answer
    #: Metadata files made for its files meanwhile (filename → blob): asked again before the
    #: rows are written, they are not made again (each is recorded once its row exists).
    metadata: dict[str, str] = field(default_factory=dict)


#: Early answers whose rows may wait for a quiet moment; past this many, rows are written at once.
_MAX_WAITING_PAGES = 64


async def _rows_of(pending: _PendingRows, *, hurry: bool) -> None:
    """Wait until an early answer's rows are written (or failed); ``hurry``: now, not in a quiet
    moment."""
    if hurry:
        pending.hurry.set()
    await asyncio.shield(pending.task)  # a client leaving must not cancel the write


class MirrorIndex(MirrorFiles):
    kind = "mirror"
    private = False

    def __init__(
        self, record: IndexRecord, repo: Repository, blobs: BlobStore,
        client: UpstreamClient, fetcher: FileFetcher, metrics: Metrics,
        on_change: Callable[[str], None] | None = None, *, early_answers: bool = False,
        quiet: Quiet | None = None,
    ) -> None:
        self.record = record
        self.name = record.name
        self.id = record.id
        self.config = MirrorConfig.from_config(record.name, dict(record.config))
        self.repo = repo
        self.blobs = blobs
        self.client = client
        self.fetcher = fetcher
        self.metrics = metrics
        #: Told the project's name when this process changed what its page shows.
        self.on_change = on_change or (lambda project: None)
        self._flights: dict[str, asyncio.Lock] = {}
        #: How many requests wait for each project's lock.
        self._waiting: dict[str, int] = {}
        #: The last failed fetch of each project: requests that waited for it share its answer.
        self._failed: dict[str, tuple[float, UpstreamError]] = {}
        self._background: set[asyncio.Task[None]] = set()
        #: Answer a first fetch before its rows are written (see :meth:`_answer_early`).
        self.early_answers = early_answers
        self._pending: dict[str, _PendingRows] = {}
        #: When the rows of early answers are written (None: at once).
        self.quiet = quiet
        self.makes = MetadataMaker(self.name, blobs, client, metrics, self._fetching)
        self.ahead = AheadPages(self._unseen, self._project, index_name=self.name)
        #: The projects with a page state; trusted where no other process stores pages (as for
        #: early answers).
        self.known = KnownNames(lambda limit: repo.mirror_page_names(self.id, limit))
        self.listings = MirrorListings(self.name, self.id, repo)

    def dependencies(self) -> Sequence[int]:
        return (self.id,)

    def cache_ttl(self) -> float | None:
        return None if self.config.offline else self.config.ttl

    async def _page(self, name: NormalizedName) -> ProjectPage | None:
        listing = await self.listings.of(name)
        if listing is None:  # stored before listings existed: its rows are all of it
            found = await self.repo.page_entries(self.id, name, keep_removed=self.config.keep_removed)
        else:
            found = await self.repo.mirror_page_entries(self.id, name, listing, keep_removed=self.config.keep_removed)
        if found is None:
            return None
        return ProjectPage(name=name, files=found[1], display_name=found[0])

    async def listed_entry(self, sha256: str, filename: str) -> tuple[str, RemoteFile] | None:
        """(its project, its entry) where a stored page lists this file with this content; a file
        with a row of its own is found by the repository's lookups instead."""
        found = await self.listings.find(filename, sha256)
        return found if found is not None and found[1].sha256 == sha256 else None

    async def listed_record(self, sha256: str, filename: str) -> FileRecord | None:
        """The row of a file this mirror lists with this content, made now if the file had none:
        a client asks for it (see :mod:`wheelcave.core.mirror_listing`). A file kept after the
        upstream dropped it is only a row."""
        found = await self.listed_entry(sha256, filename)
        if found is not None:
            return await self.row_of(*found, sha256)
        record = await self.repo.find_file(self.id, filename)
        # The row of a file the upstream replaced keeps the bytes it cached (and lists them).
        return record if record is not None and record.sha256 == sha256 else None

    async def row_of(self, project: str, entry: RemoteFile, sha256: str) -> FileRecord | None:
        """The row of a file a stored page of ``project`` lists as ``entry`` (:meth:`listed_entry`),
        made now if it had none; None if its row holds other bytes than ``sha256``."""
        record = await self.repo.mirror_file_row(self.id, project, entry)
        return record if record.sha256 == sha256 else None

    async def record_named(self, filename: str) -> FileRecord | None:
        """The row of the file this mirror lists under ``filename`` (made now if it had none)."""
        record = await self.repo.find_file(self.id, filename)
        if record is not None:
            return record
        found = await self.listings.find(filename)
        return await self.repo.mirror_file_row(self.id, *found) if found is not None else None

    async def project(
        self, name: NormalizedName, *, with_metadata: bool = False, cooldown: bool = True
    ) -> ProjectPage | None:
        page = await self._project(name)
        if page is not None and cooldown and self.config.cooldown and name not in self.config.cooldown_exempt:
            page = apply_cooldown(page, datetime.now(UTC) - timedelta(seconds=self.config.cooldown))
        return page

    async def _project(self, name: NormalizedName) -> ProjectPage | None:
        if not is_valid_project_name(name):
            return None  # never ask an upstream about a name that cannot exist
        pending = self._pending.get(name)
        if pending is not None:  # answered early, its rows not written yet
            if self.config.offline or time.time() - pending.fetched_at < self.config.ttl:
                self.metrics.page(self.name, "hit")
                return pending.page  # the same answer
            pending.hurry.set()  # stale already: its rows first (the lock is theirs until then)
        # A name this process never stored a page of has none (where it is the only one storing
        # them): no query before the upstream fetch. Checked after all if the upstream fails.
        unread = self.early_answers and not self.config.offline and not await self.known.may_have(name)
        state = None if unread else await self.repo.mirror_page_state(self.id, name)
        if self.config.offline:
            return await self._page(name) if state else None
        if state and time.time() - state.fetched_at.timestamp() < self.config.ttl:
            self.metrics.page(self.name, "hit")
            return await self._page(name)
        if len(self._flights) > 10_000:
            self._flights = {k: v for k, v in self._flights.items() if v.locked()}
        lock = self._flights.setdefault(name, asyncio.Lock())
        waited_since = time.monotonic()
        # Re-read after waiting: another request of this process (or the rows of an early
        # answer, written meanwhile) may have changed the state this one read.
        contended = lock.locked() or pending is not None
        self._waiting[name] = self._waiting.get(name, 0) + 1  # an early answer's rows must not keep it
        try:
            await lock.acquire()
        finally:
            if self._waiting[name] == 1:
                del self._waiting[name]
            else:
                self._waiting[name] -= 1
        handed_over = False  # to the task that writes an early answer's rows
        try:
            # (Another process may change it too, uncontended or not: then the page is fetched twice.)
            again = await self.repo.mirror_page_state(self.id, name) if contended else state
            if again and again != state and time.time() - again.fetched_at.timestamp() < self.config.ttl:
                self.metrics.page(self.name, "hit")  # refreshed by the request we waited for
                return await self._page(name)
            failed = self._failed.get(name)
            try:
                if failed is not None and failed[0] >= waited_since:
                    raise failed[1]  # the fetch we waited for failed: its answer is ours too
                try:
                    result = await self._fetch(name, again)
                except UpstreamError as exc:
                    if len(self._failed) > 10_000:
                        self._failed.clear()
                    self._failed[name] = (time.monotonic(), exc)
                    raise
                if again is None and self.early_answers and isinstance(result, Fetched):
                    handed_over = True
                    return await self._answer_early(name, result, lock)
                first = await self._store(name, again, result)
            except UpstreamError as exc:
                self.metrics.upstream_error(self.name, "page")
                if again is None and unread and not contended:  # stored meanwhile by another process?
                    again = await self.repo.mirror_page_state(self.id, name)
                if again is None:
                    raise
                self.metrics.page(self.name, "stale")
                log.warning("mirror.stale index=%s project=%s: %s", self.name, name, exc.message)
            else:
                if first is not None:
                    return first
        finally:
            if not handed_over:
                lock.release()
        return await self._page(name)

    async def _answer_early(self, name: NormalizedName, result: Fetched, lock: asyncio.Lock) -> ProjectPage | None:
        """A first fetch answered before its rows are written: the rows are written by a task of
        their own, which holds the project's lock until it is done (a second request for the
        project waits for them). Meanwhile the files route finds the page's files here
        (:meth:`pending_file`). Only where this process is the only one serving the database:
        another process would not know the files yet."""
        self._note_fetched(name, result)
        self.metrics.page(self.name, "early")
        files, entries = await off_loop(listed_and_entries, result.page.files, size=len(result.page.files))
        hurry, since = asyncio.Event(), time.monotonic()
        # Rows wait for a quiet moment, but not while a request waits for the project's lock (one
        # that came during the fetch, as a client's request after a fetch ahead does).
        if self.quiet is None or len(self._pending) >= _MAX_WAITING_PAGES or self._waiting.get(name):
            hurry.set()

        async def write_rows() -> None:
            try:
                if self.quiet is not None:
                    await self.quiet.wait(since, hurry)
                await self._store_page(name, files, etag=result.etag, last_modified=result.last_modified)
                self.on_change("")  # the project lists; the project's page is the one answered
            except Exception as exc:  # noqa: BLE001 - the next request fetches the page again
                log.error("mirror.store_failed index=%s project=%s: %s: %s", self.name, name, type(exc).__name__, exc)
            finally:
                self._pending.pop(name, None)
                lock.release()

        page = ProjectPage(name=name, files=entries, display_name=name) if entries else None
        self._pending[name] = _PendingRows(asyncio.create_task(write_rows()), files, page, hurry, time.time())
        return page

    def _pending_with(self, sha256: str, filename: str) -> tuple[_PendingRows, RemoteFile] | None:
        for pending in self._pending.values():
            found = pending.files.get(filename)
            if found is not None and found.sha256 == sha256:
                return pending, found
        return None

    def pending_file(self, sha256: str, filename: str) -> RemoteFile | None:
        """A file of an early answer whose row is still being written."""
        hit = self._pending_with(sha256, filename)
        return hit[1] if hit else None

    async def rows_written(self, sha256: str, filename: str, *, hurry: bool = False) -> None:
        """Wait until the row of a file listed by an early answer is written (or failed);
        ``hurry``: a client waits for it, write it now rather than in a quiet moment."""
        hit = self._pending_with(sha256, filename)
        if hit is not None:
            await _rows_of(hit[0], hurry=hurry)

    def _fetching(self) -> contextlib.AbstractContextManager[None]:
        return self.quiet.fetching() if self.quiet is not None else contextlib.nullcontext()

    async def _refresh(self, name: NormalizedName, state: Any, *, bump: bool = False) -> ProjectPage | None:
        return await self._store(name, state, await self._fetch(name, state), bump=bump)

    async def _fetch(self, name: NormalizedName, state: Any) -> Fetched | NotModified | Missing:
        conditional = state is not None and state.status == "ok"
        with self._fetching():
            return await self.client.fetch_project(
                name, state.etag if conditional else None, state.last_modified if conditional else None
            )

    def _note_fetched(self, name: NormalizedName, result: Fetched) -> None:
        hashless = [f.filename for f in result.page.files if not f.sha256]
        if hashless:
            log.warning("mirror.no_sha256 index=%s project=%s: %d files listed without a sha256 are "
                        "skipped, e.g. %s", self.name, name, len(hashless), hashless[0])
        self.metrics.page(self.name, "fetched")

    async def _store(
        self, name: NormalizedName, state: Any, result: Fetched | NotModified | Missing, *, bump: bool = False
    ) -> ProjectPage | None:
        """Store what the upstream answered. On a first fetch (no rows yet) returns the page as
        stored, built from the parsed upstream page: the same entries reading the new rows back
        would give, without the read (a project with 15,000 files saves a third of its first
        answer)."""
        if isinstance(result, NotModified):
            self.metrics.page(self.name, "revalidated")
            await self.repo.touch_mirror_page(self.id, name)
            return None
        if isinstance(result, Missing):
            self.metrics.page(self.name, "missing")
            if await self._store_page(name, {}, etag=None, last_modified=None, status="missing", bump=bump):
                self.on_change(name)
            return None
        assert isinstance(result, Fetched)
        self._note_fetched(name, result)
        if state is None:  # the first answer's entries from the same listing
            listed, entries = await off_loop(listed_and_entries, result.page.files, size=len(result.page.files))
        else:
            listed, entries = await off_loop(listed_files, result.page.files, size=len(result.page.files)), []
        if await self._store_page(name, listed, etag=result.etag, last_modified=result.last_modified, bump=bump):
            self.on_change(name)
        if state is None:
            return ProjectPage(name=name, files=entries, display_name=name) if entries else None
        return None

    async def _store_page(
        self, name: NormalizedName, listed: dict[str, RemoteFile], *, etag: str | None, last_modified: str | None,
        status: str = "ok", bump: bool = False,
    ) -> bool:
        """Store the page's listing (``listed``: :func:`listed_files` of the upstream's page) and
        bring its rows in line (see Repository.store_mirror_page); from then on this process knows
        the mirror has the page, and its listing without reading the record back."""
        when = datetime.now(UTC)
        changed = await self.repo.store_mirror_page(
            self.id, name, listed, etag=etag, last_modified=last_modified, status=status, bump=bump, fetched_at=when)
        self.known.add(name)
        self.listings.keep(name, when, Listing(dict(listed)))
        return changed

    async def refresh(self, name: NormalizedName) -> None:
        """Re-fetch a project now, whatever its age (``wheelcave index refresh``); a change is
        seen by every worker and replica at once."""
        if self.config.offline:
            raise BadRequest(f"Index {self.name!r} is offline.")
        pending = self._pending.get(name)
        if pending is not None:  # an early answer's rows must not land after the newer ones
            await _rows_of(pending, hurry=True)
        await self._refresh(name, None, bump=True)

    async def list_projects(self) -> list[tuple[str, str]]:
        listed = await self.repo.list_projects(self.id)
        known = {name for name, _ in listed}
        waiting = [(name, name) for name, p in list(self._pending.items()) if p.page is not None and name not in known]
        return sorted(listed + waiting) if waiting else listed

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run database bookkeeping after an answer; a failure is logged (nothing is lost but
        the shortcut: the next request for the file does the same again)."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:  # noqa: BLE001
                log.error("mirror.record_failed index=%s file=%s: %s: %s", self.name, what, type(exc).__name__, exc)

        task = asyncio.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _unseen(self, name: NormalizedName) -> bool:
        flight = self._flights.get(name)
        busy = name in self._pending or (flight is not None and flight.locked())
        return not busy and not await self.known.may_have(name)

    async def drain(self, timeout: float = 30.0) -> None:
        """Let pending row writes and recordings finish (at shutdown), up to ``timeout`` seconds
        for each kind: recordings (which may start fetches ahead), fetches ahead under way (which
        may answer early), then the rows of early answers."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)
        await self.ahead.drain(timeout)
        for pending in list(self._pending.values()):
            pending.hurry.set()
        tasks = [p.task for p in self._pending.values()] + list(self._background)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self) -> None:
        await self.client.aclose()


def describe(config: MirrorConfig) -> str:
    return f"upstream={mask_url(config.upstream)} ttl={config.ttl:g}" + (" offline" if config.offline else "")
