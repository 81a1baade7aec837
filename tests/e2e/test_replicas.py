"""Replicas on one PostgreSQL learn of each other's changes through LISTEN/NOTIFY (issue 14): with
polling set to 30 s (so that only a notification can explain it), an upload on replica A lists on
replica B, and a revoked token is refused by B, within a few seconds; after B's listening
connection is killed it reconnects and goes on. Without PostgreSQL these tests are skipped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.dists import make_wheel
from tests.support.server import PostgresDatabase, Server
from tests.support.upload import upload

pytestmark = pytest.mark.postgres
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
SLOW_POLL = {"WHEELCAVE_DATABASE_POLL": "30s", "WHEELCAVE_DATABASE_POLL_WITH_NOTIFY": "60s"}
T = TypeVar("T")


def _within(probe: Callable[[], T], seconds: float = 5.0) -> T:
    """The probe's first truthy answer within ``seconds`` (far below the 30 s poll)."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Server, Server, PostgresDatabase]]:
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set WHEELCAVE_TEST_POSTGRES_URL")
    database = PostgresDatabase(PG_URL)
    database.create()
    env = {**SLOW_POLL, "WHEELCAVE_STORAGE_PATH": str(tmp_path / "blobs")}
    a = Server(tmp_path / "a", database.url, extra_env=env).start()
    b = Server(tmp_path / "b", database.url, extra_env=env).start()
    try:
        yield a, b, database
    finally:
        a.stop()
        b.stop()
        database.drop()


def _versions(srv: Server, project: str) -> set[str]:
    answer = httpx.get(f"{srv.url}/simple/{project}/", headers=JSON)
    return set(answer.json()["versions"]) if answer.status_code == 200 else set()


def test_an_upload_on_one_replica_lists_on_the_other_at_once(replicas: tuple[Server, Server, PostgresDatabase],
                                                             tmp_path: Path) -> None:
    a, b, database = replicas
    auth = ("admin", a.admin_password)
    assert upload(f"{a.url}/legacy/", make_wheel(tmp_path, "rp-demo", "1.0"), auth=auth).status_code == 200
    assert _within(lambda: _versions(b, "rp-demo") == {"1.0"})
    for _ in range(5):
        assert _versions(b, "rp-demo") == {"1.0"}  # B's cached page, kept while nothing changes
    assert upload(f"{a.url}/legacy/", make_wheel(tmp_path, "rp-demo", "1.1"), auth=auth).status_code == 200
    assert _within(lambda: _versions(b, "rp-demo") == {"1.0", "1.1"}), _versions(b, "rp-demo")

    # B's listening connection dies: it reconnects, and what changed meanwhile still shows.
    async def kill_listeners() -> int:
        import asyncpg

        conn = await asyncpg.connect(make_url(database.url).set(drivername="postgresql").render_as_string(False))
        try:
            return int(await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"))
        finally:
            await conn.close()

    killed = asyncio.run(kill_listeners())
    assert killed >= 2  # A's and B's
    assert upload(f"{a.url}/legacy/", make_wheel(tmp_path, "rp-demo", "1.2"), auth=auth).status_code == 200
    assert _within(lambda: _versions(b, "rp-demo") == {"1.0", "1.1", "1.2"}, 10), _versions(b, "rp-demo")
    assert "notify.disconnected" in b.log_path.read_text()


def test_a_revoked_token_is_refused_by_the_other_replica_at_once(replicas: tuple[Server, Server, PostgresDatabase]) -> None:
    a, b, _ = replicas
    token = a.create_token()
    api = "/api/v1/whoami"
    assert httpx.get(f"{b.url}{api}", auth=("__token__", token)).json()["name"] == "admin"  # B remembers it
    listed = httpx.get(f"{a.url}/api/v1/tokens", auth=("admin", a.admin_password)).json()
    for t in listed:
        assert httpx.delete(f"{a.url}/api/v1/tokens/{t['id']}", auth=("admin", a.admin_password)).status_code == 204
    assert _within(lambda: httpx.get(f"{b.url}{api}", auth=("__token__", token)).status_code == 401)
