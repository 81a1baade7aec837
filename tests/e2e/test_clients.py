"""Real clients against a real server: twine and uv publish upload, pip and uv install
(issue #2 acceptance 2, 3 and the --check-url part of 4), on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import new_venv, run
from tests.support.dists import build_with_hatchling, make_sdist
from tests.support.server import BIN, Server


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """wc-alpha: a pure wheel (hatchling); wc-beta: an sdist only (in-tree backend);
    wc-gamma: a wheel needing both, with Requires-Python; wc-delta: a wheel needing wc-alpha."""
    tmp = tmp_path_factory.mktemp("dists")
    return {
        "alpha": build_with_hatchling(tmp, "wc-alpha", "1.0"),
        "beta": make_sdist(tmp, "wc-beta", "1.0", summary="an sdist"),
        "gamma": build_with_hatchling(
            tmp, "wc-gamma", "2.0", dependencies=["wc-alpha>=1.0", "wc-beta==1.0"],
            requires_python=">=3.8",
        ),
        "delta": build_with_hatchling(tmp, "wc-delta", "0.1", dependencies=["wc-alpha"]),
    }


@pytest.fixture(scope="module")
def published(server: Server, dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.support.server import clean_env

    env = clean_env({"UV_CACHE_DIR": str(tmp_path_factory.mktemp("uv-cache"))})
    password = server.admin_password
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", f"{server.url}/legacy/", "-u", "admin", "-p", password,
         str(dists["alpha"]), str(dists["beta"])], env)
    token = server.create_token()
    run([str(BIN / "uv"), "publish", "--publish-url", f"{server.url}/legacy/",
         "--username", "__token__", "--password", token,
         str(dists["gamma"]), str(dists["delta"])], env)
    return dists


def installed(python: Path, env: dict[str, str]) -> dict[str, str]:
    out = run([str(BIN / "uv"), "pip", "list", "--python", str(python), "--format", "freeze"], env).stdout
    return dict(line.split("==") for line in out.split() if "==" in line)


def test_pip_installs_with_dependencies(server: Server, published: dict[str, Path], client_env: dict[str, str], tmp_path: Path) -> None:
    python = new_venv(tmp_path / "venv", client_env)
    run([sys.executable, "-m", "pip", "--python", str(python), "install",
         "--index-url", f"{server.url}/simple/", "wc-gamma"], client_env)
    assert installed(python, client_env) == {"wc-alpha": "1.0", "wc-beta": "1.0", "wc-gamma": "2.0"}
    run([str(python), "-c", "import wc_alpha, wc_beta, wc_gamma"], client_env)


def test_uv_installs_with_dependencies(server: Server, published: dict[str, Path], client_env: dict[str, str], tmp_path: Path) -> None:
    python = new_venv(tmp_path / "venv", client_env)
    run([str(BIN / "uv"), "pip", "install", "--python", str(python),
         "--index-url", f"{server.url}/simple/", "wc-gamma"], client_env)
    assert installed(python, client_env) == {"wc-alpha": "1.0", "wc-beta": "1.0", "wc-gamma": "2.0"}
    run([str(python), "-c", "import wc_alpha, wc_beta, wc_gamma"], client_env)


def test_pip_dry_run_reads_metadata_not_wheels(server: Server, published: dict[str, Path], client_env: dict[str, str], tmp_path: Path) -> None:
    python = new_venv(tmp_path / "venv", client_env)
    server.mark_log()
    result = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run",
                  "--no-cache-dir", "--index-url", f"{server.url}/simple/", "wc-delta"], client_env)
    assert "Would install wc-alpha-1.0 wc-delta-0.1" in result.stdout
    requests = server.requests_since_mark()
    assert "GET /simple/wc-delta/" in requests
    assert "GET /simple/wc-alpha/" in requests
    metadata = [r for r in requests if r.endswith(".whl.metadata")]
    assert len(metadata) == 2, requests
    assert not [r for r in requests if r.endswith(".whl")], requests


def test_uv_publish_check_url_skips_existing(server: Server, published: dict[str, Path], client_env: dict[str, str]) -> None:
    server.mark_log()
    result = run([str(BIN / "uv"), "publish", "--publish-url", f"{server.url}/legacy/",
                  "--check-url", f"{server.url}/simple/", "--username", "admin",
                  "--password", server.admin_password, str(published["gamma"])], client_env)
    assert "already exists" in (result.stdout + result.stderr).lower()
    assert not [r for r in server.requests_since_mark() if r.startswith("POST")]


def test_twine_reupload_identical_ok_and_changed_409(server: Server, published: dict[str, Path], client_env: dict[str, str], tmp_path: Path) -> None:
    args = [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
            "--repository-url", f"{server.url}/legacy/", "-u", "admin", "-p", server.admin_password]
    run([*args, str(published["alpha"])], client_env)
    changed = tmp_path / published["beta"].name
    changed.write_bytes(make_sdist(tmp_path / "..", "wc-beta", "1.0", summary="changed").read_bytes())
    result = run([*args, str(changed)], client_env, check=False)
    assert result.returncode != 0
    assert "409" in result.stdout + result.stderr
    assert "File already exists: wc_beta-1.0.tar.gz" in result.stdout + result.stderr
