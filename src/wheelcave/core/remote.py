"""Parsing upstream simple pages (PEP 691 JSON, PEP 503 HTML) leniently.

Upstream data is never trusted: every entry is type-checked, URLs are resolved against the
page's URL and must be http(s), filenames must parse as distributions without path tricks,
hashes must look like hashes. A bad entry is dropped and described in ``problems``; a page
that cannot be parsed at all raises :class:`InvalidRemotePage`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import orjson

from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import listing_facts

__all__ = ["InvalidRemotePage", "RemoteFile", "RemotePage", "parse_project_list", "parse_project_page"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_MAX_PROBLEMS = 20


class InvalidRemotePage(CoreError):
    pass


@dataclass(slots=True)
class RemoteFile:
    filename: str
    url: str
    sha256: str | None
    version: str
    kind: str
    python_tag: str
    size: int | None = None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    upload_time: datetime | None = None
    metadata_sha256: str | None = None
    #: The upstream serves ``<url>.metadata`` (PEP 658), with or without a known hash.
    metadata_available: bool = False
    provenance: str | None = None


@dataclass
class RemotePage:
    files: list[RemoteFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == _JSON_TYPE


def _sha(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if _SHA256.fullmatch(value):
        return value  # the usual spelling: nothing to clean
    value = value.strip().lower()
    return value if _SHA256.fullmatch(value) else None


def _resolve(page: RemotePage, base: str, href: str) -> tuple[str, str] | None:
    """(absolute URL without fragment, fragment) or None if the URL is unusable."""
    href = href.strip()
    if href.startswith(("https://", "http://")) and "/." not in href:
        url, _, fragment = href.partition("#")  # absolute already: the common case, made cheap
        return url, fragment
    url, fragment = urldefrag(urljoin(base, href))
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:
        page.problem(f"dropped a link with scheme {scheme or 'none'!r}: {href[:100]!r}")
        return None
    return url, fragment


def _check_filename(page: RemotePage, filename: str) -> tuple[str, str, str] | None:
    """(kind, version text, python tag), or None for a filename that is not a distribution's."""
    try:
        return listing_facts(filename)
    except CoreError as exc:
        page.problem(f"dropped {filename[:100]!r}: {exc}")
        return None


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())  # takes a trailing "Z" since Python 3.11
    except ValueError:
        return None
    if when.tzinfo is UTC:
        return when  # the usual case ("...Z")
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)  # stored as UTC


def _metadata(value: object) -> tuple[bool, str | None]:
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return True, None
    if isinstance(value, dict):
        return True, _sha(value.get("sha256"))
    if isinstance(value, str) and value.startswith("sha256="):
        return True, _sha(value[7:])
    return False, None


def _json_file(page: RemotePage, base: str, raw: object) -> RemoteFile | None:
    if not isinstance(raw, dict):
        page.problem("dropped a file entry that is not an object")
        return None
    filename, url = raw.get("filename"), raw.get("url")
    if not isinstance(filename, str) or not isinstance(url, str):
        page.problem("dropped a file entry without a string filename and url")
        return None
    facts = _check_filename(page, filename)
    if facts is None:
        return None
    resolved = _resolve(page, base, url)
    if resolved is None:
        return None
    hashes = raw.get("hashes")
    sha256 = _sha(hashes.get("sha256")) if isinstance(hashes, dict) else None
    size = raw.get("size")
    rp = raw.get("requires-python")
    yanked = raw.get("yanked", False)
    meta = raw.get("core-metadata", raw.get("dist-info-metadata", raw.get("data-dist-info-metadata")))
    available, meta_sha = _metadata(meta)
    provenance = raw.get("provenance")
    # Positional (the fields' order): a page builds thousands, and keywords cost a third more.
    return RemoteFile(
        filename, resolved[0], sha256, facts[1], facts[0], facts[2],
        size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        rp.strip() or None if isinstance(rp, str) else None,
        bool(yanked) if isinstance(yanked, (bool, str)) else False,
        yanked if isinstance(yanked, str) and yanked else None,
        _parse_time(raw.get("upload-time")),
        meta_sha,
        available,
        provenance if isinstance(provenance, str) and provenance.startswith("https://") else None,
    )


def _parse_json(body: bytes, base: str) -> RemotePage:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"upstream JSON does not parse: {exc}"
        raise InvalidRemotePage(msg) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        msg = "upstream JSON page has no 'files' list"
        raise InvalidRemotePage(msg)
    page = RemotePage()
    for raw in doc["files"]:
        entry = _json_file(page, base, raw)
        if entry is not None:
            page.files.append(entry)
    return page


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def _parse_html(body: bytes, base: str) -> RemotePage:
    parser = _Anchors()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except (AssertionError, ValueError) as exc:  # HTMLParser's errors on broken markup
        msg = f"upstream HTML does not parse: {exc}"
        raise InvalidRemotePage(msg) from None
    if parser.base:
        base = urljoin(base, parser.base)
    page = RemotePage()
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        resolved = _resolve(page, base, href)
        if resolved is None:
            continue
        url, fragment = resolved
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        facts = _check_filename(page, filename)
        if facts is None:
            continue
        algo, _, digest = fragment.partition("=")
        available, meta_sha = _metadata(attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata")))
        yanked = attrs.get("data-yanked")
        rp = attrs.get("data-requires-python")
        provenance = attrs.get("data-provenance")
        page.files.append(RemoteFile(
            filename=filename,
            url=url,
            sha256=_sha(digest) if algo.lower() == "sha256" else None,
            version=facts[1],
            kind=facts[0],
            python_tag=facts[2],
            requires_python=rp.strip() or None if rp else None,
            yanked="data-yanked" in attrs,
            yanked_reason=yanked or None,
            metadata_sha256=meta_sha,
            metadata_available=available,
            provenance=provenance if provenance and provenance.startswith("https://") else None,
        ))
    return page


_HTML_END = re.compile(rb"</(html|body)\s*>", re.IGNORECASE)


def parse_project_page(body: bytes, content_type: str, page_url: str) -> RemotePage:
    """Parse an upstream project page, JSON or HTML by its Content-Type.

    A page whose every entry was unusable, or an HTML page with no links that also never
    ends, is refused rather than taken as "this project has no files": a truncated or
    garbled answer must not empty a cached listing.
    """
    if _is_json(content_type):
        page = _parse_json(body, page_url)
    else:
        page = _parse_html(body, page_url)
        if not page.files and not page.problems and not _HTML_END.search(body):
            msg = "upstream HTML page has no links and no end (truncated?)"
            raise InvalidRemotePage(msg)
    if not page.files and page.problems:
        msg = f"upstream page has no usable file entries ({page.problems[0]})"
        raise InvalidRemotePage(msg)
    return page


def parse_project_list(body: bytes, content_type: str) -> list[str]:
    """Project names from an upstream ``/simple/`` page."""
    if _is_json(content_type):
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            msg = f"upstream JSON does not parse: {exc}"
            raise InvalidRemotePage(msg) from None
        projects = doc.get("projects") if isinstance(doc, dict) else None
        if not isinstance(projects, list):
            msg = "upstream JSON project list has no 'projects' list"
            raise InvalidRemotePage(msg)
        return [p["name"] for p in projects if isinstance(p, dict) and isinstance(p.get("name"), str)]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    names = []
    for attrs in parser.anchors:
        href = (attrs.get("href") or "").rstrip("/")
        if href:
            names.append(unquote(href.rsplit("/", 1)[-1]))
    return names
