"""A mirror keeps an upstream page as one record and makes file rows only for the files clients
ask for (issue 13; wheelcave.core.mirror_listing, db/mirror_rows.py).

In-process (httpx's ASGI transport, real SQLite, the fake upstream on 127.0.0.1). The rows are
read straight from the database to see which exist.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from tests.support.dists import sdist_bytes, wheel_bytes
from tests.support.inprocess import mirror_app
from tests.support.upstream import JSON_TYPE, FakeUpstream, UpFile
from wheelcave.core.mirror_listing import listed_files
from wheelcave.db import tables as t
from wheelcave.indexes.admin import IndexAdmin

Client = httpx.AsyncClient


def _upstream() -> FakeUpstream:
    upstream = FakeUpstream()
    upstream.ranges = True
    upstream.add("lib", *(UpFile(f"lib-1.{i}-py3-none-any.whl", wheel_bytes("lib", f"1.{i}")) for i in range(6)),
                 UpFile("lib-1.5.tar.gz", sdist_bytes("lib", "1.5")),
                 # An old upload whose name spells another project: found only through a row.
                 UpFile("Lib_Old-0.1.tar.gz", sdist_bytes("lib-old", "0.1")))
    return upstream.start()


async def _rows(services: Any) -> list[str]:
    async with services.repo.db.read() as conn:
        return sorted((await conn.execute(sa.select(t.files.c.filename))).scalars())


def _run(tmp_path: Path, body: Callable[[Any, Client, FakeUpstream], Awaitable[None]]) -> None:
    upstream = _upstream()

    async def main() -> None:
        async with mirror_app(tmp_path / "data", upstream.url) as (services, client):
            await body(services, client, upstream)

    try:
        asyncio.run(main())
    finally:
        upstream.stop()


async def _page(client: Client, services: Any) -> dict[str, Any]:
    response = await client.get("/index/up/simple/lib/", headers={"Accept": JSON_TYPE})
    assert response.status_code == 200
    await (await services.registry.get("up")).drain()  # the page's record is written
    return {f["filename"]: f for f in response.json()["files"]}


def test_a_page_is_one_record_and_a_file_gets_its_row_when_asked_for(tmp_path: Path) -> None:
    async def body(services: Any, client: Client, upstream: FakeUpstream) -> None:
        files = await _page(client, services)
        assert len(files) == 8
        # Only the file a lookup by name would not find under "lib" has a row.
        assert await _rows(services) == ["Lib_Old-0.1.tar.gz"]
        services.registry.changes.changed("lib")  # past the page cache: read back from the record
        assert {f["filename"]: f for f in (await client.get(
            "/index/up/simple/lib/", headers={"Accept": JSON_TYPE})).json()["files"]} == files
        wheel = files["lib-1.2-py3-none-any.whl"]
        meta = await client.get(httpx.URL("http://test/index/up/simple/lib/").join(wheel["url"]).path + ".metadata")
        assert meta.status_code == 200 and b"Name: lib" in meta.content
        sdist = files["lib-1.5.tar.gz"]
        got = await client.get(httpx.URL("http://test/index/up/simple/lib/").join(sdist["url"]).path)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sdist["hashes"]["sha256"]
        odd = files["Lib_Old-0.1.tar.gz"]
        assert (await client.get(httpx.URL("http://test/index/up/simple/lib/").join(odd["url"]).path)).status_code == 200
        for _ in range(100):  # the rows are recorded after the answers
            await asyncio.sleep(0.02)
            if len(await _rows(services)) == 3:
                break
        assert await _rows(services) == ["Lib_Old-0.1.tar.gz", "lib-1.2-py3-none-any.whl", "lib-1.5.tar.gz"]
        services.registry.changes.changed("lib")
        again = {f["filename"]: f for f in (await client.get(
            "/index/up/simple/lib/", headers={"Accept": JSON_TYPE})).json()["files"]}
        assert list(again) == list(files)  # the upstream's order, rows or not
        assert again["lib-1.2-py3-none-any.whl"]["core-metadata"] == {"sha256": hashlib.sha256(meta.content).hexdigest()}
        assert again["lib-1.5.tar.gz"]["size"] == len(got.content)

    _run(tmp_path, body)


def test_a_file_the_page_does_not_list_is_not_found_whatever_its_name(tmp_path: Path) -> None:
    async def body(services: Any, client: Client, upstream: FakeUpstream) -> None:
        files = await _page(client, services)
        wheel = files["lib-1.0-py3-none-any.whl"]
        sha = wheel["hashes"]["sha256"]
        other = files["lib-1.1-py3-none-any.whl"]["hashes"]["sha256"]
        for path in (f"/files/sha256/{other}/lib-1.0-py3-none-any.whl",  # another file's content
                     f"/files/sha256/{sha}/lib-9.9-py3-none-any.whl",  # a name the page does not list
                     f"/files/sha256/{sha}/lib-1.0-py3-none-any.whl.metadata.metadata",
                     f"/files/sha256/{sha}/..%2Flib-1.0-py3-none-any.whl",
                     f"/files/sha256/{'0' * 64}/lib-1.0-py3-none-any.whl"):
            assert (await client.get(path)).status_code == 404, path
        assert await _rows(services) == ["Lib_Old-0.1.tar.gz"]  # no row made for any of them
        assert upstream.full_downloads == [] and upstream.range_requests == []

    _run(tmp_path, body)


def test_a_file_nobody_asked_for_is_served_only_to_readers_of_a_mirror_listing_it(tmp_path: Path) -> None:
    async def body(services: Any, client: Client, upstream: FakeUpstream) -> None:
        await IndexAdmin(services.repo).create("secret", "mirror", {"upstream": upstream.url}, grants=[])
        await services.registry.reload()
        await (await services.registry.get("secret")).refresh("lib")  # only the private mirror lists it
        sha = next(f.sha256 for f in upstream.projects["lib"] if f.filename == "lib-1.3-py3-none-any.whl")
        url = f"/files/sha256/{sha}/lib-1.3-py3-none-any.whl"
        for path in (url, url + ".metadata"):
            refused = await client.get(path)
            assert refused.status_code == 401, path  # anonymous: what an unknown file gets
        assert await _rows(services) == ["Lib_Old-0.1.tar.gz"]  # nothing made for a refused caller
        assert upstream.range_requests == [] and upstream.full_downloads == []
        await _page(client, services)  # the public mirror lists it now
        assert (await client.get(url + ".metadata")).status_code == 200
        assert "lib-1.3-py3-none-any.whl" in await _rows(services)

    _run(tmp_path, body)


def test_a_refresh_keeps_asked_rows_in_line_and_cached_files_the_upstream_drops(tmp_path: Path) -> None:
    async def body(services: Any, client: Client, upstream: FakeUpstream) -> None:
        files = await _page(client, services)
        cached = files["lib-1.4-py3-none-any.whl"]
        got = await client.get(httpx.URL("http://test/index/up/simple/lib/").join(cached["url"]).path)
        assert got.status_code == 200
        mirror = await services.registry.get("up")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if "lib-1.4-py3-none-any.whl" in await _rows(services):
                break
        # The upstream drops 1.4 and 1.0 and yanks 1.3: the cached file stays listed, the other goes.
        upstream.projects["lib"] = [f for f in upstream.projects["lib"] if "1.4-" not in f.filename and "1.0-" not in f.filename]
        for f in upstream.projects["lib"]:
            if f.filename.startswith("lib-1.3-"):
                f.yanked = "broken"
        await mirror.refresh("lib")
        services.registry.changes.changed("lib")
        again = {f["filename"]: f for f in (await client.get(
            "/index/up/simple/lib/", headers={"Accept": JSON_TYPE})).json()["files"]}
        assert "lib-1.4-py3-none-any.whl" in again and "lib-1.0-py3-none-any.whl" not in again
        assert again["lib-1.3-py3-none-any.whl"]["yanked"] == "broken"
        assert list(again)[-1] == "lib-1.4-py3-none-any.whl"  # kept files after the listing

    _run(tmp_path, body)


def test_a_file_is_served_through_a_mirror_its_reader_may_read_not_through_another_with_a_row(tmp_path: Path) -> None:
    """Two mirrors list the same bytes: a private one (readable by nobody here) that has the file's
    row and is offline, and the public "up", which only lists it. An anonymous reader of "up" gets
    the bytes and the metadata, fetched by "up" (the private mirror's row would answer 404: it is
    offline), and nothing is recorded in the private mirror on the reader's behalf."""
    async def body(services: Any, client: Client, upstream: FakeUpstream) -> None:
        admin = IndexAdmin(services.repo)
        await admin.create("secret", "mirror", {"upstream": upstream.url}, grants=[])
        await services.registry.reload()
        secret = await services.registry.get("secret")
        await secret.refresh("lib")
        name = "lib-1.3-py3-none-any.whl"
        wheel = next(f for f in upstream.projects["lib"] if f.filename == name)
        assert await secret.listed_record(wheel.sha256, name) is not None  # its row: a client of the secret asked
        await admin.update("secret", {"offline": True})
        await services.registry.reload()
        await _page(client, services)  # "up" lists it (a listing, no row)
        url = f"/files/sha256/{wheel.sha256}/{name}"
        got = await client.get(url)
        assert got.status_code == 200 and got.content == wheel.data
        assert (await client.get(url + ".metadata")).status_code == 200
        async with services.repo.db.read() as conn:
            rows = (await conn.execute(sa.select(t.indexes.c.name).select_from(t.files.join(t.indexes))
                                       .where(t.files.c.filename == name).order_by(t.indexes.c.name))).scalars().all()
        assert rows == ["secret", "up"]  # "up" has its own row now; the secret's was not used
        assert upstream.full_downloads == [name]

    _run(tmp_path, body)


def test_a_first_request_for_a_listed_file_looks_its_listing_up_once(tmp_path: Path) -> None:
    """The access check finds a file nobody asked for yet in a mirror's listing; making its row
    uses what it found: each mirror's page state is read once, and no lookup of rows by content
    follows the one that found none (statements counted on the database's read engine)."""
    async def body(services: Any, client: Client, upstream: FakeUpstream) -> None:
        files = await _page(client, services)
        mirrors = [r for r in await services.registry.names() if r.kind == "mirror"]
        statements: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        engine = services.repo.db._read.sync_engine  # noqa: SLF001 - the statements a request makes
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            wheel = files["lib-1.4-py3-none-any.whl"]
            path = httpx.URL("http://test/index/up/simple/lib/").join(wheel["url"]).path
            assert (await client.get(path + ".metadata")).status_code == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        states = [s for s in statements if "FROM mirror_pages" in s]
        by_content = [s for s in statements if "FROM files" in s and "files.sha256 =" in s]
        # "up" stored the page and keeps its listing: it answers without asking whether the page
        # was fetched again since; each other mirror's page state is read once.
        assert len(states) == len(mirrors) - 1, statements
        assert len(by_content) == 1, statements  # the access check's (it found no row)

    _run(tmp_path, body)


def test_a_file_of_a_page_another_process_stored_is_found_past_the_listing_kept_here(tmp_path: Path) -> None:
    """Another process (a worker, a replica) fetched the page again, and the upstream lists a new
    file and new bytes under an old name: the listing this process keeps has neither, so their
    URLs are looked up afresh, not refused."""
    async def body(services: Any, client: Client, upstream: FakeUpstream) -> None:
        await _page(client, services)
        mirror = await services.registry.get("up")
        new = UpFile("lib-2.0-py3-none-any.whl", wheel_bytes("lib", "2.0"))
        rebuilt = UpFile("lib-1.0-py3-none-any.whl", wheel_bytes("lib", "1.0", summary="rebuilt"))
        upstream.projects["lib"] = [f for f in upstream.projects["lib"] if f.filename != rebuilt.filename]
        upstream.add("lib", new, rebuilt)
        fetched = await mirror.client.fetch_project("lib")
        # as the other process stores it: this one's kept listing is not told
        await services.repo.store_mirror_page(mirror.id, "lib", listed_files(fetched.page.files), etag=None,
                                              last_modified=None, status="ok", fetched_at=datetime.now(UTC))
        for f in (new, rebuilt):
            got = await client.get(f"/files/sha256/{f.sha256}/{f.filename}")
            assert got.status_code == 200 and got.content == f.data, f.filename

    _run(tmp_path, body)
