"""Distribution filenames: wheels and sdists, including legacy real-world spellings.

>>> d = parse_dist_filename("Foo.Bar-1.0-py3-none-any.whl")
>>> (d.project, str(d.version), d.kind, d.python_tag)
('foo-bar', '1.0', 'wheel', 'py3')
>>> d = parse_dist_filename("pkg-1.0-1.tar.gz")
>>> (d.project, str(d.version))
('pkg', '1.0.post1')
>>> d.matches("pkg-1.0", "1")
True
>>> parse_dist_filename("../../x.whl")
Traceback (most recent call last):
...
wheelcave.core.errors.InvalidFilename: Invalid filename '../../x.whl': it must be a plain file name, without a path
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, NormalizedName, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelcave.core.errors import InvalidFilename
from wheelcave.core.names import normalize

__all__ = ["SDIST_EXTENSIONS", "DistFilename", "DistKind", "check_safe_filename", "listing_facts",
           "parse_dist_filename", "spells_project", "version_text"]

DistKind = Literal["wheel", "sdist"]

#: Sdist archive extensions, longest first. ``.tar.gz`` and ``.zip`` are what current tools
#: write; the others occur in old releases that mirrors still serve.
SDIST_EXTENSIONS = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz", ".tar", ".zip")

_MAX_FILENAME = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:]")
_NAME_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class DistFilename:
    """A parsed distribution filename.

    For sdists whose stem can be split at several dashes (``pkg-1.0-1.tar.gz``), ``splits``
    holds every valid (project, version) reading; ``project``/``version`` are the first one.
    """

    filename: str
    kind: DistKind
    project: NormalizedName
    version: Version
    python_tag: str
    build: tuple[()] | tuple[int, str] = ()
    tags: frozenset[Tag] = frozenset()
    extension: str = ".whl"
    splits: tuple[tuple[NormalizedName, Version], ...] = field(default=())

    def matches(self, name: str, version: str | Version) -> bool:
        """True if the filename can be read as distribution ``name`` at ``version``."""
        want_name = normalize(name)
        try:
            want_version = version if isinstance(version, Version) else Version(version)
        except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
            return False
        candidates = self.splits or ((self.project, self.version),)
        return any(n == want_name and v == want_version for n, v in candidates)


def check_safe_filename(filename: str) -> str:
    """Refuse names that could escape a folder or confuse a client (paths, control bytes)."""
    if not filename or len(filename) > _MAX_FILENAME:
        msg = f"Invalid filename {filename[:60]!r}: empty or longer than {_MAX_FILENAME} characters"
        raise InvalidFilename(msg)
    if _UNSAFE.search(filename) or filename.startswith("."):
        msg = f"Invalid filename {filename!r}: it must be a plain file name, without a path"
        raise InvalidFilename(msg)
    return filename


def parse_dist_filename(filename: str, *, with_tags: bool = True) -> DistFilename:
    """Parse a wheel or sdist filename (lax: legacy sdist spellings are accepted).

    ``with_tags=False`` skips building the wheel's tag set (the costly part, which pages of
    upstreams with tens of thousands of wheels do not need); the name, version and build
    are checked all the same.
    """
    check_safe_filename(filename)
    if filename.endswith(".whl"):
        return _parse_wheel(filename) if with_tags else _parse_wheel_quick(filename)
    lower = filename.lower()
    for ext in SDIST_EXTENSIONS:
        if lower.endswith(ext):
            return _parse_sdist(filename, filename[: -len(ext)], ext)
    msg = (
        f"Invalid file extension of {filename!r}: use .whl for wheels, "
        ".tar.gz or .zip for sdists"
    )
    raise InvalidFilename(msg)


def _parse_wheel(filename: str) -> DistFilename:
    try:
        name, version, build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        msg = f"Invalid wheel filename {filename!r}: {exc}"
        raise InvalidFilename(msg) from None
    python_tag = filename[:-4].split("-")[-3]
    return DistFilename(
        filename=filename,
        kind="wheel",
        project=name,
        version=version,
        python_tag=python_tag,
        build=build,
        tags=tags,
    )


#: ``normalize`` remembered: every file of a page spells its project the same way.
_project_name = functools.lru_cache(maxsize=4096)(normalize)


@functools.lru_cache(maxsize=8192)
def _version(text: str) -> Version:
    """A parsed version, shared by every file of a release (an upstream page of 15,000 files
    has a few hundred versions). Invalid ones raise every time (exceptions are not cached)."""
    return Version(text)


def version_text(version: Version) -> str:
    """``str(version)``, remembered for the same reason. Keyed by the release numbers too:
    ``Version("1") == Version("1.0")`` (and they hash alike), but their texts differ.

    >>> version_text(Version("1")), version_text(Version("1.0")), version_text(Version("1.0.0"))
    ('1', '1.0', '1.0.0')
    """
    return _version_text(version, version.release)


@functools.lru_cache(maxsize=8192)
def _version_text(version: Version, release: tuple[int, ...]) -> str:
    return str(version)


_WHEEL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?")


def _wheel_parts(filename: str) -> tuple[list[str], Version, tuple[()] | tuple[int, str]]:
    """A wheel filename's dash-separated parts, version and build, checked (not its tags)."""
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        msg = f"Invalid wheel filename {filename!r}: expected 5 or 6 dash-separated parts"
        raise InvalidFilename(msg)
    if not _WHEEL_NAME.fullmatch(parts[0]) or "__" in parts[0]:
        msg = f"Invalid wheel filename {filename!r}: bad project name {parts[0]!r}"
        raise InvalidFilename(msg)
    try:
        version = _version(parts[1])
    except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
        msg = f"Invalid wheel filename {filename!r}: bad version {parts[1]!r}"
        raise InvalidFilename(msg) from None
    build: tuple[()] | tuple[int, str] = ()
    if len(parts) == 6:
        match = re.fullmatch(r"(\d+)(.*)", parts[2])
        if not match:
            msg = f"Invalid wheel filename {filename!r}: a build tag must start with a digit"
            raise InvalidFilename(msg)
        build = (int(match.group(1)), match.group(2))
    return parts, version, build


def _parse_wheel_quick(filename: str) -> DistFilename:
    parts, version, build = _wheel_parts(filename)
    return DistFilename(
        filename=filename, kind="wheel", project=_project_name(parts[0]), version=version,
        python_tag=parts[-3], build=build,
    )


def listing_facts(filename: str) -> tuple[DistKind, str, str]:
    """(kind, version text, python tag) of a file an upstream page lists, after the checks of
    ``parse_dist_filename(filename, with_tags=False)``: the same errors, without building a
    :class:`DistFilename` for each of a page's (up to tens of thousands of) files.

    >>> listing_facts("Foo-01.0-1-py3-none-any.whl"), listing_facts("pkg-1.0-1.tar.gz")
    (('wheel', '1.0', 'py3'), ('sdist', '1.0.post1', 'source'))
    """
    if not filename.endswith(".whl"):
        dist = parse_dist_filename(filename, with_tags=False)
        return dist.kind, version_text(dist.version), dist.python_tag
    check_safe_filename(filename)
    parts, version, _ = _wheel_parts(filename)
    return "wheel", version_text(version), parts[-3]


def spells_project(filename: str, project: str) -> bool:
    """Whether a valid distribution filename can be read as a file of ``project`` (normalized):
    a wheel's name, or one of an sdist's readings (see :class:`DistFilename`'s ``splits``). The
    same answer as ``project in`` the projects :func:`parse_dist_filename` reads, without parsing
    the whole name: a mirror asks this of every file of every page it stores.

    >>> spells_project("Foo_Bar-1.0-py3-none-any.whl", "foo-bar"), spells_project("pkg-1.0-1.tar.gz", "pkg-1-0")
    (True, True)
    """
    if filename.endswith(".whl"):
        return _project_name(filename.partition("-")[0]) == project
    lower = filename.lower()
    for ext in SDIST_EXTENSIONS:
        if lower.endswith(ext):
            stem = filename[: -len(ext)]
            break
    else:
        return False
    at = stem.find("-")
    while at != -1:
        name = stem[:at]
        if _project_name(name) == project and _NAME_PART.fullmatch(name):
            try:
                _version(stem[at + 1 :])
            except (InvalidVersion, ValueError):
                pass
            else:
                return True
        at = stem.find("-", at + 1)
    return False


def _parse_sdist(filename: str, stem: str, ext: str) -> DistFilename:
    splits: list[tuple[NormalizedName, Version]] = []
    for i, char in enumerate(stem):
        if char != "-":
            continue
        name, version = stem[:i], stem[i + 1 :]
        if not _NAME_PART.fullmatch(name):
            continue
        try:
            splits.append((_project_name(name), _version(version)))
        except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
            continue
    if not splits:
        msg = f"Invalid sdist filename {filename!r}: expected <name>-<version>{ext}"
        raise InvalidFilename(msg)
    project, version = splits[0]
    return DistFilename(
        filename=filename,
        kind="sdist",
        project=project,
        version=version,
        python_tag="source",
        extension=ext,
        splits=tuple(splits),
    )
