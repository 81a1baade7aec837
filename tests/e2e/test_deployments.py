"""Deployment shapes: several worker processes, and a private index that needs credentials
to read."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.support.dists import make_wheel
from tests.support.server import Server
from tests.support.upload import upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_workers_see_each_others_uploads_within_a_second(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from tests.conftest import database_url_for

    srv = Server(tmp_path / "data", database_url_for(backend, request), workers=2).start()
    try:
        auth = ("admin", srv.admin_password)
        # Warm both workers' page caches with the 404 / the first version.
        first = make_wheel(tmp_path, "multi-worker", "1.0")
        assert upload(f"{srv.url}/legacy/", first, auth=auth).status_code == 200
        with httpx.Client() as client:
            for _ in range(20):
                assert client.get(f"{srv.url}/simple/multi-worker/", headers=JSON).status_code == 200
            for version in ("1.1", "1.2", "1.3"):
                new = make_wheel(tmp_path, "multi-worker", version)
                assert upload(f"{srv.url}/legacy/", new, auth=auth).status_code == 200
                uploaded = time.monotonic()
                time.sleep(1.0)
                # Every request now, whichever worker answers, lists the new file.
                for _ in range(20):
                    with httpx.Client() as fresh:  # new connections spread over the workers
                        names = {f["filename"] for f in fresh.get(f"{srv.url}/simple/multi-worker/", headers=JSON).json()["files"]}
                    assert new.name in names, f"missing {time.monotonic() - uploaded:.2f}s after the upload"
    finally:
        srv.stop()


def test_private_read(tmp_path: Path, client_env: dict[str, str]) -> None:
    srv = Server(tmp_path / "data", extra_env={"WHEELCAVE_AUTH_ANONYMOUS_READ": "false"}).start()
    try:
        auth = ("admin", srv.admin_password)
        whl = make_wheel(tmp_path, "private-pkg", "1.0")
        assert upload(f"{srv.url}/legacy/", whl, auth=auth).status_code == 200
        r = httpx.get(f"{srv.url}/simple/private-pkg/")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(f"{srv.url}/simple/missing/", auth=auth).status_code == 404  # never 403
        r = httpx.get(f"{srv.url}/simple/private-pkg/", auth=auth)
        assert r.status_code == 200 and "private" in r.headers["cache-control"]
        assert httpx.get(f"{srv.url}/health").status_code == 200
        token = srv.create_token()
        python = new_venv(tmp_path / "venv", client_env)
        index = f"http://__token__:{token}@127.0.0.1:{srv.port}/simple/"
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url", index, "private-pkg"], client_env)
        denied = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url",
                      f"{srv.url}/simple/", "private-pkg==9"], client_env, check=False)
        assert denied.returncode != 0
    finally:
        srv.stop()
