"""The cache and traffic page of a mirror (issue 12): what it counts, who may see it, its worst
inputs; and the counts' arithmetic in-process (buckets, flush, restore on a failed write)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from tests.support.dists import wheel_bytes
from tests.support.server import Server, ok
from tests.support.upstream import FakeUpstream, UpFile
from wheelcave.core import traffic
from wheelcave.core.traffic import BUCKET, Bucket, TrafficCounts

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


class _Store:
    def __init__(self, fail: bool = False) -> None:
        self.rows: list[Bucket] = []
        self.fail = fail
        self.pruned: list[int] = []

    async def add_traffic(self, buckets: list[Bucket]) -> None:
        if self.fail:
            raise OSError("database away")
        self.rows.extend(buckets)

    async def traffic(self, index: str, since: int) -> list[Bucket]:
        return [b for b in self.rows if b.index == index and b.start >= since]

    async def prune_traffic(self, before: int) -> None:
        self.pruned.append(before)


def test_counts_fall_in_buckets_and_survive_a_failed_write() -> None:
    now = [1_000_000.0]
    counts = TrafficCounts(clock=lambda: now[0])
    counts.page("m", "hit")
    counts.page("m", "fetched")
    counts.page("m", "early")  # the same fetch, answered early: not a second request
    counts.page("m", "pending-not-a-result")  # unknown results count nowhere
    counts.file("m", "miss")
    counts.file("m", "joined")
    counts.file_bytes("m", "upstream", 500)
    now[0] += BUCKET
    counts.file("m", "hit")
    counts.file_bytes("m", "cache", 500)
    counts.upstream_error("m")
    failing = _Store(fail=True)
    with pytest.raises(OSError):
        asyncio.run(traffic.flush(counts, failing, clock=lambda: now[0]))
    store = _Store()
    asyncio.run(traffic.flush(counts, store, clock=lambda: now[0]))  # nothing was lost by the failure
    by_start = {b.start: b.counts for b in store.rows}
    first = 1_000_000 // BUCKET * BUCKET
    assert by_start == {
        first: {"page_hits": 1, "page_fetches": 1, "file_misses": 2, "bytes_upstream": 500},
        first + BUCKET: {"file_hits": 1, "bytes_cache": 500, "upstream_errors": 1},
    }
    assert store.pruned == [int(now[0]) - traffic.KEEP]
    asyncio.run(traffic.flush(counts, store))  # nothing pending: nothing written
    assert len(store.rows) == 2


@pytest.fixture
def mirrored(fresh_server: Server, tmp_path: Path) -> tuple[Server, FakeUpstream]:
    up = FakeUpstream()
    up.add("tr-pkg", UpFile("tr_pkg-1.0-py3-none-any.whl", wheel_bytes("tr-pkg", "1.0") + b"\0" * 0))
    up.start()
    fresh_server.cli("index", "create", "tm", "--kind", "mirror", "--upstream", up.url, "--ttl", "600")
    fresh_server.cli("index", "create", "th", "--kind", "hosted")
    fresh_server.wait_for_index("tm")
    fresh_server.wait_for_index("th")
    yield fresh_server, up
    up.stop()


def _figures(html: str) -> dict[str, str]:
    return {label: value for value, label in re.findall(r"<div><strong>([^<]*)</strong><span class=\"muted\">([^<]*)</span>", html)}


def test_traffic_page_counts_what_the_mirror_served(mirrored: tuple[Server, FakeUpstream]) -> None:
    server, up = mirrored
    admin = ("admin", server.admin_password)
    base = f"{server.url}/index/tm/simple"
    page = ok(httpx.get(f"{base}/tr-pkg/", headers=JSON)).json()  # fetched
    ok(httpx.get(f"{base}/tr-pkg/", headers=JSON))  # hit
    url = httpx.URL(f"{base}/tr-pkg/").join(page["files"][0]["url"])
    size = len(ok(httpx.get(url)).content)  # miss: fetched upstream
    ok(httpx.get(url))  # hit: from the cache
    up.status = 500
    assert httpx.get(f"{base}/tr-other/", headers=JSON).status_code >= 400  # an upstream error
    up.status = None

    html = ok(httpx.get(f"{server.url}/index/tm/traffic", auth=admin)).text
    figures = _figures(html)
    assert figures["hit rate"] == "50.0 %"  # 2 of 4: the second page and the second file
    assert figures["served from the cache"] == f"{size} B" if size < 1024 else f"{size / 1024:.1f} KiB"
    assert figures["fetched from upstream"] == figures["served from the cache"]
    assert figures["upstream errors"].startswith("1 of ")
    assert html.count("<svg class=\"chart\"") == 3 and "<title id=\"requests-t\">" in html
    assert "<script>" not in html and "http://" not in html.split("<main", 1)[1].split("</main>")[0].replace(server.url, "")
    # Every range draws; an unknown one is the default.
    for rng in ("1h", "24h", "7d", "30d", "<script>", "9" * 5000):
        r = httpx.get(f"{server.url}/index/tm/traffic", params={"range": rng}, auth=admin)
        assert r.status_code == 200 and "<script>" not in r.text.split("<main", 1)[1]
    # The index page links it for those who may see it.
    assert "/index/tm/traffic" in httpx.get(f"{server.url}/index/tm/", auth=admin).text
    assert "/index/tm/traffic" not in httpx.get(f"{server.url}/index/tm/").text


def test_traffic_page_refusals(mirrored: tuple[Server, FakeUpstream]) -> None:
    server, _ = mirrored
    admin = ("admin", server.admin_password)
    api = f"{server.url}/api/v1"
    ok(httpx.post(f"{api}/users", json={"name": "tr-reader", "password": "a long password 1"}, auth=admin))
    ok(httpx.post(f"{api}/users", json={"name": "tr-manager", "password": "a long password 2"}, auth=admin))
    ok(httpx.post(f"{api}/indexes/tm/acl/grant", json={"principal": "tr-manager", "permissions": ["manage"]}, auth=admin))
    page = f"{server.url}/index/tm/traffic"
    assert httpx.get(page).status_code == 401  # anonymous
    assert httpx.get(page, auth=("tr-reader", "a long password 1")).status_code == 403  # may read, not manage
    assert httpx.get(page, auth=("tr-reader", "wrong")).status_code == 401
    # A grant is seen within the server's refresh; poll, do not sleep on its interval.
    for _ in range(100):
        if httpx.get(page, auth=("tr-manager", "a long password 2")).status_code == 200:
            break
        asyncio.run(asyncio.sleep(0.05))
    else:
        pytest.fail("a manager of the mirror was refused its traffic page")
    assert httpx.get(f"{server.url}/index/th/traffic", auth=admin).status_code == 404  # not a mirror
    assert httpx.get(f"{server.url}/index/nope/traffic", auth=admin).status_code == 404
    assert httpx.get(f"{server.url}/index/{'x' * 300}/traffic", auth=admin).status_code == 404
    assert httpx.post(page, auth=admin).status_code == 405
