"""``wheelcave export``: an index as a static tree any web server or bucket can serve.

The tree::

    simple/index.html, simple/index.json            the project list (PEP 503 / PEP 691)
    simple/<project>/index.html, .../index.json     project pages (PEP 503, 691, 700, 592, 658/714)
    files/sha256/<sha256>/<filename>[.metadata]     the files (as the server lays them out)
    pypi/<project>/json, pypi/<project>/<version>/json   the PyPI JSON API
    packages.json                                   one JSON object per file, one per line
    links.html                                      every file on one page (pip --find-links)
    nginx.conf                                      a server block: Accept picks HTML or JSON
    .wheelcave-export.json                          what was written (the next run's baseline)

A second run rewrites only the projects whose ``updated_at`` moved since the state file was
written (an upload, yank, delete, promotion or a mirror file cached), and the lists when the
set of projects changed. Every object is written aside and renamed into place (a folder) or
put whole (an object store), in an order that never lets a page name a missing file: files
first, then project pages, then the lists and ``packages.json``, then the state; files no
page lists any more are removed last.

A bucket serves no index documents (``simple/<project>/`` is not ``.../index.html``, and
obstore, like S3 itself, has no keys ending in ``/``): serve it through a website endpoint, a
CDN or the generated nginx config, or install straight from it with ``--find-links
<bucket URL>/links.html``.

Mirrors are exported from what they hold (nothing is asked of their upstream): with
``--files copy`` or ``link`` only their cached files are listed; with ``url=BASE`` every
listed file, linked to ``BASE`` (a wheelcave that can fetch the rest).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import orjson

from wheelcave.core.jsonapi import project_document, versions_of
from wheelcave.core.pages import (
    FileEntry, PageFormat, ProjectPage, html_anchor, format_upload_time, render_project, render_project_list,
)
from wheelcave.indexes.base import Index
from wheelcave.storage.base import BlobStore

__all__ = ["ExportReport", "ExportTarget", "Exporter", "FolderTarget", "ObjectStoreTarget", "nginx_config"]

STATE = ".wheelcave-export.json"
FORMAT = 2
HTML = "text/html; charset=utf-8"
JSON = "application/vnd.pypi.simple.v1+json"


class ExportTarget(Protocol):
    """Where a tree is written. Every write is whole or absent to a reader."""

    def read(self, path: str) -> bytes | None: ...

    def write(self, path: str, data: bytes, content_type: str) -> None: ...

    def put_blob(self, path: str, blobs: BlobStore, sha256: str, content_type: str) -> None: ...

    def delete(self, path: str) -> None: ...


class FolderTarget:
    """A folder; ``link`` hard-links files from the blob store instead of copying them (a
    copy where the two are on different filesystems)."""

    def __init__(self, root: Path, *, link: bool = False) -> None:
        self.root = root
        self.link = link
        self._made: set[Path] = set()  # folders known to exist (mkdir is not free)

    def _path(self, path: str) -> Path:
        parts = path.split("/")
        if path.startswith("/") or "\0" in path or any(p in {"", ".", ".."} for p in parts):
            raise ValueError(f"{path!r} is not a plain relative path")
        return self.root / path

    def read(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except FileNotFoundError:
            return None

    def _aside(self, full: Path) -> Path:
        if full.parent not in self._made:
            full.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(full.parent)
        return full.with_name(f".{full.name}.{os.getpid()}.part")

    def write(self, path: str, data: bytes, content_type: str) -> None:
        full = self._path(path)
        aside = self._aside(full)
        aside.write_bytes(data)
        os.replace(aside, full)

    def put_blob(self, path: str, blobs: BlobStore, sha256: str, content_type: str) -> None:
        full = self._path(path)
        aside = self._aside(full)
        aside.unlink(missing_ok=True)
        source = blobs.local_path(sha256)
        if source is None:  # an object store: copied through its reader
            with blobs.open(sha256) as fh, aside.open("xb") as out:
                shutil.copyfileobj(fh, out, 1024 * 1024)
        elif self.link:
            try:
                os.link(source, aside)
            except OSError:
                shutil.copyfile(source, aside)
        else:
            shutil.copyfile(source, aside)
        os.replace(aside, full)

    def delete(self, path: str) -> None:
        full = self._path(path)
        full.unlink(missing_ok=True)
        parent = full.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            self._made.discard(parent)
            parent = parent.parent


class ObjectStoreTarget:
    """An S3-compatible, GCS or Azure bucket through obstore (``s3://bucket/prefix``); the
    credentials and endpoint come from the usual environment variables (AWS_*, ...)."""

    def __init__(self, url: str, **options: Any) -> None:
        import obstore.store

        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        client_options = {"allow_http": True} if endpoint.startswith("http://") else None
        self.store = obstore.store.from_url(url, client_options=client_options, **options)

    def read(self, path: str) -> bytes | None:
        import obstore

        try:
            return bytes(obstore.get(self.store, path).bytes())
        except FileNotFoundError:
            return None

    def write(self, path: str, data: bytes, content_type: str) -> None:
        import obstore

        obstore.put(self.store, path, data, attributes={"Content-Type": content_type})

    def put_blob(self, path: str, blobs: BlobStore, sha256: str, content_type: str) -> None:
        import obstore

        source = blobs.local_path(sha256)
        with (source.open("rb") if source is not None else blobs.open(sha256)) as fh:
            obstore.put(self.store, path, fh, attributes={"Content-Type": content_type})

    def delete(self, path: str) -> None:
        import obstore

        try:
            obstore.delete(self.store, path)
        except FileNotFoundError:
            pass


@dataclass
class ExportReport:
    projects_written: list[str] = field(default_factory=list)
    projects_removed: list[str] = field(default_factory=list)
    projects_unchanged: int = 0
    files_written: int = 0
    files_removed: int = 0
    lists_written: bool = False
    #: Listed files left out because their bytes are not cached (mirrors, copy/link).
    not_cached: int = 0


@dataclass(frozen=True)
class ExportOptions:
    files: str = "copy"  # copy, link or url
    files_base: str = ""  # with url: where files/sha256/... is served
    base_url: str = ""  # absolute prefix for the JSON API's URLs (default: relative)
    nginx_listen: str = "8080"


class Exporter:
    def __init__(
        self, index: Index, index_ids: Sequence[int], stamps: Callable[[], Any], blobs: BlobStore,
        target: ExportTarget, options: ExportOptions, *, root: str = "",
        on_project: Callable[[str], None] = lambda name: None,
    ) -> None:
        """``stamps``: an awaitable of {index id: {project: updated_at}} (Repository.project_stamps)."""
        self.index = index
        self.index_ids = list(index_ids)
        self.stamps = stamps
        self.blobs = blobs
        self.target = target
        self.options = options
        self.root = root  # the served location of the tree, for nginx.conf
        self.on_project = on_project

    def _state(self) -> dict[str, Any]:
        data = self.target.read(STATE)
        if data is None:
            return {}
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError:
            return {}
        same = (isinstance(state, dict) and state.get("format") == FORMAT and state.get("index") == self.index.name
                and state.get("options") == self._options_key())
        return state if same else {}  # another index, other options, an older format: write everything again

    def _options_key(self) -> dict[str, str]:
        return {"files": self.options.files, "files_base": self.options.files_base, "base_url": self.options.base_url}

    async def run(self, *, full: bool = False) -> ExportReport:
        """Write what changed since the state file (everything with ``full``). The state keeps,
        per project, its stamp, the files and JSON documents written for it, and its
        ``packages.json`` lines and ``links.html`` anchors ready to join, so an unchanged
        project costs nothing but a comparison."""
        state = {} if full else self._state()
        report = ExportReport()
        old: dict[str, dict[str, Any]] = state.get("projects", {})
        all_stamps = await self.stamps()
        listed = await self.index.list_projects()
        records: dict[str, dict[str, Any]] = {}
        shown: list[tuple[str, str]] = []
        prefix = self.options.files_base if self.options.files == "url" else ""
        for name, display in listed:
            stamp = _stamp(name, all_stamps, self.index_ids)
            before = old.get(name)
            if before is not None and before.get("stamp") == stamp:
                report.projects_unchanged += 1
                records[name] = before
                if before.get("files") or before.get("ndjson"):
                    shown.append((name, display))
                continue
            page = await self.index.project(name, with_metadata=True)  # type: ignore[arg-type]
            page, missing = self._exportable(page)
            report.not_cached += missing
            if page is None or not page.files:
                records[name] = {"stamp": stamp, "files": [], "versions": [], "ndjson": "", "links": ""}
                if before is not None:
                    self._remove_project(name, before.get("versions", []))
                    report.projects_removed.append(name)
                continue
            already = set(before.get("files", [])) if before else set()
            written, paths = self._write_project_and_files(page, already)
            report.files_written += written
            versions = [v for v in versions_of(page) if "/" not in v and not v.startswith(".")]
            if before is not None:  # releases gone from the project lose their JSON documents
                for version in set(before.get("versions", [])) - set(versions):
                    self.target.delete(f"pypi/{name}/{version}/json")
            records[name] = {
                "stamp": stamp, "files": paths, "versions": versions,
                "ndjson": "".join(orjson.dumps(_package_line(f)).decode() + "\n" for f in page.files),
                "links": "".join(html_anchor(f, prefix) for f in page.files),
            }
            report.projects_written.append(name)
            shown.append((name, display))
            self.on_project(name)
        for name in set(old) - set(records):
            self._remove_project(name, old[name].get("versions", []))
            report.projects_removed.append(name)
        shown.sort()
        lists_key = hashlib.sha256(orjson.dumps(shown)).hexdigest()
        if lists_key != state.get("lists") or report.projects_written or report.projects_removed:
            if lists_key != state.get("lists"):
                self.target.write("simple/index.html", render_project_list(shown, PageFormat.TEXT_HTML), HTML)
                self.target.write("simple/index.json", render_project_list(shown, PageFormat.JSON), JSON)
                report.lists_written = True
            self.target.write("packages.json", "".join(records[n]["ndjson"] for n, _ in shown).encode(), "application/x-ndjson")
            links = "".join(records[n]["links"] for n, _ in shown)
            self.target.write("links.html", _LINKS_PAGE.format(links=links).encode(), HTML)
        config = nginx_config(self.root, self.options.nginx_listen).encode()
        if self.target.read("nginx.conf") != config:
            self.target.write("nginx.conf", config, "text/plain; charset=utf-8")
        kept = {path for record in records.values() for path in record["files"]}
        for record in old.values():  # files no page lists any more go last
            for path in record.get("files", []):
                if path not in kept:
                    self.target.delete(path)
                    report.files_removed += 1
        new_state = {"format": FORMAT, "index": self.index.name, "options": self._options_key(), "lists": lists_key,
                     "projects": records}
        self.target.write(STATE, orjson.dumps(new_state), "application/json")
        return report

    def _exportable(self, page: ProjectPage | None) -> tuple[ProjectPage | None, int]:
        """The page as the tree can serve it: with copied or linked files, only the cached
        ones, and metadata advertised only where its file is cached too."""
        if page is None or self.options.files == "url":
            return page, 0
        kept: list[FileEntry] = []
        for f in page.files:
            if not self.blobs.exists(f.sha256):
                continue
            if f.metadata_sha256 is None or not self.blobs.exists(f.metadata_sha256):
                f = replace(f, metadata_sha256=None, metadata_available=False)
            kept.append(f)
        return replace(page, files=kept), len(page.files) - len(kept)

    def _write_project_and_files(self, page: ProjectPage, already: set[str]) -> tuple[int, list[str]]:
        """The project's files first (those not written before), then its pages; (files
        written, the project's file paths)."""
        written = 0
        paths: list[str] = []
        if self.options.files != "url":
            for f in page.files:
                pairs = [(_file_path(f), f.sha256)]
                if f.metadata_sha256:
                    pairs.append((_file_path(f) + ".metadata", f.metadata_sha256))
                for path, sha in pairs:
                    if path not in already:
                        self.target.put_blob(path, self.blobs, sha, "application/octet-stream")
                        written += 1
                    paths.append(path)
        self._write_project(page)
        return written, paths

    def _write_project(self, page: ProjectPage) -> None:
        prefix = self.options.files_base if self.options.files == "url" else "../../"
        self.target.write(f"simple/{page.name}/index.html", render_project(page, PageFormat.TEXT_HTML, prefix), HTML)
        self.target.write(f"simple/{page.name}/index.json", render_project(page, PageFormat.JSON, prefix), JSON)
        base = self.options.base_url
        root_prefix = self.options.files_base if self.options.files == "url" else base
        for version in [None, *versions_of(page)]:
            if version is not None and ("/" in version or version.startswith(".")):
                continue
            relative = "../../" if version is None else "../../../"
            doc = project_document(page, version=version, url_prefix=root_prefix or relative,
                                   base_url=f"{base}project/" if base else "", serial=0)
            if doc is not None:
                path = f"pypi/{page.name}/json" if version is None else f"pypi/{page.name}/{version}/json"
                self.target.write(path, orjson.dumps(doc), "application/json")

    def _remove_project(self, name: str, versions: Sequence[str]) -> None:
        self.target.delete(f"simple/{name}/index.html")
        self.target.delete(f"simple/{name}/index.json")
        self.target.delete(f"pypi/{name}/json")
        for version in versions:
            self.target.delete(f"pypi/{name}/{version}/json")


def _stamp(name: str, all_stamps: Mapping[int, Mapping[str, str]], index_ids: Sequence[int]) -> str:
    return "|".join(f"{i}:{all_stamps.get(i, {}).get(name, '')}" for i in index_ids)


def _file_path(f: FileEntry) -> str:
    return f"files/sha256/{f.sha256}/{f.filename}"


def _package_line(f: FileEntry) -> dict[str, Any]:
    """One ``packages.json`` line, in the fields static index generators use."""
    line: dict[str, Any] = {
        "filename": f.filename, "hash": f"sha256={f.sha256}", "version": f.version,
        "requires_python": f.requires_python, "upload_timestamp": int(f.upload_time.timestamp()) if f.upload_time else None,
        "upload_time": format_upload_time(f.upload_time) if f.upload_time else None,
        "size": f.size, "yanked_reason": (f.yanked_reason or "") if f.yanked else None,
        "core_metadata": f"sha256={f.metadata_sha256}" if f.metadata_sha256 else None,
    }
    return {k: v for k, v in line.items() if v is not None}


_LINKS_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta name="pypi:repository-version" content="1.1">
<title>Links for every file</title>
</head>
<body>
<h1>Links for every file</h1>
{links}</body>
</html>
"""


def nginx_config(root: str, listen: str) -> str:
    """A server block for nginx's ``http`` context serving the tree at ``root``: the project
    pages as PEP 691 JSON for clients that ask for it (pip, uv), HTML otherwise."""
    return f"""# Generated by wheelcave export: include it in nginx's http {{ }} block.
server {{
    listen {listen};
    root {root or '.'};
    charset utf-8;

    location /simple/ {{
        set $wheelcave_page index.html;
        if ($http_accept ~* "application/vnd\\.pypi\\.simple\\.(v1|latest)\\+json") {{
            set $wheelcave_page index.json;
        }}
        index $wheelcave_page;
        add_header Vary Accept always;
        types {{
            text/html html;
            application/vnd.pypi.simple.v1+json json;
        }}
    }}
    location /files/ {{
        types {{ }}
        default_type application/octet-stream;
    }}
    location /pypi/ {{
        types {{ }}
        default_type application/json;
    }}
    location = /packages.json {{
        types {{ }}
        default_type application/x-ndjson;
    }}
    location ~ /\\. {{
        return 404;
    }}
    location = /nginx.conf {{
        return 404;
    }}
}}
"""
