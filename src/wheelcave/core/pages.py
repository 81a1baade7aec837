"""Page models and the PEP 503 (HTML) / PEP 691 (JSON) renderers, with content negotiation.

Rendering follows the wire rules of ``shared/docs/protocols.md``: ``data-yanked=""`` for a
yank without reason (pip reads a bare attribute as not yanked), both ``data-core-metadata`` and
``data-dist-info-metadata`` in HTML but never ``dist-info-metadata`` in JSON (PEP 714), ``size``
and ``upload-time`` in JSON (PEP 700), and file URLs without query strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from html import escape
import re
from urllib.parse import quote

import orjson
from packaging.utils import NormalizedName

__all__ = [
    "API_VERSION",
    "apply_cooldown",
    "FileEntry",
    "PageFormat",
    "ProjectPage",
    "choose_format",
    "files_url",
    "format_upload_time",
    "html_anchor",
    "merge_pages",
    "render_project",
    "render_project_list",
]

API_VERSION = "1.1"


class PageFormat(Enum):
    """The representations of a simple page; the value is the Content-Type sent."""

    JSON = "application/vnd.pypi.simple.v1+json"
    HTML = "application/vnd.pypi.simple.v1+html"
    TEXT_HTML = "text/html"

    @property
    def content_type(self) -> str:
        return self.value if self is PageFormat.JSON else f"{self.value}; charset=utf-8"


def files_url(sha256: str, filename: str) -> str:
    """A file's URL relative to the site root: one URL per content, whatever index lists it.
    The filename is percent-encoded (an upstream's ``#`` or ``?`` would otherwise cut the link).

    >>> files_url("ab", "odd#name-1.0.tar.gz"), files_url("ab", "torch-2.0+cpu-py3-none-any.whl")
    ('files/sha256/ab/odd%23name-1.0.tar.gz', 'files/sha256/ab/torch-2.0+cpu-py3-none-any.whl')
    """
    if _URL_SAFE(filename) is None:  # nearly every filename needs no escaping: skip quote()
        filename = quote(filename, safe="+")
    return f"files/sha256/{sha256}/{filename}"


#: The characters :func:`urllib.parse.quote` leaves alone (with ``+`` kept as well).
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~+-]*").fullmatch


@dataclass(slots=True)
class FileEntry:
    """One file as listed on a project page (treated as immutable; not frozen only because
    frozen dataclasses are several times slower to build, and pages build thousands)."""

    filename: str
    url: str
    sha256: str
    size: int | None
    version: str
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    upload_time: datetime | None = None
    #: sha256 of the served ``.metadata`` file (PEP 658/714), or None if not offered.
    metadata_sha256: str | None = None
    #: ``.metadata`` is served though its hash is not known yet (an upstream said "true").
    metadata_available: bool = False
    provenance: str | None = None
    #: For the PyPI-style JSON API only (never on simple pages): extra digests (md5,
    #: blake2b_256), the wheel's python tag or "source", and the stored core metadata fields.
    extra_digests: Mapping[str, str] | None = None
    python_tag: str = ""
    core_metadata: Mapping[str, object] | None = None


@dataclass(frozen=True)
class ProjectPage:
    name: NormalizedName
    files: Sequence[FileEntry]
    display_name: str | None = None

    @property
    def versions(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self.files:
            seen.setdefault(f.version, None)
        return list(seen)


def format_upload_time(when: datetime) -> str:
    """PEP 700 form: ``yyyy-mm-ddThh:mm:ss.ffffffZ`` in UTC.

    >>> format_upload_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    '2026-01-02T03:04:05.000000Z'
    """
    if when.tzinfo is UTC:  # what the rows and upstream pages give: "+00:00" becomes "Z"
        return when.isoformat(timespec="microseconds")[:-6] + "Z"
    if when.tzinfo is not None and when.utcoffset():
        when = when.astimezone(UTC)
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# ---------------------------------------------------------------- negotiation

_OFFERS: tuple[tuple[str, PageFormat], ...] = (
    ("application/vnd.pypi.simple.v1+json", PageFormat.JSON),
    ("application/vnd.pypi.simple.latest+json", PageFormat.JSON),
    ("application/vnd.pypi.simple.v1+html", PageFormat.HTML),
    ("application/vnd.pypi.simple.latest+html", PageFormat.HTML),
    ("text/html", PageFormat.TEXT_HTML),
)
_FORMAT_PARAM = dict(_OFFERS)
# Tie-break order: JSON > v1+html > text/html.
_RANK = {PageFormat.JSON: 0, PageFormat.HTML: 1, PageFormat.TEXT_HTML: 2}


def _parse_accept(accept: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value.strip())))
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    return ranges


def _match(media: str, offer: str) -> int:
    """Specificity of ``media`` matching ``offer``: 2 exact, 1 type/*, 0 */*, -1 no match."""
    if media == offer:
        return 2
    if media == "*/*":
        return 0
    major, _, minor = media.partition("/")
    if minor == "*" and offer.startswith(major + "/"):
        return 1
    return -1


@functools.lru_cache(maxsize=512)
def choose_format(accept: str | None, format_param: str | None = None) -> PageFormat | None:
    """Pick the representation; None means 406 Not Acceptable.

    >>> choose_format("application/vnd.pypi.simple.v1+json, "
    ...               "application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01")
    <PageFormat.JSON: 'application/vnd.pypi.simple.v1+json'>
    >>> choose_format("*/*")
    <PageFormat.TEXT_HTML: 'text/html'>
    >>> choose_format("application/json") is None
    True
    """
    if format_param is not None:
        # An unencoded "+" in a query string arrives as a space.
        return _FORMAT_PARAM.get(format_param.strip().lower().replace(" ", "+"))
    ranges = _parse_accept(accept or "*/*")
    best: tuple[float, int, int, PageFormat] | None = None
    for offer, fmt in _OFFERS:
        specificity, q = -1, 0.0
        for media, media_q in ranges:
            s = _match(media, offer)
            if s > specificity:
                specificity, q = s, media_q
        if specificity < 0 or q <= 0:
            continue
        # Matched only through a wildcard: keep browsers and curl on plain HTML.
        if specificity == 0 or (specificity == 1 and fmt is not PageFormat.TEXT_HTML):
            fmt = PageFormat.TEXT_HTML
            specificity = 0
        key = (q, specificity, -_RANK[fmt], fmt)
        if best is None or key[:3] > best[:3]:
            best = key
    return best[3] if best else None


# ---------------------------------------------------------------- rendering

_HTML_HEAD = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta name="pypi:repository-version" content="{v}">\n'
    "<title>{title}</title>\n</head>\n<body>\n"
)


_HTML_SPECIAL = frozenset("&<>\"'")


def _attr(value: str) -> str:
    if _HTML_SPECIAL.isdisjoint(value):
        return value
    return escape(value, quote=True)


def html_anchor(f: FileEntry, url_prefix: str) -> str:
    """One file's PEP 503 anchor (with PEP 592, 658/714 and 740 attributes), and a line break."""
    parts = [f'<a href="{_attr(url_prefix + f.url)}#sha256={f.sha256}"']
    if f.requires_python:
        parts.append(f' data-requires-python="{_attr(f.requires_python)}"')
    if f.yanked:
        parts.append(f' data-yanked="{_attr(f.yanked_reason or "")}"')
    if f.metadata_sha256 or f.metadata_available:
        value = f"sha256={f.metadata_sha256}" if f.metadata_sha256 else "true"
        parts.append(f' data-core-metadata="{value}" data-dist-info-metadata="{value}"')
    if f.provenance:
        parts.append(f' data-provenance="{_attr(f.provenance)}"')
    parts.append(f">{_attr(f.filename)}</a><br>\n")
    return "".join(parts)


#: Upload times are written by orjson: UTC as ``Z``, a time without a zone read as UTC, and the
#: fraction of a second left out when it is zero (PEP 700 makes it optional).
_JSON_TIMES = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _json_files(files: Iterable[FileEntry], url_prefix: str) -> list[dict[str, object]]:
    """The JSON entries of a page's files, in one loop (a mirror's first answer writes ~15,000)."""
    out = []
    for f in files:
        entry: dict[str, object] = {
            "filename": f.filename,
            "url": url_prefix + f.url,
            "hashes": {"sha256": f.sha256},
            "requires-python": f.requires_python,
            "yanked": (f.yanked_reason or True) if f.yanked else False,
        }
        if f.size is not None:
            entry["size"] = f.size
        when = f.upload_time
        if when is not None:
            # orjson formats the time (a third of the cost of isoformat here); a zone other
            # than UTC is turned into UTC first, as "Z" must mean.
            zoned = when.tzinfo is not None and when.tzinfo is not UTC and when.utcoffset()
            entry["upload-time"] = when.astimezone(UTC) if zoned else when
        entry["core-metadata"] = {"sha256": f.metadata_sha256} if f.metadata_sha256 else f.metadata_available
        if f.provenance:
            entry["provenance"] = f.provenance
        out.append(entry)
    return out


def render_project(page: ProjectPage, fmt: PageFormat, url_prefix: str = "") -> bytes:
    """Render a project page; ``url_prefix`` is put before every file URL."""
    if fmt is PageFormat.JSON:
        doc = {
            "meta": {"api-version": API_VERSION},
            "name": page.name,
            "versions": page.versions,
            "files": _json_files(page.files, url_prefix),
        }
        return orjson.dumps(doc, option=_JSON_TIMES)
    title = escape(f"Links for {page.display_name or page.name}")
    out = [_HTML_HEAD.format(v=API_VERSION, title=title), f"<h1>{title}</h1>\n"]
    out.extend(html_anchor(f, url_prefix) for f in page.files)
    out.append("</body>\n</html>\n")
    return "".join(out).encode()


def render_project_list(
    projects: Iterable[tuple[str, str]], fmt: PageFormat, href_prefix: str = ""
) -> bytes:
    """Render the project list; ``projects`` yields (normalized name, display name)."""
    items = sorted(projects)
    if fmt is PageFormat.JSON:
        doc = {
            "meta": {"api-version": API_VERSION},
            "projects": [{"name": display} for _, display in items],
        }
        return orjson.dumps(doc)
    out = [_HTML_HEAD.format(v=API_VERSION, title="Simple index")]
    out.extend(
        f'<a href="{_attr(href_prefix + name)}/">{escape(display)}</a><br>\n'
        for name, display in items
    )
    out.append("</body>\n</html>\n")
    return "".join(out).encode()


def apply_cooldown(page: ProjectPage, cutoff: datetime) -> ProjectPage:
    """Hide files uploaded after ``cutoff`` (supply-chain cooldown). Files whose upload time
    is unknown stay: their age cannot be judged."""
    kept = [f for f in page.files if f.upload_time is None or f.upload_time <= cutoff]
    if len(kept) == len(page.files):
        return page
    return ProjectPage(name=page.name, files=kept, display_name=page.display_name)


def merge_pages(name: NormalizedName, pages: Sequence[ProjectPage]) -> ProjectPage:
    """Merge member pages in order; for one filename, the first page wins."""
    seen: set[str] = set()
    files: list[FileEntry] = []
    for page in pages:
        for f in page.files:
            if f.filename not in seen:
                seen.add(f.filename)
                files.append(f)
    display = next((p.display_name for p in pages if p.display_name), None)
    return ProjectPage(name=name, files=files, display_name=display)

