"""Reading a distribution archive: find its core metadata and check the archive is whole.

Runs on a worker thread (blocking I/O). Every failure is an :class:`ArchiveError` with a
one-line message: not a zip/tar, truncated, unsafe member paths, missing or oversized
METADATA/PKG-INFO, or a suspicious compression ratio.
"""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, TypeVar

from wheelcave.core.filenames import DistFilename

__all__ = ["ArchiveError", "read_core_metadata", "unsafe_member", "wheel_metadata_from_zip"]

_MAX_MEMBERS = 200_000
#: GNU long names and pax headers are read whole by tarfile: bounded before it allocates them.
_MAX_EXTENDED_HEADER = 1 * 2**20
_MAX_RATIO = 50  # uncompressed bytes per archive byte (plus a fixed allowance)
_RATIO_ALLOWANCE = 256 * 2**20


_M = TypeVar("_M")


class ArchiveError(ValueError):
    """A malformed archive, said in one line: member names the archive chose (which may hold line
    breaks or other control characters) are shown escaped."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class MetadataTooLarge(ArchiveError):
    pass


def unsafe_member(name: str) -> bool:
    """Whether a member's path could leave the folder it is unpacked into: empty, absolute,
    with a ``..`` part, or a drive (``c:``) in its first part; ``\\`` counts as ``/``."""
    norm = name.replace("\\", "/")
    if not norm or norm[0] == "/":
        return True
    if ".." not in norm and ":" not in norm:
        return False  # nearly every member: no parsing needed
    parts = PurePosixPath(norm).parts
    return ".." in parts or (bool(parts) and ":" in parts[0])


def _check_member(name: str, archive: str) -> None:
    if unsafe_member(name):
        msg = f"{archive} has a member with an unsafe path: {name!r}"
        raise ArchiveError(msg)


def _check_link(member: tarfile.TarInfo, archive: str) -> None:
    base = "" if member.islnk() else posixpath.dirname(member.name)
    target = posixpath.normpath(posixpath.join(base, member.linkname))
    if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
        msg = f"{archive} has a link pointing outside the archive: {member.name!r}"
        raise ArchiveError(msg)


def read_core_metadata(source: Path | IO[bytes], dist: DistFilename, max_metadata: int) -> bytes:
    """Return the METADATA (wheel) or PKG-INFO (sdist) bytes of the archive at ``source``: a
    local path, or a seekable reader (a blob store's :meth:`~wheelcave.storage.base.BlobStore.open`)."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return read_core_metadata(fh, dist, max_metadata)
    try:
        if dist.kind == "wheel":
            size = source.seek(0, 2)
            source.seek(0)
            return _wheel_metadata_zip(source, dist, size, max_metadata)
        if dist.extension == ".zip":
            return _zip_sdist_metadata(source, dist, max_metadata)
        return _tar_sdist_metadata(source, dist, max_metadata)
    except _ExtendedHeaderTooLarge as exc:
        raise ArchiveError(f"{dist.filename}: {exc}") from None
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error, EOFError,
            OSError, ValueError, RuntimeError, NotImplementedError) as exc:
        kind = "zip" if dist.kind == "wheel" or dist.extension == ".zip" else "tar"
        reason = " ".join(str(exc).split())  # one line (tarfile's "r:*" lists every method it tried)
        msg = f"{dist.filename} is not a valid {kind} archive or is truncated ({type(exc).__name__}: {reason})"
        raise ArchiveError(msg) from None


def _read_limited(fh: object, size: int, limit: int, what: str) -> bytes:
    if size > limit:
        msg = f"{what} is {size} bytes, larger than the limit of {limit} bytes"
        raise MetadataTooLarge(msg)
    data = fh.read(limit + 1)  # type: ignore[attr-defined]
    if len(data) > limit:
        msg = f"{what} is larger than the limit of {limit} bytes"
        raise MetadataTooLarge(msg)
    return bytes(data)


def _zip_members(zf: zipfile.ZipFile, dist: DistFilename, archive_size: int) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > _MAX_MEMBERS:
        msg = f"{dist.filename} has more than {_MAX_MEMBERS} members"
        raise ArchiveError(msg)
    total = 0
    for info in infos:
        _check_member(info.filename, dist.filename)
        total += info.file_size
    if total > archive_size * _MAX_RATIO + _RATIO_ALLOWANCE:
        msg = f"{dist.filename} has a suspicious compression ratio"
        raise ArchiveError(msg)
    return infos


def wheel_metadata_from_zip(fh: IO[bytes], dist: DistFilename, size: int, limit: int) -> bytes:
    """The METADATA of the wheel ``fh`` holds (``size`` bytes), after the same checks as an upload
    (members, paths, compression ratio, one .dist-info with a WHEEL file). Zip errors are
    :class:`ArchiveError`; other exceptions of ``fh`` (a range not fetched yet) pass through."""
    try:
        return _wheel_metadata_zip(fh, dist, size, limit)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        reason = " ".join(str(exc).split())
        raise ArchiveError(f"{dist.filename} is not a valid zip archive or is truncated ({type(exc).__name__}: {reason})") from None


def _wheel_metadata_zip(fh: IO[bytes], dist: DistFilename, size: int, limit: int) -> bytes:
    with zipfile.ZipFile(fh) as zf:
        infos = _zip_members(zf, dist, size)
        names = {i.filename: i for i in infos}
        stem = dist.filename[:-4].split("-")
        expected = f"{stem[0]}-{stem[1]}.dist-info"
        if f"{expected}/METADATA" not in names:
            candidates = sorted(
                {n.split("/")[0] for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")}
            )
            if len(candidates) != 1:
                msg = f"{dist.filename} has no {expected}/METADATA" if not candidates else (
                    f"{dist.filename} has several .dist-info folders: {', '.join(candidates)}"
                )
                raise ArchiveError(msg)
            expected = candidates[0]
        if f"{expected}/WHEEL" not in names:
            msg = f"{dist.filename} has no {expected}/WHEEL"
            raise ArchiveError(msg)
        info = names[f"{expected}/METADATA"]
        with zf.open(info) as fh:
            return _read_limited(fh, info.file_size, limit, f"{expected}/METADATA")


def _zip_sdist_metadata(source: IO[bytes], dist: DistFilename, limit: int) -> bytes:
    size = source.seek(0, 2)
    source.seek(0)
    with zipfile.ZipFile(source) as zf:
        infos = _zip_members(zf, dist, size)
        candidates = [i for i in infos if i.filename.count("/") == 1 and i.filename.endswith("/PKG-INFO")]
        info = _pick_pkg_info(candidates, lambda i: i.filename, dist)
        with zf.open(info) as fh:
            return _read_limited(fh, info.file_size, limit, info.filename)


_EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
             tarfile.SOLARIS_XHDTYPE)


class _ExtendedHeaderTooLarge(ArchiveError):
    pass


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses an extended header (GNU long name or link, pax) larger than
    ``_MAX_EXTENDED_HEADER`` before tarfile reads it into memory: a 500 KB .tar.gz can declare
    a 500 MiB long name."""

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED and self.size > _MAX_EXTENDED_HEADER:
            msg = f"a member has a {self.size}-byte extended header (the limit is {_MAX_EXTENDED_HEADER} bytes)"
            raise _ExtendedHeaderTooLarge(msg)
        return super()._proc_member(tf)  # type: ignore[misc,no-any-return]


def _tar_sdist_metadata(fh: IO[bytes], dist: DistFilename, limit: int) -> bytes:
    archive_size = fh.seek(0, 2)
    fh.seek(0)
    with tarfile.open(fileobj=fh, mode="r:*", tarinfo=_BoundedTarInfo) as tf:
        candidates: list[tarfile.TarInfo] = []
        count = total = 0
        # Walk to the end: a truncated archive fails here, not later in a client. Members are
        # not kept (tarfile would keep them all: 200,000 of them is a lot of memory).
        while (member := tf.next()) is not None:
            tf.members.clear()
            _check_member(member.name, dist.filename)
            if member.islnk() or member.issym():
                _check_link(member, dist.filename)
            total += member.size
            count += 1
            if count > _MAX_MEMBERS:
                msg = f"{dist.filename} has more than {_MAX_MEMBERS} members"
                raise ArchiveError(msg)
            if total > archive_size * _MAX_RATIO + _RATIO_ALLOWANCE:
                msg = f"{dist.filename} has a suspicious compression ratio"
                raise ArchiveError(msg)
            if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                candidates.append(member)
        info = _pick_pkg_info(candidates, lambda m: m.name, dist)
        fh = tf.extractfile(info)
        if fh is None:
            msg = f"{dist.filename}: {info.name} is not a regular file"
            raise ArchiveError(msg)
        return _read_limited(fh, info.size, limit, info.name)


def _pick_pkg_info(candidates: list[_M], name_of: Callable[[_M], str], dist: DistFilename) -> _M:
    if not candidates:
        msg = f"{dist.filename} has no <name>-<version>/PKG-INFO"
        raise ArchiveError(msg)
    if len(candidates) == 1:
        return candidates[0]
    stem = dist.filename[: -len(dist.extension)]
    for c in candidates:
        if name_of(c) == f"{stem}/PKG-INFO":
            return c
    msg = f"{dist.filename} has several top-level PKG-INFO files"
    raise ArchiveError(msg)
