"""Pages fetched ahead (indexes/ahead.py): a metadata file a mirror makes for a client starts the
upstream fetches of the pages of its unconditional dependencies.

In-process (httpx's ASGI transport, real SQLite, the fake upstream on 127.0.0.1, which counts
every request it gets). ``mirror.drain()`` waits for the fetches ahead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.dists import metadata_text, wheel_bytes
from tests.support.inprocess import mirror_app
from tests.support.upstream import JSON_TYPE, FakeUpstream, UpFile
from wheelcave.indexes.ahead import unconditional_dependencies

REQUIRES = ["pf-dep", "PF.Dep2 >=1.0", "pf-extra; extra == 'x'", "pf-win; sys_platform == 'win32'",
            "pf-missing", "not a requirement (", "pf_dep"]


def test_only_unconditional_dependencies_are_named() -> None:
    text = metadata_text("pf-app", "1.0", requires_dist=REQUIRES).encode()
    assert unconditional_dependencies(text) == ["pf-dep", "pf-dep2", "pf-missing"]
    many = metadata_text("big", "1.0", requires_dist=[f"dep-{i}" for i in range(80)]).encode()
    assert len(unconditional_dependencies(many)) == 50
    assert unconditional_dependencies(b"\xff\xfe not metadata at all") == []


def _upstream() -> FakeUpstream:
    upstream = FakeUpstream()
    upstream.ranges = True
    upstream.add("pf-app", UpFile("pf_app-1.0-py3-none-any.whl", wheel_bytes("pf-app", "1.0", requires_dist=REQUIRES)))
    for name in ("pf-dep", "pf-dep2", "pf-extra", "pf-win"):
        upstream.add(name, UpFile(f"{name.replace('-', '_')}-1.0-py3-none-any.whl", wheel_bytes(name, "1.0")))
    return upstream.start()


def _run(tmp_path: Path, config: dict[str, Any], private: bool = False) -> dict[str, Any]:
    upstream = _upstream()
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with mirror_app(tmp_path / "data", upstream.url, config=config,
                              grants=[] if private else None) as (services, client):
            mirror = await services.registry.get("up")
            wheel = "pf_app-1.0-py3-none-any.whl"
            sha = upstream.projects["pf-app"][0].sha256
            if not private:
                assert (await client.get("/index/up/simple/pf-app/", headers={"Accept": JSON_TYPE})).status_code == 200
            else:
                await mirror.refresh("pf-app")  # the page is stored; the caller may not read it
            seen["metadata"] = (await client.get(f"/files/sha256/{sha}/{wheel}.metadata")).status_code
            await asyncio.wait_for(mirror.drain(), 30)
            seen["asked"] = {n: upstream.count(f"GET /simple/{n}/") for n in
                             ("pf-dep", "pf-dep2", "pf-extra", "pf-win", "pf-missing")}
            dep = await client.get("/index/up/simple/pf-dep/", headers={"Accept": JSON_TYPE})
            seen["dep"] = dep.status_code
            seen["dep_asked_after"] = upstream.count("GET /simple/pf-dep/")
            seen["ahead"] = mirror.ahead.fetched

    try:
        asyncio.run(main())
    finally:
        upstream.stop()
    return seen


def test_a_metadata_file_fetches_its_dependencies_pages_ahead(tmp_path: Path) -> None:
    seen = _run(tmp_path, {"fetch_ahead": True})
    assert seen["metadata"] == 200
    assert seen["asked"] == {"pf-dep": 1, "pf-dep2": 1, "pf-extra": 0, "pf-win": 0, "pf-missing": 1}
    assert seen["ahead"] == 3
    assert seen["dep"] == 200 and seen["dep_asked_after"] == 1  # the client's request: no second fetch


def test_fetching_ahead_is_off_unless_asked_for(tmp_path: Path) -> None:
    seen = _run(tmp_path, {})
    assert seen["metadata"] == 200
    assert seen["asked"] == {"pf-dep": 0, "pf-dep2": 0, "pf-extra": 0, "pf-win": 0, "pf-missing": 0}
    assert seen["dep"] == 200 and seen["dep_asked_after"] == 1  # fetched when asked for


def test_a_refused_caller_starts_no_fetch(tmp_path: Path) -> None:
    seen = _run(tmp_path, {"fetch_ahead": True}, private=True)
    assert seen["metadata"] == 401
    assert seen["asked"] == {"pf-dep": 0, "pf-dep2": 0, "pf-extra": 0, "pf-win": 0, "pf-missing": 0}
    assert seen["ahead"] == 0


def test_a_request_that_waited_for_a_first_fetch_does_not_wait_for_a_quiet_moment(tmp_path: Path) -> None:
    """A fetch ahead is often under way when the client's own request for the page comes: that
    request waits for the project's lock, which the early answer's rows hold. The rows are then
    written at once, not in a quiet moment. Here the mirrors are never quiet (a fetch that never
    ends, a wait without limit): without that rule the second request would wait for ever."""
    upstream = _upstream()
    upstream.delay = 0.3  # the page fetch is still under way when the second request comes

    async def main() -> None:
        async with mirror_app(tmp_path / "data", upstream.url) as (services, client):
            quiet = services.registry.quiet
            quiet.longest = 10**6
            quiet.begin()
            try:
                pages = await asyncio.wait_for(asyncio.gather(*(
                    client.get("/index/up/simple/pf-dep/", headers={"Accept": JSON_TYPE}) for _ in range(2))), 30)
                assert [p.status_code for p in pages] == [200, 200]
                assert pages[0].json()["files"] == pages[1].json()["files"]
                assert upstream.count("GET /simple/pf-dep/") == 1
            finally:
                quiet.end()

    try:
        asyncio.run(main())
    finally:
        upstream.stop()
