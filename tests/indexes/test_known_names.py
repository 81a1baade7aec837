"""Names an index is known to lack cost no query (indexes/known.py): the class itself, and a cold
resolution through a virtual index over a hosted index and a mirror, in-process (httpx's ASGI
transport, real SQLite, the fake upstream on 127.0.0.1). The repository's two lookups are
wrapped to count their calls; the queries themselves run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_mirror import small_wheel
from tests.support.upstream import JSON_TYPE, FakeUpstream
from wheelcave.config import load_settings
from wheelcave.indexes.admin import IndexAdmin
from wheelcave.indexes.known import KnownNames
from wheelcave.web.app import create_app


def test_names_load_once_per_token_and_grow_with_adds() -> None:
    loads: list[int] = []

    async def load(limit: int) -> set[str] | None:
        loads.append(limit)
        return {"a", "b"}

    async def main() -> None:
        known = KnownNames(load, limit=3)
        assert await known.may_have("a", 1) and not await known.may_have("c", 1)
        assert loads == [3]
        known.add("c")
        assert await known.may_have("c", 1) and loads == [3]
        assert not await known.may_have("c", 2)  # a new token: read again (the add was this process's)
        assert loads == [3, 3]
        known.add("c")
        known.add("d")  # past the limit: nothing is ruled out any more
        assert await known.may_have("zzz", 2)
        assert await asyncio.gather(*(known.may_have(n, 3) for n in "abcdef")) == [True, True, False, False, False, False]
        assert loads == [3, 3, 3]  # concurrent first asks share one read

    asyncio.run(main())


def test_a_name_stored_while_the_names_are_read_is_kept() -> None:
    async def main() -> None:
        reading, release = asyncio.Event(), asyncio.Event()

        async def load(limit: int) -> set[str] | None:
            reading.set()
            await release.wait()
            return {"old"}  # read before "late" was stored

        known = KnownNames(load)
        first = asyncio.create_task(known.may_have("old"))
        await reading.wait()
        known.add("late")
        release.set()
        assert await first
        assert await known.may_have("late")

    asyncio.run(main())


def test_too_many_names_rule_out_nothing() -> None:
    async def load(limit: int) -> set[str] | None:
        return None  # the repository's answer when there are more than the limit

    async def main() -> None:
        known = KnownNames(load, limit=1)
        assert await known.may_have("anything")
        known.add("x")
        assert await known.may_have("anything-else")

    asyncio.run(main())


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    for name in ("cold-a", "cold-b", "cold-c"):
        up.add(name, small_wheel(name, "1.0"))
    up.start()
    yield up
    up.stop()


def test_a_cold_resolution_asks_the_database_nothing_about_new_names(tmp_path: Path, upstream: FakeUpstream) -> None:
    app = create_app(load_settings(tmp_path / "data", environ={}))

    async def main() -> None:
        async with app.router.lifespan_context(app):
            services = app.state.services
            admin = IndexAdmin(services.repo)
            await admin.create("up", "mirror", {"upstream": upstream.url})
            await admin.create("own", "hosted", {})
            await admin.create("team", "virtual", {"members": ["own", "up"]})
            await services.registry.reload()
            mirror = await services.registry.get("up")
            assert mirror.early_answers  # SQLite, one process: the names are trusted
            repo = services.repo
            asked: dict[str, list[str]] = {"page_entries": [], "mirror_page_state": []}
            # A page's files are read by page_entries (hosted) or mirror_page_entries (a mirror's
            # listing and rows): both count as reading the page.
            for method, log in [*asked.items(), ("mirror_page_entries", asked["page_entries"])]:
                real = getattr(repo, method)

                async def counted(index_id: int, project: str, *a: object, _real=real, _log=log, **k: object):
                    _log.append(project)
                    return await _real(index_id, project, *a, **k)

                setattr(repo, method, counted)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                pages = await asyncio.gather(*(
                    client.get(f"/index/team/simple/{name}/", headers={"Accept": JSON_TYPE}) for name in ("cold-a", "cold-b")))
                assert [len(p.json()["files"]) for p in pages] == [1, 1]
                assert asked == {"page_entries": [], "mirror_page_state": []}
                missing = await client.get("/index/team/simple/never-there/", headers={"Accept": JSON_TYPE})
                assert missing.status_code == 404
                assert asked == {"page_entries": ["never-there"], "mirror_page_state": []}  # the mirror's rows after the 404
                await mirror.drain()  # the early answers' rows are written
                # Stored now: a name the mirror has a page of is looked up as before (its state
                # decides between the rows and a revalidation); one it stored as missing too.
                services.registry.changes.changed("cold-a")  # past the page cache
                again = await client.get("/index/team/simple/cold-a/", headers={"Accept": JSON_TYPE})
                assert again.status_code == 200 and len(again.json()["files"]) == 1
                assert asked["mirror_page_state"] == ["cold-a"]
                await client.get("/index/team/simple/cold-c/", headers={"Accept": JSON_TYPE})
                assert asked["mirror_page_state"] == ["cold-a"]  # new again: no query
                assert asked["page_entries"] == ["never-there", "cold-a"]  # the hosted index knows it lacks all

    asyncio.run(main())
