"""Issue 10, defect 7: writes racing each other get the right answer on both databases (the
PostgreSQL runs are where they failed: a 409 for a file stored then deleted, 500s for
concurrent promotions, two replicas first-fetching one mirror project)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import database_url_for
from tests.support.dists import make_wheel, wheel_bytes
from tests.support.server import Server, ok
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def test_uploads_racing_deletes_of_their_project(server: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    """An upload racing a delete of its project: always stored (never "already exists")."""
    api = f"{server.url}/api/v1"
    ok(httpx.post(f"{api}/indexes", json={"name": "race-h", "kind": "hosted", "config": {"immutable": False}}, auth=admin))
    wheels = [make_wheel(tmp_path, "race-proj", f"1.{i}") for i in range(12)]
    assert upload(f"{server.url}/index/race-h/", wheels[0], auth=admin).status_code == 200
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for wheel in wheels[1:]:
            up = pool.submit(upload, f"{server.url}/index/race-h/", wheel, auth=admin)
            gone = pool.submit(httpx.delete, f"{api}/indexes/race-h/projects/race-proj", auth=admin)
            assert up.result().status_code == 200, up.result().text  # never "already exists"
            assert gone.result().status_code in (200, 404), gone.result().text


def test_concurrent_promotions(server: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    """Six promotions of one release at once: all 200, listed once (were 500s)."""
    api = f"{server.url}/api/v1"
    for name in ("race-dev", "race-prod"):
        ok(httpx.post(f"{api}/indexes", json={"name": name, "kind": "hosted"}, auth=admin))
    for version in ("1.0", "2.0"):
        assert upload(f"{server.url}/index/race-dev/", make_wheel(tmp_path, "race-promo", version), auth=admin).status_code == 200
    body = {"project": "race-promo", "version": "1.0", "source": "race-dev", "target": "race-prod"}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: httpx.post(f"{api}/promote", json=body, auth=admin, timeout=30), range(6)))
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert sorted(f for r in answers for f in r.json()["files"]) == ["race_promo-1.0-py3-none-any.whl"]
    listed = ok(httpx.get(f"{api}/indexes/race-prod/projects/race-promo", auth=admin)).json()["files"]
    assert [f["filename"] for f in listed] == ["race_promo-1.0-py3-none-any.whl"]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


@pytest.mark.postgres
def test_two_replicas_first_fetching_one_mirror_project(request: pytest.FixtureRequest, tmp_path: Path,
                                                        upstream: FakeUpstream) -> None:
    """Two replicas on one PostgreSQL first-fetching one mirror project: both answer 200."""
    url = database_url_for("postgres", request)
    files = [UpFile(f"race_mirror-{i}.0-py3-none-any.whl", wheel_bytes("race-mirror", f"{i}.0")) for i in range(300)]
    upstream.add("race-mirror", *files)
    env = {"PIP_INDEX_URL": upstream.url}
    a = Server(tmp_path / "a", url, extra_env=env).start()
    b = Server(tmp_path / "b", url, extra_env=env).start()
    try:
        upstream.delay = 0.3  # both ask before either has stored the page
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda srv: httpx.get(f"{srv.url}/index/pypi/simple/race-mirror/", headers=JSON, timeout=60),
                                    [a, b, a, b]))
        assert [r.status_code for r in answers] == [200] * 4, [r.text[:200] for r in answers]
        assert all(len(r.json()["files"]) == 300 for r in answers)
    finally:
        a.stop()
        b.stop()


@pytest.mark.postgres
def test_an_upload_whose_file_is_deleted_before_it_answers(request: pytest.FixtureRequest, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The first test's race with its interleaving pinned (in-process app on PostgreSQL, the
    delete made by a second connection as another replica would): the upload's row is
    committed, then a delete of the project commits, then the upload reads its row back. That
    is not "File already exists" (it was a 409): the name is free again (no tombstone on a
    mutable index), so the upload stores it again and answers 200. The pause is a wrapper
    around the read-back (``Repository.find_file``: the first read that finds the row)."""
    import asyncio

    from wheelcave.config import load_settings
    from wheelcave.db.engine import Database
    from wheelcave.db.repository import Repository
    from wheelcave.web.app import create_app

    url = database_url_for("postgres", request)
    app = create_app(load_settings(tmp_path / "data", environ={}, overrides={"database_url": url}))
    wheel = make_wheel(tmp_path, "race-pin", "1.0")

    async def main() -> httpx.Response:
        async with app.router.lifespan_context(app):
            password = await app.state.services.auth.ensure_initial_admin()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", auth=("admin", password)) as client:
                ok(await client.post("/api/v1/indexes", json={"name": "pin", "kind": "hosted", "config": {"immutable": False}}))
                index_id = (await app.state.services.repo.find_index("pin")).id
                replica = Repository(Database(url))
                reached, resume = asyncio.Event(), asyncio.Event()
                find_file = Repository.find_file

                async def pausing(self: Repository, index: int, filename: str) -> object:
                    found = await find_file(self, index, filename)
                    if found is not None and filename == wheel.name and not reached.is_set():
                        reached.set()  # the first read that finds the row: the upload's read-back
                        await resume.wait()
                        return await find_file(self, index, filename)
                    return found

                monkeypatch.setattr(Repository, "find_file", pausing)
                from tests.support.upload import form_for

                sent = asyncio.create_task(client.post(
                    "/index/pin/", data=form_for(wheel), files={"content": (wheel.name, wheel.read_bytes())}))
                await reached.wait()  # the upload's row is committed; it has not read it back
                deleted = await replica.delete_files(index_id, "race-pin", None, None, {"actor": "t", "action": "project.delete"})
                assert deleted == [wheel.name]
                resume.set()
                answer = await sent
                await replica.db.dispose()
                listed = ok(await client.get("/api/v1/indexes/pin/projects/race-pin")).json()["files"]
                assert [f["filename"] for f in listed] == [wheel.name]
                return answer

    answer = asyncio.run(main())
    assert answer.status_code == 200, answer.text
