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

from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson
import zstandard

from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import parse_dist_filename
from wheelcave.core.remote import RemoteFile

__all__ = ["Listing", "decode", "encode", "filename_projects", "listed_files"]

_FORMAT = 1
#: Level 1: a 7,000-file page (2 MB of JSON) compresses in a few ms, about 6x.
_LEVEL = 1
#: A listing is never larger than this decompressed (a page of ~1.5 million files).
MAX_SIZE = 512 * 2**20

#: Listed files by filename, in the upstream's order.
Listing = dict[str, RemoteFile]


def listed_files(files: Iterable[RemoteFile]) -> Listing:
    """The files a mirror lists of an upstream page, by filename and in order: those with a
    sha256 (a mirror serves nothing it cannot verify), the first of each filename."""
    kept: Listing = {}
    for f in files:
        if f.sha256 and f.filename not in kept:
            kept[f.filename] = f
    return kept


def _row(f: RemoteFile) -> list[object]:
    return [f.filename, f.url, f.sha256, f.version, f.kind, f.python_tag, f.size, f.requires_python,
            f.yanked, f.yanked_reason if f.yanked else None,
            f.upload_time.isoformat() if f.upload_time is not None else None,
            f.metadata_sha256, f.metadata_available]


def encode(files: Sequence[RemoteFile]) -> tuple[bytes, int]:
    """(the record, how many files it lists) of an upstream page's ``files`` (as :func:`listed_files`
    keeps them)."""
    listed = listed_files(files)
    body = orjson.dumps({"v": _FORMAT, "files": [_row(f) for f in listed.values()]})
    return zstandard.ZstdCompressor(level=_LEVEL).compress(body), len(listed)


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
        listing: Listing = {}
        for filename, url, sha256, version, kind, tag, size, rp, yanked, reason, uploaded, msha, available in doc["files"]:
            listing[filename] = RemoteFile(
                filename, url, sha256, version, kind, tag, size, rp, yanked, reason,
                datetime.fromisoformat(uploaded) if uploaded is not None else None, msha, available)
        return listing
    except (zstandard.ZstdError, orjson.JSONDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CoreError(f"unreadable mirror listing: {exc}") from None


def filename_projects(filename: str) -> tuple[str, ...]:
    """The normalized projects a distribution filename can belong to: a wheel's one name; each
    reading of an sdist's stem split at a dash before a valid version (``pkg-1.0-1.tar.gz``:
    ``pkg`` and ``pkg-1-0``); none for a name that is not a distribution's."""
    try:
        dist = parse_dist_filename(filename, with_tags=False)
    except CoreError:
        return ()
    if dist.kind == "wheel":
        return (dist.project,)
    return tuple(dict.fromkeys(name for name, _ in dist.splits))
