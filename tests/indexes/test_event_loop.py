"""Defect 10.3: a huge upstream page must not stop the event loop (and with it every other
request, /health included) while it is parsed, turned into rows and rendered.

Measured without a clock: the app runs in-process on this thread's event loop (httpx's ASGI
transport, real SQLite, the real fake upstream on 127.0.0.1), and a profile function counts
the Python calls each event-loop callback makes on this thread. Work sent to a worker thread
is not counted (the profile function is per thread). Before the fix, one callback built every
row and every page entry of the page: hundreds of thousands of calls in a row, during which
no other request could be served. Time itself is measured by ``scripts/bench mirror`` (the
huge-page scenario: /health latency during a first fetch).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from tests.support.upstream import JSON_TYPE, FakeUpstream
from wheelcave.config import load_settings
from wheelcave.indexes.admin import IndexAdmin
from wheelcave.web.app import create_app

FILES = 30_000
#: Python calls one loop callback may make. Serving one ordinary request takes a few
#: thousand; building the rows or entries of a 30,000-file page on the loop takes >100,000.
MAX_CALLS_PER_CALLBACK = 25_000


class CallsPerCallback:
    """Counts Python function calls per event-loop callback (``Handle._run``) on this thread."""

    def __init__(self) -> None:
        self.count = 0
        self.worst = 0
        self.worst_where = ""
        self._where: dict[str, int] = {}

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code.co_name == "_run" and code.co_filename.endswith("asyncio/events.py"):
            self._close()
            return
        self.count += 1
        if "wheelcave" in code.co_filename:
            key = f"{Path(code.co_filename).name}:{code.co_name}"
            self._where[key] = self._where.get(key, 0) + 1

    def _close(self) -> None:
        if self.count > self.worst:
            self.worst = self.count
            top = sorted(self._where.items(), key=lambda kv: -kv[1])[:5]
            self.worst_where = ", ".join(f"{k} x{v}" for k, v in top)
        self.count = 0
        self._where = {}


@pytest.fixture
def huge_upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    files = [{
        "filename": f"huge-{i // 10}.{i % 10}-py3-none-any.whl", "url": f"../../files/huge-{i}.whl",
        "hashes": {"sha256": hashlib.sha256(str(i).encode()).hexdigest()}, "size": 1000,
        "upload-time": "2024-01-01T00:00:00Z", "requires-python": ">=3.8", "yanked": False,
    } for i in range(FILES)]
    up.raw_pages["huge"] = (json.dumps({"meta": {"api-version": "1.1"}, "name": "huge", "files": files}).encode(), JSON_TYPE)
    up.start()
    yield up
    up.stop()


@pytest.mark.parametrize("early_answers", [True, False], ids=["early-answer", "rows-first"])
def test_a_huge_page_never_holds_the_loop(tmp_path: Path, huge_upstream: FakeUpstream, early_answers: bool) -> None:
    app = create_app(load_settings(tmp_path / "data", environ={}))
    counter = CallsPerCallback()

    async def main() -> None:
        async with app.router.lifespan_context(app):
            services = app.state.services
            await IndexAdmin(services.repo).create("up", "mirror", {"upstream": huge_upstream.url})
            registry = services.registry
            await registry.reload()
            mirror = await registry.get("up")
            mirror.early_answers = early_answers  # both paths of a first fetch (see MirrorIndex)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                sys.setprofile(counter)
                try:
                    page = await client.get("/index/up/simple/huge/", headers={"Accept": JSON_TYPE})
                    again = await client.get("/index/up/simple/huge/", headers={"Accept": "text/html"})
                finally:
                    sys.setprofile(None)
                    counter._close()
            assert page.status_code == 200, page.text
            assert len(page.json()["files"]) == FILES
            assert again.status_code == 200 and again.text.count("<a ") == FILES
            await mirror.drain()

    asyncio.run(main())
    print(f"worst callback: {counter.worst} calls ({counter.worst_where})")
    assert counter.worst < MAX_CALLS_PER_CALLBACK, (
        f"one event-loop callback made {counter.worst} Python calls: {counter.worst_where}")
