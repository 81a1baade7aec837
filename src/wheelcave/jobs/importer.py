"""``wheelcave import``: fill a hosted index from folders, wheelhouses, pip's wheel cache and
air-gap bundles.

Every file goes through the same checks as an upload (:meth:`HostedIndex.upload`): a bad
archive is refused with the upload's reason and never stored. A file the index already has
with the same bytes is "already there" (so a second run imports nothing); other bytes under
a taken filename are refused. Files are imported a few at a time (reading and checking
archives runs on worker threads). Upload times come from the file's mtime, or from a
bundle's manifest, which also carries yank state.

A bundle is checked whole before anything of it is stored (see :func:`read_bundle`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread

from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import parse_dist_filename
from wheelcave.errors import WheelcaveError
from wheelcave.indexes.hosted import HostedIndex, UploadForm
from wheelcave.jobs.bundles import MANIFEST, BundleError, BundleFile, ReadBundle, read_bundle
from wheelcave.storage.base import BlobStore, TempBlob

__all__ = ["Importer", "Outcome", "discover"]

#: Names that look like distributions (the rest of a folder is left alone, not refused).
_DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")


@dataclass(frozen=True)
class Outcome:
    source: str  # the path as the user gave it (or bundle:member)
    filename: str
    status: str  # "imported", "present" or "refused"
    reason: str | None = None


def _is_bundle(path: Path) -> bool:
    return path.is_file() and path.name.endswith(".tar") and not path.name.endswith(".tar.gz")


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Distribution files under ``paths`` (folders recursively, in name order), bundles
    (``.tar``) as themselves. Hidden folders and partial downloads are skipped."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(_DIST_SUFFIXES) and not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


class Importer:
    def __init__(
        self, index: HostedIndex, blobs: BlobStore, *, actor: str = "import", jobs: int = 4,
        on_outcome: Callable[[Outcome], None] = lambda o: None,
        on_bytes: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.actor = actor
        self.jobs = max(1, jobs)
        self.on_outcome = on_outcome
        self.on_bytes = on_bytes

    async def run(self, paths: Iterable[Path]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        plain: list[Path] = []
        for path in discover(paths):
            if _is_bundle(path):
                outcomes += await self.import_bundle(path)
            elif (path / MANIFEST).is_file():
                outcomes += await self.import_bundle(path)
            else:
                plain.append(path)
        outcomes += await self._import_files(plain)
        return outcomes

    # ------------------------------------------------------------ plain files

    async def _import_files(self, paths: list[Path]) -> list[Outcome]:
        slots = asyncio.Semaphore(self.jobs)

        async def one(path: Path) -> Outcome:
            async with slots:
                return await self._import_file(path)

        return list(await asyncio.gather(*(one(p) for p in paths)))

    async def _import_file(self, path: Path) -> Outcome:
        source = str(path)
        if not path.is_file():
            return self._tell(Outcome(source, path.name, "refused", "not a file"))
        try:
            stat = path.stat()
            temp = await anyio.to_thread.run_sync(self._copy, path)
        except OSError as exc:
            return self._tell(Outcome(source, path.name, "refused", f"cannot read it: {exc.strerror or exc}"))
        when = datetime.fromtimestamp(stat.st_mtime, UTC)
        return await self._store(source, path.name, temp, when)

    def _copy(self, path: Path) -> TempBlob:
        temp = self.blobs.new_temp()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    temp.write(chunk)
                    self.on_bytes(len(chunk))
        except BaseException:
            temp.discard()
            raise
        return temp

    async def _store(
        self, source: str, filename: str, temp: TempBlob, upload_time: datetime | None,
        yanked: bool = False, yanked_reason: str | None = None,
    ) -> Outcome:
        """Upload one temporary blob as the upload API would (the temp is consumed)."""
        try:
            dist = parse_dist_filename(filename)
        except CoreError as exc:
            temp.discard()
            return self._tell(Outcome(source, filename, "refused", str(exc)))
        form = UploadForm(
            fields={":action": ["file_upload"], "protocol_version": ["1"], "name": [dist.project],
                    "version": [str(dist.version)], "sha256_digest": [temp.digests.sha256]},
            filename=filename, temp=temp,
        )
        try:
            result = await self.index.upload(form, uploader=self.actor, address=None, upload_time=upload_time)
            if yanked and not result.file.yanked:
                await self.index.set_yanked(result.file.project, None, yanked=True, reason=yanked_reason,
                                            filename=filename, actor=self.actor)
        except WheelcaveError as exc:
            return self._tell(Outcome(source, filename, "refused", exc.message))
        return self._tell(Outcome(source, filename, "imported" if result.created else "present"))

    def _tell(self, outcome: Outcome) -> Outcome:
        self.on_outcome(outcome)
        return outcome

    # ------------------------------------------------------------ bundles

    async def import_bundle(self, path: Path) -> list[Outcome]:
        """Check a whole bundle (a ``.tar``, or an extracted one: a folder with its manifest),
        then import its files with their upload times and yank state. A bundle that does not
        match its manifest is refused whole, naming the member at fault, and nothing of it
        is stored."""
        try:
            if path.is_dir():
                bundle = await anyio.to_thread.run_sync(_read_folder, path, self.blobs, self.on_bytes)
            else:
                bundle = await anyio.to_thread.run_sync(read_bundle, path, self.blobs, self.on_bytes)
        except (BundleError, OSError) as exc:
            return [self._tell(Outcome(str(path), path.name, "refused", f"bundle refused, nothing imported: {exc}"))]
        slots = asyncio.Semaphore(self.jobs)

        async def one(entry: BundleFile) -> Outcome:
            async with slots:
                when = _parse_time(entry.upload_time)
                return await self._store(f"{path}:{entry.filename}", entry.filename, bundle.temps.pop(entry.filename),
                                         when, entry.yanked, entry.yanked_reason)

        try:
            return list(await asyncio.gather(*(one(f) for f in bundle.manifest.files)))
        finally:
            bundle.discard()


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

    from wheelcave.jobs.bundles import read_manifest

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

