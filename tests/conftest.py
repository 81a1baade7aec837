"""Shared fixtures: servers on each database backend, tokens, and client environments.

PostgreSQL runs when WHEELCAVE_TEST_POSTGRES_URL is set; otherwise those tests are skipped
with a clear reason (and CI, which sets WHEELCAVE_TEST_REQUIRE_POSTGRES, fails instead).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.s3 import S3Server
from tests.support.server import BIN, PostgresDatabase, Server, clean_env
from tests.support.upstream import FakeUpstream

PG_URL = os.environ.get("WHEELCAVE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_report_header(config: pytest.Config) -> str:
    if PG_URL:
        return f"wheelcave: PostgreSQL tests ON ({PG_URL})"
    return "wheelcave: PostgreSQL tests SKIPPED (set WHEELCAVE_TEST_POSTGRES_URL to run them)"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("WHEELCAVE_TEST_REQUIRE_POSTGRES") and not PG_URL:
        raise pytest.UsageError("WHEELCAVE_TEST_REQUIRE_POSTGRES is set but WHEELCAVE_TEST_POSTGRES_URL is not")


@pytest.fixture(scope="session", autouse=True)
def empty_upstream() -> Iterator[FakeUpstream]:
    """Every test server's default ``pypi`` mirror points here: an index with no projects."""
    upstream = FakeUpstream().start()
    Server.default_upstream = upstream.url
    yield upstream
    upstream.stop()


def database_url_for(backend: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite (the server's default); a fresh PostgreSQL database otherwise."""
    if backend == "sqlite":
        return None
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set WHEELCAVE_TEST_POSTGRES_URL")
    db = PostgresDatabase(PG_URL)
    url = db.create()
    request.addfinalizer(db.drop)
    return url


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module and backend; tests use distinct project names."""
    url = database_url_for(backend, request)
    srv = Server(tmp_path_factory.mktemp(f"data-{backend}"), url).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: Server) -> tuple[str, str]:
    """The first-run administrator's credentials on the module's server."""
    return ("admin", server.admin_password)


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.create_token()


@pytest.fixture
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own, on SQLite (for tests that stop, kill or restart it)."""
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """An S3-compatible server on 127.0.0.1 for one test module (tests make their own buckets)."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    cache = tmp_path / "client-cache"
    return clean_env({"UV_CACHE_DIR": str(cache / "uv"), "PIP_CACHE_DIR": str(cache / "pip")})


def run(cmd: list[str], env: dict[str, str], *, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd[:3]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def new_venv(path: Path, env: dict[str, str]) -> Path:
    """A fresh, empty virtual environment (made by uv, in milliseconds); returns its python."""
    run([str(BIN / "uv"), "venv", "--quiet", "--python", sys.executable, str(path)], env)
    return path / "bin" / "python"
