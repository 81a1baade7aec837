"""Two replicas on one PostgreSQL (issue 14, acceptance 1), each test twice: with a shared blob
folder, and with an S3-compatible object store (moto's server on 127.0.0.1) where each replica
has a local spool of its own and nothing else in common; Debian's nginx balances over them:

- they learn of each other's changes through LISTEN/NOTIFY: with polling set to 30 s (so that
  only a notification can explain it), an upload on A lists on B, and a revoked token is refused
  by B, within a few seconds; after B's listening connection is killed it reconnects;
- 20 first requests for one mirror file through nginx, spread over both replicas, make one upstream download
  (with the object store: a PostgreSQL advisory lock per file, the other replica's clients get
  the bytes from the store once they are there);
- kill -9 of A mid-upload loses nothing A acknowledged, and B goes on (also behind nginx).

Without PostgreSQL these tests are skipped.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.test_mirror import eventually
from tests.support.dists import make_wheel
from tests.conftest import new_venv, run
from tests.support.nginx import Nginx
from tests.support.s3 import S3Server
from tests.support.server import PostgresDatabase, Server, clean_env, free_port
from tests.support.upload import upload

pytestmark = pytest.mark.postgres
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
SLOW_POLL = {"WHEELCAVE_DATABASE_POLL": "30s", "WHEELCAVE_DATABASE_POLL_WITH_NOTIFY": "60s"}
T = TypeVar("T")


def _within(probe: Callable[[], T], seconds: float = 5.0) -> T:
    """The probe's first truthy answer within ``seconds`` (far below the 30 s poll)."""
    return eventually(probe, seconds)


@pytest.fixture(params=["shared-folder", "object-store"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Server, PostgresDatabase]]:
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set WHEELCAVE_TEST_POSTGRES_URL")
    if request.param == "shared-folder":
        env = {**SLOW_POLL, "WHEELCAVE_STORAGE_PATH": str(tmp_path / "blobs")}
    else:
        s3: S3Server = request.getfixturevalue("s3")
        bucket = f"rp-{tmp_path.name.lower().replace('_', '-')[-40:]}"
        s3.client().create_bucket(Bucket=bucket)
        env = {**SLOW_POLL, **s3.env, "WHEELCAVE_STORAGE_URL": f"s3://{bucket}/blobs"}
    database = PostgresDatabase(PG_URL)
    database.create()
    a = Server(tmp_path / "a", database.url, extra_env=env).start()
    b = Server(tmp_path / "b", database.url, extra_env=env).start()
    try:
        yield a, b, database
    finally:
        a.stop()
        b.stop()
        database.drop()


@pytest.fixture
def balancer(replicas: tuple[Server, Server, PostgresDatabase], tmp_path: Path) -> Iterator[str]:
    """Debian's nginx on 127.0.0.1 as the load balancer in front of both replicas (round robin;
    a replica that fails is skipped for idempotent requests)."""
    a, b, _ = replicas
    port = free_port()
    nginx = Nginx(tmp_path / "nginx", f"""
    upstream replicas {{ server 127.0.0.1:{a.port} max_fails=1 fail_timeout=30s; server 127.0.0.1:{b.port} max_fails=1 fail_timeout=30s; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{ proxy_pass http://replicas; proxy_http_version 1.1; proxy_set_header Connection "";
                     proxy_set_header Host $http_host; proxy_buffering off; }}
    }}""")
    url = f"http://127.0.0.1:{port}"
    nginx.start(f"{url}/health")
    yield url
    nginx.stop()


def _versions(srv: Server, project: str) -> set[str]:
    answer = httpx.get(f"{srv.url}/simple/{project}/", headers=JSON)
    return set(answer.json()["versions"]) if answer.status_code == 200 else set()


def test_an_upload_on_one_replica_lists_on_the_other_at_once(replicas: tuple[Server, Server, PostgresDatabase],
                                                             tmp_path: Path) -> None:
    a, b, database = replicas
    auth = ("admin", a.admin_password)
    assert upload(f"{a.url}/legacy/", make_wheel(tmp_path, "rp-demo", "1.0"), auth=auth).status_code == 200
    assert _within(lambda: _versions(b, "rp-demo") == {"1.0"})
    # ... and installs through B (its bytes from the shared folder or bucket, not A's disk).
    env = clean_env({"PIP_CACHE_DIR": str(tmp_path / "pip-cache")})
    python = new_venv(tmp_path / "venv", env)
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url", f"{b.url}/simple/", "rp-demo"], env)
    run([str(python), "-c", "import rp_demo"], env)
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


def test_twenty_first_requests_over_both_replicas_make_one_download(
    replicas: tuple[Server, Server, PostgresDatabase], balancer: str,
) -> None:
    """20 clients ask for one uncached mirror file at once through nginx, which spreads them
    over both replicas: the upstream sends it once (a shared folder: its lock files; an object
    store: PostgreSQL's advisory lock, and the waiting replica reads the store)."""
    import concurrent.futures
    import hashlib
    import os

    from tests.e2e.test_mirror import mirror
    from tests.support.dists import wheel_bytes
    from tests.support.upstream import FakeUpstream, UpFile

    a, b, _ = replicas
    up = FakeUpstream()
    big = UpFile("rp_big-1.0-py3-none-any.whl", wheel_bytes("rp-big", "1.0", extra_files={"rp_big/blob.bin": os.urandom(30 * 2**20)}))
    up.add("rp-big", big)
    up.throttle = 60 * 2**20  # half a second: every client asks while it downloads
    up.start()
    try:
        mirror(a, up.url, "rp-up")
        assert _within(lambda: httpx.get(f"{b.url}/index/rp-up/simple/").status_code == 200)  # told by NOTIFY
        for srv in (a, b):  # each replica has the page (so every request below is a file request)
            assert httpx.get(f"{srv.url}/index/rp-up/simple/rp-big/", headers=JSON).status_code == 200
        base = f"{balancer}/index/rp-up/simple/"
        entry = httpx.get(f"{base}rp-big/", headers=JSON).json()["files"][0]
        url = str(httpx.URL(f"{base}rp-big/").join(entry["url"]))
        a.mark_log()
        b.mark_log()

        def fetch(i: int) -> str:
            return hashlib.sha256(httpx.get(url, timeout=120).content).hexdigest()

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            digests = list(pool.map(fetch, range(20)))
        assert digests == [big.sha256] * 20
        served = {srv.data_dir.name: sum(1 for r in srv.requests_since_mark() if r.endswith(big.filename)) for srv in (a, b)}
        assert sum(served.values()) == 20 and all(served.values()), served  # both replicas took some
        assert up.count(f"GET /files/{big.filename}") == 1, up.requests
    finally:
        up.stop()


def test_killing_a_replica_mid_upload_loses_nothing_acknowledged(
    replicas: tuple[Server, Server, PostgresDatabase], balancer: str, tmp_path: Path,
) -> None:
    """kill -9 of replica A while a client is still sending to it: what A acknowledged before is
    listed and served by B, the cut upload is nowhere, and B goes on taking uploads."""
    import hashlib
    import socket

    from tests.support.upload import form_for

    a, b, _ = replicas
    auth = ("admin", a.admin_password)
    done = [make_wheel(tmp_path, "rp-kept", f"1.{i}") for i in range(3)]
    for wheel in done:
        assert upload(f"{a.url}/legacy/", wheel, auth=auth).status_code == 200
    cut = make_wheel(tmp_path, "rp-cut", "1.0", extra_files={"rp_cut/pad.bin": os.urandom(4 * 2**20)})
    boundary = "rpboundary"
    fields = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                     for k, v in form_for(cut).items()).encode()
    head = fields + (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{cut.name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n").encode()
    body = head + cut.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    import base64

    creds = base64.b64encode(f"admin:{a.admin_password}".encode()).decode()
    request = (f"POST /legacy/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {creds}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", a.port)) as sock:
        sock.sendall(request + body[: len(body) // 2])  # half of it, then A dies
        a.kill9()
    page = httpx.get(f"{b.url}/simple/rp-kept/", headers=JSON).json()
    assert sorted(f["filename"] for f in page["files"]) == sorted(w.name for w in done)
    for f in page["files"]:
        got = httpx.get(httpx.URL(f"{b.url}/simple/rp-kept/").join(f["url"]))
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == f["hashes"]["sha256"]
    assert httpx.get(f"{b.url}/simple/rp-cut/", headers=JSON).status_code == 404
    more = make_wheel(tmp_path, "rp-kept", "2.0")
    assert upload(f"{b.url}/legacy/", more, auth=auth).status_code == 200
    # Through the load balancer every read still works: nginx takes A out and B answers.
    for _ in range(6):
        page = httpx.get(f"{balancer}/simple/rp-kept/", headers=JSON, timeout=30)
        assert page.status_code == 200 and len(page.json()["files"]) == 4
