"""A small upstream index for tests, on 127.0.0.1, that can misbehave on purpose.

It serves PEP 691 JSON (or only PEP 503 HTML), ETags and 304s, files and ``.metadata``
files, and logs every request. Faults: ``delay`` (seconds before answering), ``status``
(answer every request with it, e.g. 500), ``drop_files`` (cut file transfers in the
middle), ``wrong_bytes`` (serve bytes whose hash does not match the page), ``throttle``
(bytes per second for files), ``raw_pages`` (exact bytes and type for a project page), and
:meth:`stop` / :meth:`start`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.server import ThreadedServer, free_port

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class UpFile:
    filename: str
    data: bytes
    metadata: bytes | None = None
    yanked: str | bool = False
    requires_python: str | None = None
    upload_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class FakeUpstream:
    def __init__(self) -> None:
        self.projects: dict[str, list[UpFile]] = {}
        self.requests: list[str] = []
        self.html_only = False
        self.delay = 0.0
        self.status: int | None = None
        self.drop_files = False
        self.wrong_bytes = False
        self.throttle: int | None = None
        #: Seconds between single bytes of a project page (a slow-drip upstream).
        self.drip: float = 0.0
        #: Every request is redirected to itself.
        self.redirect_loop = False
        self.raw_pages: dict[str, tuple[bytes, str]] = {}
        #: Answer ``Range: bytes=...`` requests for files with 206 (else the whole file, 200).
        self.ranges = False
        #: Bytes Range requests are answered from instead of the file's (an upstream whose file
        #: changed between a client's range reads and its download).
        self.range_bytes: dict[str, bytes] = {}
        #: Files asked with a Range header, and files sent whole (200), by filename.
        self.range_requests: list[str] = []
        self.full_downloads: list[str] = []
        #: Range requests wait until this is set, once counted (an upstream still answering, with
        #: no clock involved).
        self.range_gate: threading.Event | None = None
        #: Bytes of each file sent so far (to tell, without a clock, that a client got bytes
        #: before the upstream finished).
        self.sent: dict[str, int] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/simple/"
        self._server: ThreadedServer | None = None

    # ------------------------------------------------------------ content

    def add(self, project: str, *files: UpFile) -> None:
        self.projects.setdefault(project, []).extend(files)

    def count(self, request_line: str) -> int:
        """How many times ``"GET /path"`` was asked."""
        return sum(1 for r in self.requests if r == request_line)

    # ------------------------------------------------------------ app

    async def _before(self, request: Request) -> Response | None:
        self.requests.append(f"{request.method} {request.url.path}")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status is not None:
            return PlainTextResponse("injected failure", status_code=self.status)
        if self.redirect_loop:
            return Response(status_code=302, headers={"Location": str(request.url)})
        return None

    def _page(self, project: str) -> tuple[bytes, str]:
        if project in self.raw_pages:
            return self.raw_pages[project]
        files = self.projects[project]
        if self.html_only:
            links = []
            for f in files:
                attrs = f' data-requires-python="{f.requires_python.replace(">", "&gt;").replace("<", "&lt;")}"' if f.requires_python else ""
                if f.yanked is not False:
                    attrs += f' data-yanked="{f.yanked if isinstance(f.yanked, str) else ""}"'
                if f.metadata is not None:
                    attrs += f' data-core-metadata="sha256={hashlib.sha256(f.metadata).hexdigest()}"'
                links.append(f'<a href="../../files/{f.filename}#sha256={f.sha256}"{attrs}>{f.filename}</a><br>')
            return ("<!DOCTYPE html><html><body>" + "\n".join(links) + "</body></html>").encode(), "text/html"
        doc = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "versions": [],
            "files": [
                {
                    "filename": f.filename,
                    "url": f"../../files/{f.filename}",
                    "hashes": {"sha256": f.sha256},
                    "requires-python": f.requires_python,
                    "yanked": f.yanked,
                    "size": len(f.data),
                    "upload-time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "core-metadata": {"sha256": hashlib.sha256(f.metadata).hexdigest()} if f.metadata else False,
                }
                for f in files
            ],
        }
        return json.dumps(doc).encode(), JSON_TYPE

    async def project(self, request: Request) -> Response:
        early = await self._before(request)
        if early is not None:
            return early
        name = request.path_params["project"]
        if name not in self.projects and name not in self.raw_pages:
            return PlainTextResponse("not found", status_code=404)
        body, content_type = self._page(name)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        if self.drip:
            async def dripping() -> AsyncIterator[bytes]:
                for i in range(len(body)):
                    yield body[i : i + 1]
                    await asyncio.sleep(self.drip)
            return StreamingResponse(dripping(), media_type=content_type, headers={"ETag": etag})
        return Response(body, media_type=content_type, headers={"ETag": etag})

    async def index(self, request: Request) -> Response:
        early = await self._before(request)
        if early is not None:
            return early
        doc = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in self.projects]}
        return Response(json.dumps(doc).encode(), media_type=JSON_TYPE)

    def _find(self, filename: str) -> UpFile | None:
        for files in self.projects.values():
            for f in files:
                if f.filename == filename:
                    return f
        return None

    async def file(self, request: Request) -> Response:
        early = await self._before(request)
        if early is not None:
            return early
        filename = request.path_params["filename"]
        if filename.endswith(".metadata"):
            f = self._find(filename[: -len(".metadata")])
            if f is None or f.metadata is None:
                return PlainTextResponse("not found", status_code=404)
            return Response(f.metadata, media_type="application/octet-stream")
        f = self._find(filename)
        if f is None:
            return PlainTextResponse("not found", status_code=404)
        data = f.data
        if self.wrong_bytes:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        wanted = request.headers.get("range")
        if wanted is not None:
            self.range_requests.append(filename)
            if self.range_gate is not None:
                await asyncio.to_thread(self.range_gate.wait, 30)
            if self.ranges:
                return self._range(self.range_bytes.get(filename, data), wanted)
        self.full_downloads.append(filename)

        async def body() -> AsyncIterator[bytes]:
            chunk = 64 * 1024
            for i in range(0, len(data), chunk):
                if self.drop_files and i >= len(data) // 2:
                    raise ConnectionResetError("injected: connection dropped mid-file")
                yield data[i : i + chunk]
                self.sent[filename] = min(len(data), i + chunk)
                if self.throttle:
                    await asyncio.sleep(chunk / self.throttle)

        return StreamingResponse(body(), media_type="application/octet-stream",
                                 headers={"Content-Length": str(len(data))})

    @staticmethod
    def _range(data: bytes, wanted: str) -> Response:
        spec = wanted.strip().removeprefix("bytes=")
        first, _, last = spec.partition("-")
        if not first:
            start, end = max(0, len(data) - int(last)), len(data) - 1
        else:
            start, end = int(first), min(len(data) - 1, int(last)) if last else len(data) - 1
        if start >= len(data) or end < start:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
        return Response(data[start:end + 1], status_code=206, media_type="application/octet-stream",
                        headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/simple/", self.index),
            Route("/simple/{project}/", self.project),
            Route("/files/{filename}", self.file),
        ])

    # ------------------------------------------------------------ lifecycle

    def start(self, tls: tuple[Path, Path, Path] | None = None) -> FakeUpstream:
        """``tls``: (CA bundle, certificate, key) to serve HTTPS (see tests/support/tls.py)."""
        if tls:
            self.url = f"https://127.0.0.1:{self.port}/simple/"
        self._server = ThreadedServer(self.app(), self.port, tls).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
