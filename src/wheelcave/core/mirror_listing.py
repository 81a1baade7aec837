"""A mirror page's files as one record: what the upstream lists, kept whole instead of a database
row per file.

A cold install reads the pages of a few dozen projects whose upstream pages list ~45,000 files
between them, nearly all of them old releases nobody asks for. The page is stored as one
compressed record (:func:`encode`); a file gets a row of its own only when a client asks for its
bytes or its metadata (the row then carries what the mirror learns: cached size, metadata).

Which page lists a file is found from its name: :func:`filename_projects` gives the projects a
distribution filename can belong to. A file listed under a project its name does not spell
(rare, old uploads) gets its row when the page is stored, so every file stays findable.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson
import zstandard

from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import parse_dist_filename, spells_project
from wheelcave.core.pages import FileEntry, files_url
from wheelcave.core.remote import RemoteFile
from wheelcave.core.versions import version_key

__all__ = ["Listing", "decode", "encode", "entry_of", "filename_projects", "findable_under", "listed_and_entries",
           "listed_files"]

_FORMAT = 1
#: Level 1: a 7,000-file page (2 MB of JSON) compresses in a few ms, about 6x.
_LEVEL = 1
#: A listing is never larger than this decompressed (a page of ~1.5 million files).
MAX_SIZE = 512 * 2**20

class Listing:
    """A page's listed files by filename, in the upstream's order. Read from a record, an entry
    becomes a :class:`RemoteFile` only when asked for (a lookup needs one of thousands)."""

    __slots__ = ("_files",)

    def __init__(self, files: dict[str, RemoteFile | list[Any]]) -> None:
        self._files = files

    def get(self, filename: str) -> RemoteFile | None:
        found = self._files.get(filename)
        if found is None or isinstance(found, RemoteFile):
            return found
        made = _remote(found)
        if made is not None:
            self._files[filename] = made
        return made

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, filename: object) -> bool:
        return filename in self._files

    def files(self) -> Iterator[RemoteFile]:
        for found in self._files.values():
            made = found if isinstance(found, RemoteFile) else _remote(found)
            if made is not None:
                yield made


def _remote(raw: list[Any]) -> RemoteFile | None:
    """An entry of a record as the file it lists; None for one damaged past reading."""
    filename, url, sha256, version, kind, tag, size, rp, yanked, reason, uploaded, msha, available = raw
    try:
        when = datetime.fromisoformat(uploaded) if uploaded is not None else None
    except (TypeError, ValueError):
        return None
    return RemoteFile(filename, url, sha256, version, kind, tag, size, rp, yanked, reason if yanked else None,
                      when, msha, available)


def listed_files(files: Iterable[RemoteFile]) -> dict[str, RemoteFile]:
    """The files a mirror lists of an upstream page, by filename and in order: those with a
    sha256 (a mirror serves nothing it cannot verify), the first of each filename."""
    kept: dict[str, RemoteFile] = {}
    for f in files:
        if f.sha256 and f.filename not in kept:
            kept[f.filename] = f
    return kept


def entry_of(f: RemoteFile) -> FileEntry:
    """A listed file as a page lists it: its bytes at this server's files URL; every wheel offers
    its metadata (the mirror reads it with Range requests when the upstream has no file of it)."""
    assert f.sha256 is not None  # a listing keeps only files with one
    return FileEntry(
        filename=f.filename, url=files_url(f.sha256, f.filename), sha256=f.sha256, size=f.size, version=f.version,
        requires_python=f.requires_python, yanked=bool(f.yanked), yanked_reason=f.yanked_reason if f.yanked else None,
        upload_time=f.upload_time, metadata_sha256=f.metadata_sha256,
        metadata_available=f.metadata_available or f.filename.endswith(".whl"),
    )


def listed_and_entries(files: Iterable[RemoteFile]) -> tuple[dict[str, RemoteFile], list[FileEntry]]:
    """The files a store of ``files`` lists (:func:`listed_files`) and their page entries, in order."""
    listed = listed_files(files)
    return listed, [entry_of(f) for f in listed.values()]


#: An entry of a record: a RemoteFile's fields in order (upload_time as orjson writes datetimes).
_FIELDS = operator.attrgetter("filename", "url", "sha256", "version", "kind", "python_tag", "size", "requires_python",
                              "yanked", "yanked_reason", "upload_time", "metadata_sha256", "metadata_available")
_WIDTH = 13


def encode(listed: Mapping[str, RemoteFile]) -> tuple[bytes, int]:
    """(the record, how many files it lists) of the files :func:`listed_files` kept of a page."""
    body = orjson.dumps({"v": _FORMAT, "files": [_FIELDS(f) for f in listed.values()]})
    return zstandard.ZstdCompressor(level=_LEVEL).compress(body), len(listed)


def highest_version(listed: Mapping[str, RemoteFile]) -> str | None:
    """The highest version the listed files name (valid versions above legacy ones), as search
    shows a project; None for an empty listing."""
    versions = {f.version for f in listed.values()}
    return max(versions, key=version_key) if versions else None


def decode(record: bytes) -> Listing:
    """The files of a record :func:`encode` made. A record this version cannot read (damaged, or
    from a newer format) raises :class:`CoreError`: the page is fetched again."""
    try:
        # A frame that states its size is decompressed to that size (max_output_size is for the
        # others): the stated size is checked first.
        if zstandard.frame_content_size(record) > MAX_SIZE:
            raise ValueError("larger than a listing can be")
        body = zstandard.ZstdDecompressor().decompress(record, max_output_size=MAX_SIZE)
        doc = orjson.loads(body)
        if doc.get("v") != _FORMAT:
            raise ValueError(f"format {doc.get('v')!r}")
        files: dict[str, RemoteFile | list[Any]] = {}
        for raw in doc["files"]:
            if not isinstance(raw, list) or len(raw) != _WIDTH or not isinstance(raw[0], str):
                raise ValueError("an entry of the wrong shape")
            files[raw[0]] = raw
        return Listing(files)
    except (zstandard.ZstdError, orjson.JSONDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CoreError(f"unreadable mirror listing: {exc}") from None


#: The readings of a filename a lookup tries (each costs a query): real names have one or two,
#: a crafted one a few more (a PEP 440 version holds a few dashes). A file whose page is past
#: them gets a row when its page is stored.
MAX_READINGS = 8


def filename_projects(filename: str) -> tuple[str, ...]:
    """The normalized projects a distribution filename can belong to, at most
    :data:`MAX_READINGS`: a wheel's one name; each reading of an sdist's stem split at a dash
    before a valid version (``pkg-1.0-1.tar.gz``: ``pkg`` and ``pkg-1-0``); none for a name that
    is not a distribution's."""
    try:
        dist = parse_dist_filename(filename, with_tags=False)
    except CoreError:
        return ()
    if dist.kind == "wheel":
        return (dist.project,)
    return tuple(dict.fromkeys(name for name, _ in dist.splits))[:MAX_READINGS]


def findable_under(filename: str, project: str) -> bool:
    """Whether a lookup by name (:func:`filename_projects`) finds a file of ``project``'s page:
    the quick test a store makes of every file (only the others get rows at once)."""
    if not spells_project(filename, project):
        return False
    # Fewer dashes than the limit: fewer readings too, so the quick answer is the whole answer.
    return filename.count("-") <= MAX_READINGS or project in filename_projects(filename)
