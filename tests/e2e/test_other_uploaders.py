"""poetry, flit and hatch upload to wheelcave as they do to the public index (issue #2)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.support.server import BIN, Server, clean_env

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _run_in(cwd: Path, cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def listed(server: Server, project: str) -> set[str]:
    r = httpx.get(f"{server.url}/simple/{project}/", headers=JSON)
    return {f["filename"] for f in r.json()["files"]} if r.status_code == 200 else set()


def project_dir(tmp: Path, name: str, backend: str) -> Path:
    root = tmp / name
    pkg = root / name.replace("-", "_")
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f'"""{name}, made by the wheelcave tests."""\n__version__ = "1.0"\n')
    build_system = {
        "flit": 'requires = ["flit_core>=3.9"]\nbuild-backend = "flit_core.buildapi"',
        "hatch": 'requires = ["hatchling"]\nbuild-backend = "hatchling.build"',
        "poetry": 'requires = ["poetry-core>=2"]\nbuild-backend = "poetry.core.masonry.api"',
    }[backend]
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            name = "{name}"
            version = "1.0"
            description = "{name}, made by the wheelcave tests"
            authors = [{{name = "wheelcave tests"}}]
            requires-python = ">=3.8"
            """
        ) + f"\n[build-system]\n{build_system}\n"
    )
    (root / "README.md").write_text(f"# {name}\n")
    return root


@pytest.fixture
def tool_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return clean_env({
        "HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "POETRY_CONFIG_DIR": str(home / "poetry-config"), "POETRY_CACHE_DIR": str(home / "poetry-cache"),
        "POETRY_DATA_DIR": str(home / "poetry-data"), "HATCH_DATA_DIR": str(home / "hatch-data"),
        "HATCH_CACHE_DIR": str(home / "hatch-cache"),
    })


def test_flit_publish(server: Server, tmp_path: Path, tool_env: dict[str, str]) -> None:
    root = project_dir(tmp_path, "via-flit", "flit")
    env = {**tool_env, "FLIT_INDEX_URL": f"{server.url}/legacy/", "FLIT_USERNAME": "admin",
           "FLIT_PASSWORD": server.admin_password}
    result = _run_in(root, [str(BIN / "flit"), "publish"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert listed(server, "via-flit") == {"via_flit-1.0-py3-none-any.whl", "via_flit-1.0.tar.gz"}


def test_hatch_publish(server: Server, tmp_path: Path, tool_env: dict[str, str]) -> None:
    root = project_dir(tmp_path, "via-hatch", "hatch")
    result = _run_in(root, [str(BIN / "hatch"), "build"], tool_env)
    assert result.returncode == 0, result.stdout + result.stderr
    token = server.create_token()
    result = _run_in(root, [str(BIN / "hatch"), "publish", "-n", "-r", f"{server.url}/legacy/",
                            "-u", "__token__", "-a", token], tool_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert listed(server, "via-hatch") == {"via_hatch-1.0-py3-none-any.whl", "via_hatch-1.0.tar.gz"}


def test_poetry_publish(server: Server, tmp_path: Path, tool_env: dict[str, str]) -> None:
    root = project_dir(tmp_path, "via-poetry", "poetry")
    env = {**tool_env, "POETRY_REPOSITORIES_WHEELCAVE_URL": f"{server.url}/legacy/"}
    result = _run_in(root, [str(BIN / "poetry"), "build", "--no-interaction"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    args = [str(BIN / "poetry"), "publish", "--no-interaction", "-r", "wheelcave", "-u", "admin", "-p", server.admin_password]
    result = _run_in(root, args, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert listed(server, "via-poetry") == {"via_poetry-1.0-py3-none-any.whl", "via_poetry-1.0.tar.gz"}
    # poetry --skip-existing understands our 200 for identical bytes (and 409 for others).
    again = _run_in(root, [*args, "--skip-existing"], env)
    assert again.returncode == 0, again.stdout + again.stderr
