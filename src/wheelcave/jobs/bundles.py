"""Air-gap bundles: one uncompressed tar a person carries into a network with no way out.

Layout (every member a regular file at the top level, so the extracted folder is a plain
wheelhouse for ``pip install --no-index --find-links``)::

    wheelcave-bundle.json        the manifest, always the first member
    <filename>                   each distribution file
    <filename>.metadata          a wheel's core metadata (PEP 658), when the source had it

The manifest lists every file with its sha256, size, project, version, upload time and yank
state, and every metadata file's sha256; ``previous`` names the manifest an incremental
bundle was made against (by its own sha256). A reader trusts nothing: names are checked
(no paths, no links, no duplicates), sizes are bounded by the manifest, and every byte is
hashed before anything is stored (:func:`read_bundle`).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import parse_dist_filename
from wheelcave.storage.base import BlobStore, TempBlob

__all__ = ["MANIFEST", "BundleError", "BundleFile", "BundleSource", "Manifest", "file_sources", "index_sources", "read_bundle", "read_manifest", "write_bundle"]

MANIFEST = "wheelcave-bundle.json"
FORMAT = 1
_MAX_MANIFEST = 256 * 2**20
_MAX_METADATA = 16 * 2**20


class BundleError(Exception):
    """A bundle that cannot be trusted or read; the message names the member at fault."""


@dataclass
class BundleFile:
    filename: str
    project: str
    version: str
    sha256: str
    size: int
    upload_time: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    metadata_sha256: str | None = None


@dataclass
class Manifest:
    files: list[BundleFile] = field(default_factory=list)
    created: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    #: sha256 of the manifest this bundle is incremental to (its files are not repeated here).
    previous: str | None = None
    #: Every file sha256 carried by this bundle and the ones before it (for the next ``--since``).
    known: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, **asdict(self)}
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = MANIFEST) -> Manifest:
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise BundleError(f"{where}: not a wheelcave bundle manifest of format {FORMAT}")
            files = [BundleFile(**f) for f in doc["files"]]
            manifest = cls(files=files, created=str(doc.get("created", "")), source=dict(doc.get("source") or {}),
                           previous=doc.get("previous"), known=[str(s) for s in doc.get("known") or []])
        except BundleError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise BundleError(f"{where}: malformed manifest ({exc})") from None
        seen: set[str] = set()
        for f in manifest.files:
            _check_name(f.filename)
            if f.filename in seen:
                raise BundleError(f"{where}: {f.filename} is listed twice")
            seen.add(f.filename)
            if not _is_sha256(f.sha256) or (f.metadata_sha256 is not None and not _is_sha256(f.metadata_sha256)):
                raise BundleError(f"{where}: {f.filename} has a malformed sha256")
            if not isinstance(f.size, int) or f.size < 0:
                raise BundleError(f"{where}: {f.filename} has a malformed size")
        return manifest

    def digest(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name in {".", ".."} or name.startswith(".") or "\0" in name:
        raise BundleError(f"{name!r}: not a plain file name")
    try:
        parse_dist_filename(name)
    except CoreError as exc:
        raise BundleError(f"{name}: {exc}") from None


def read_manifest(path: Path) -> Manifest:
    """The manifest of a bundle (``.tar``) or a manifest file itself (``.json``)."""
    if path.suffix == ".json":
        data = path.read_bytes()
        if len(data) > _MAX_MANIFEST:
            raise BundleError(f"{path.name}: manifest over {_MAX_MANIFEST} bytes")
        return Manifest.from_bytes(data, path.name)
    with _open_tar(path) as tar:
        return _first_manifest(tar, path)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r|")  # a stream: members in order, nothing kept
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{path.name}: not a readable tar file ({exc})") from None


def _first_manifest(tar: tarfile.TarFile, path: Path) -> Manifest:
    member = tar.next()
    if member is None or member.name != MANIFEST or not member.isreg():
        raise BundleError(f"{path.name}: not a wheelcave bundle (its first member is not {MANIFEST})")
    if member.size > _MAX_MANIFEST:
        raise BundleError(f"{path.name}: manifest over {_MAX_MANIFEST} bytes")
    fh = tar.extractfile(member)
    assert fh is not None
    return Manifest.from_bytes(fh.read(), f"{path.name}:{MANIFEST}")


@dataclass
class ReadBundle:
    """A bundle whose every byte matched its manifest: the files as temporary blobs (commit
    or discard them), the metadata files' bytes."""

    manifest: Manifest
    temps: dict[str, TempBlob]
    metadata: dict[str, bytes]

    def discard(self) -> None:
        for temp in self.temps.values():
            temp.discard()


def read_bundle(path: Path, blobs: BlobStore, progress: Callable[[int], None] = lambda n: None) -> ReadBundle:
    """Read a whole bundle into temporary blobs, checking every member against the manifest.
    Raises :class:`BundleError` naming the first member at fault (a changed byte, a size
    differing from the manifest, a member the manifest does not list, a missing one); nothing
    is kept then. ``progress`` is told the bytes read."""
    temps: dict[str, TempBlob] = {}
    metadata: dict[str, bytes] = {}
    try:
        with _open_tar(path) as tar:
            manifest = _first_manifest(tar, path)
            by_name = {f.filename: f for f in manifest.files}
            meta_of = {f"{f.filename}.metadata": f for f in manifest.files if f.metadata_sha256}
            try:
                while (member := tar.next()) is not None:
                    name = member.name
                    if not member.isreg():
                        raise BundleError(f"{path.name}: {name} is not a regular file")
                    if name in temps or name in metadata:
                        raise BundleError(f"{path.name}: {name} appears twice")
                    fh = tar.extractfile(member)
                    assert fh is not None
                    if name in by_name:
                        entry = by_name[name]
                        if member.size != entry.size:
                            raise BundleError(f"{path.name}: {name} is {member.size} bytes, the manifest says {entry.size}")
                        temp = temps[name] = blobs.new_temp()
                        _copy(fh, temp, progress)
                        temp.finish()
                        if temp.digests.sha256 != entry.sha256:
                            raise BundleError(f"{path.name}: {name} does not match its sha256 in the manifest")
                    elif name in meta_of:
                        if member.size > _MAX_METADATA:
                            raise BundleError(f"{path.name}: {name} is over {_MAX_METADATA} bytes")
                        data = fh.read()
                        progress(len(data))
                        if hashlib.sha256(data).hexdigest() != meta_of[name].metadata_sha256:
                            raise BundleError(f"{path.name}: {name} does not match its sha256 in the manifest")
                        metadata[name] = data
                    else:
                        raise BundleError(f"{path.name}: {name} is not listed in the manifest")
            except (tarfile.TarError, EOFError) as exc:
                raise BundleError(f"{path.name}: truncated or damaged ({exc})") from None
        missing = [f.filename for f in manifest.files if f.filename not in temps]
        if missing:
            raise BundleError(f"{path.name}: {missing[0]} is listed in the manifest but not in the bundle")
        return ReadBundle(manifest, temps, metadata)
    except BaseException:
        for temp in temps.values():
            temp.discard()
        raise


def _copy(src: IO[bytes], temp: TempBlob, progress: Callable[[int], None]) -> None:
    while chunk := src.read(1 << 20):
        temp.write(chunk)
        progress(len(chunk))


@dataclass
class BundleSource:
    """One file to put in a bundle: its entry and the blob store holding its bytes (and its
    metadata's, under ``entry.metadata_sha256``)."""

    entry: BundleFile
    blobs: BlobStore


def write_bundle(
    output: Path, sources: Iterable[BundleSource], *, source: dict[str, Any], previous: Manifest | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> Manifest:
    """Write a bundle (aside, then renamed into place): the manifest, then every file and its
    metadata. With ``previous``, files whose sha256 it already carried are left out."""
    known = set(previous.known) | {f.sha256 for f in previous.files} if previous else set()
    chosen = [s for s in sources if s.entry.sha256 not in known]
    manifest = Manifest(
        files=[s.entry for s in chosen], created=datetime.now(UTC).isoformat(timespec="seconds"), source=source,
        previous=previous.digest() if previous else None,
        known=sorted(known | {s.entry.sha256 for s in chosen}),
    )
    aside = output.with_name(f".{output.name}.part")
    try:
        with tarfile.open(aside, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = manifest.to_bytes()
            tar.addfile(_info(MANIFEST, len(data)), io.BytesIO(data))
            for s in chosen:
                with s.blobs.open(s.entry.sha256) as fh:
                    tar.addfile(_info(s.entry.filename, s.entry.size), _Counting(fh, progress))
                if s.entry.metadata_sha256 is not None:
                    meta = s.blobs.read_bytes(s.entry.metadata_sha256)
                    tar.addfile(_info(f"{s.entry.filename}.metadata", len(meta)), io.BytesIO(meta))
        aside.replace(output)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    return manifest


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    return info


class _Counting(io.RawIOBase):
    def __init__(self, fh: IO[bytes], progress: Callable[[int], None]) -> None:
        self._fh = fh
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._progress(len(data))
        return data


async def index_sources(
    repo: Any, blobs: BlobStore, index_ids: Iterable[int], projects: Iterable[str] | None = None,
) -> tuple[list[BundleSource], int]:
    """The cached files of some indexes (a virtual index's members, in order; the first
    listing of a filename wins) as bundle sources; also how many listed files were left out
    because their bytes are not cached (a mirror's files nobody asked for yet)."""
    from wheelcave.core.names import validate_project_name

    wanted = {validate_project_name(p) for p in projects} if projects else None
    sources: dict[str, BundleSource] = {}
    uncached = 0
    for index_id in index_ids:
        names = [name for name, _ in await repo.list_projects(index_id)]
        for name in names:
            if wanted is not None and name not in wanted:
                continue
            for r in await repo.project_files(index_id, name):
                if r.filename in sources:
                    continue
                try:
                    size = blobs.size(r.sha256)
                except FileNotFoundError:
                    uncached += 1
                    continue
                has_meta = bool(r.metadata_sha256) and blobs.exists(r.metadata_sha256)  # type: ignore[arg-type]
                entry = BundleFile(
                    filename=r.filename, project=r.project, version=r.version, sha256=r.sha256,
                    size=size, upload_time=r.upload_time.isoformat() if r.upload_time else None,
                    yanked=r.yanked, yanked_reason=r.yanked_reason, metadata_sha256=r.metadata_sha256 if has_meta else None,
                )
                sources[r.filename] = BundleSource(entry, blobs)
    return list(sources.values()), uncached


async def file_sources(repo: Any, blobs: BlobStore, files: Iterable[tuple[str, str]]) -> tuple[list[BundleSource], list[str]]:
    """Bundle sources for (filename, sha256) pairs a prefetch cached; also the filenames whose
    bytes are not (or no longer) here."""
    sources: dict[str, BundleSource] = {}
    missing: list[str] = []
    for filename, sha256 in files:
        if filename in sources:
            continue
        record = await repo.find_file_by_content(sha256, filename) if sha256 else None
        if record is None or not blobs.exists(sha256):
            missing.append(filename)
            continue
        has_meta = bool(record.metadata_sha256) and blobs.exists(record.metadata_sha256)
        entry = BundleFile(
            filename=filename, project=record.project, version=record.version, sha256=sha256, size=blobs.size(sha256),
            upload_time=record.upload_time.isoformat() if record.upload_time else None, yanked=record.yanked,
            yanked_reason=record.yanked_reason, metadata_sha256=record.metadata_sha256 if has_meta else None,
        )
        sources[filename] = BundleSource(entry, blobs)
    return list(sources.values()), missing
