"""A wheel's metadata read by Range is served again from its blob while its row is still being
written (indexes/mirror.py, indexes/mirror_files.py): a second client asking meanwhile costs the upstream nothing.

In-process (httpx's ASGI transport, real SQLite, the fake upstream on 127.0.0.1, which answers
Range and logs it). The repository's row write is held back by an event, as a busy database's
write lock would hold it; the test lets it go at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from tests.support.dists import wheel_bytes
from tests.support.inprocess import mirror_app
from tests.support.upstream import JSON_TYPE, FakeUpstream, UpFile

_NOISE = random.Random(7)
#: 400 KiB that does not compress: the wheel does not arrive whole with the tail read.
PAD = {f"pad/{i}.py": _NOISE.randbytes(10240) for i in range(40)}


def test_a_metadata_file_read_a_moment_ago_is_not_read_again(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    upstream.ranges = True
    filename = "mr_lib-1.0-py3-none-any.whl"
    upstream.add("mr-lib", UpFile(filename, wheel_bytes("mr-lib", "1.0", extra_files=PAD)))
    upstream.start()

    async def main() -> None:
        async with mirror_app(tmp_path / "data", upstream.url) as (services, client):
            release = asyncio.Event()
            held: list[str] = []
            real = services.repo.record_metadata_blob

            async def slow_write(file_id: int, sha256: str, size: int) -> bool:
                held.append(sha256)
                await release.wait()
                return await real(file_id, sha256, size)

            services.repo.record_metadata_blob = slow_write
            page = (await client.get("/index/up/simple/mr-lib/", headers={"Accept": JSON_TYPE})).json()
            url = httpx.URL("http://test/index/up/simple/mr-lib/").join(page["files"][0]["url"])
            first = await client.get(str(url.copy_with(fragment=None)) + ".metadata")
            assert first.status_code == 200 and b"Name: mr-lib" in first.content
            deadline = asyncio.get_running_loop().time() + 10
            while not held and asyncio.get_running_loop().time() < deadline:  # the row write starts (and waits)
                await asyncio.sleep(0.01)
            assert held
            reads = len(upstream.range_requests)
            assert reads > 0 and upstream.full_downloads == []
            again = await client.get(str(url.copy_with(fragment=None)) + ".metadata")
            assert again.status_code == 200 and again.content == first.content
            assert len(upstream.range_requests) == reads  # from the blob, not the upstream
            release.set()

    try:
        asyncio.run(main())
    finally:
        upstream.stop()


def test_a_wheel_is_checked_against_its_mirror_row_when_a_hosted_index_has_the_same_file(tmp_path: Path) -> None:
    """When a wheel arrives, the metadata read by Range is looked up in the mirror's own row, not
    in the first row of these bytes (a hosted index's, which a lookup by content puts first).
    Here the Range read was another process's (this one never saw it: no note in memory) and
    the download began before that row was written: only the row tells what was read."""
    upstream = FakeUpstream()
    upstream.ranges = True
    data = wheel_bytes("mr-dup", "1.0", extra_files=PAD)
    filename = "mr_dup-1.0-py3-none-any.whl"
    upstream.add("mr-dup", UpFile(filename, data))
    upstream.start()

    async def main() -> None:
        async with mirror_app(tmp_path / "data", upstream.url) as (services, client):
            password = await services.auth.ensure_initial_admin()
            form = {":action": "file_upload", "protocol_version": "1", "name": "mr-dup", "version": "1.0",
                    "filetype": "bdist_wheel", "pyversion": "py3", "sha256_digest": hashlib.sha256(data).hexdigest()}
            hosted = await client.post("/index/main/", data=form, files={"content": (filename, data)},
                                       auth=("admin", password))
            assert hosted.status_code == 200, hosted.text
            page = (await client.get("/index/up/simple/mr-dup/", headers={"Accept": JSON_TYPE})).json()
            url = httpx.URL("http://test/index/up/simple/mr-dup/").join(page["files"][0]["url"])
            assert (await client.get(str(url.copy_with(fragment=None)) + ".metadata")).status_code == 200
            mirror = await services.registry.get("up")
            await mirror.drain()
            row = await services.repo.find_file(mirror.id, filename)
            assert row is not None and row.metadata_sha256  # what the Range read found
            mirror.makes.read_by_range.clear()  # read by another process
            before_the_row = dataclasses.replace(row, metadata_sha256=None)
            assert not await mirror._check_read_metadata(before_the_row, (row.metadata_sha256, 100))
            assert await mirror._check_read_metadata(before_the_row, ("0" * 64, 100))

    try:
        asyncio.run(main())
    finally:
        upstream.stop()


async def _two_at_once(upstream: FakeUpstream, client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, httpx.Response]:
    """Two requests for ``url``, the second made while the upstream holds the first one's Range
    read, and answered once the second has joined it."""
    assert upstream.range_gate is not None
    first = asyncio.ensure_future(client.get(url))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not upstream.range_requests and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert len(upstream.range_requests) == 1  # the first read is held
    joined = (await client.get("/metrics")).text.count('source="joined"}')
    second = asyncio.ensure_future(client.get(url))
    while (await client.get("/metrics")).text.count('source="joined"}') == joined and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert len(upstream.range_requests) == 1
    upstream.range_gate.set()
    return await first, await second


def _with_gated_upstream(tmp_path: Path, project: str, mend: bytes | None,
                         body: Callable[[FakeUpstream, httpx.AsyncClient, str], Awaitable[None]]) -> None:
    """``body(upstream, client, url)``: a mirror of an upstream with one wheel of ``project``,
    whose Range answers wait for ``upstream.range_gate``; ``url``, the wheel's ``.metadata`` on
    the mirror, after its page was read. ``mend``: the bytes Range answers come from at first."""
    upstream = FakeUpstream()
    upstream.ranges = True
    upstream.range_gate = threading.Event()
    filename = f"{project.replace('-', '_')}-1.0-py3-none-any.whl"
    upstream.add(project, UpFile(filename, wheel_bytes(project, "1.0", extra_files=PAD)))
    if mend is not None:
        upstream.range_bytes[filename] = mend
    upstream.start()

    async def main() -> None:
        async with mirror_app(tmp_path / "data", upstream.url) as (_, client):
            page = (await client.get(f"/index/up/simple/{project}/", headers={"Accept": JSON_TYPE})).json()
            url = str(httpx.URL(f"http://test/index/up/simple/{project}/").join(page["files"][0]["url"]))
            await body(upstream, client, url + ".metadata")

    try:
        asyncio.run(main())
    finally:
        upstream.range_gate.set()
        upstream.stop()


def test_two_requests_for_a_metadata_file_being_read_share_one_read(tmp_path: Path) -> None:
    """A second client asking for a wheel's metadata while the first one's Range read is under
    way waits for that read: the upstream gets the reads of one, and both get the same bytes."""
    async def body(upstream: FakeUpstream, client: httpx.AsyncClient, url: str) -> None:
        a, b = await _two_at_once(upstream, client, url)
        assert a.status_code == b.status_code == 200 and a.content == b.content and b"Name: mr-two" in a.content
        reads = len(upstream.range_requests)
        assert reads <= 2 and upstream.full_downloads == []  # one wheel's reads (tail, then METADATA if apart)
        again = await client.get(url)  # and once read, it is not read again
        assert again.content == a.content and len(upstream.range_requests) == reads

    _with_gated_upstream(tmp_path, "mr-two", None, body)


def test_a_failed_read_fails_both_requests_and_the_next_one_reads_again(tmp_path: Path) -> None:
    """The upstream answers the shared read with bytes that are no wheel: both requests get the
    same 404, and the read is not remembered: the next request, the upstream mended, reads again."""
    async def body(upstream: FakeUpstream, client: httpx.AsyncClient, url: str) -> None:
        a, b = await _two_at_once(upstream, client, url)
        assert a.status_code == b.status_code == 404 and a.text == b.text and "not a valid zip" in a.text
        upstream.range_bytes.clear()  # mended
        again = await client.get(url)
        assert again.status_code == 200 and b"Name: mr-bad" in again.content

    _with_gated_upstream(tmp_path, "mr-bad", b"not a zip archive" * 5000, body)
