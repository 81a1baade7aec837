"""Issue 11: ``wheelcave export``: the static tree served by Debian's nginx (with the config
the export generates) and by a plain file server installs with pip and uv, by JSON and by
HTML, and pypi-simple parses both; a second export after one upload rewrites only that
project's files; the same export into an S3-compatible server installs from there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pypi_simple
import pytest

from tests.conftest import new_venv, run
from tests.support.dists import make_sdist, make_wheel
from tests.support.nginx import Nginx
from tests.support.s3 import S3Server
from tests.support.server import BIN, Server, free_port

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


@pytest.fixture
def filled(fresh_server: Server, tmp_path: Path) -> Server:
    dists = tmp_path / "dists"
    dists.mkdir()
    make_wheel(dists, "exp-a", "1.0", summary="the a")
    make_sdist(dists, "exp-a", "1.0")
    make_wheel(dists, "exp-b", "1.0", requires_dist=["exp-a>=1"], requires_python=">=3.8")
    make_wheel(dists, "exp-b", "0.9")
    fresh_server.cli("index", "create", "exp", "--kind", "hosted")
    fresh_server.cli("import", "exp", str(dists))
    fresh_server.cli("yank", "exp", "exp-b", "0.9", "--reason", "do not use")
    return fresh_server


def install(tool: str, tmp: Path, env: dict[str, str], *source: str) -> str:
    python = new_venv(tmp, env)
    if tool == "pip":
        cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", *source, "exp-b"]
    else:
        cmd = [str(BIN / "uv"), "pip", "install", "--python", str(python), "--no-cache", *source, "exp-b"]
    run(cmd, env)
    return run([str(python), "-c", "import importlib.metadata as m; print(m.version('exp-a'), m.version('exp-b'))"], env).stdout.strip()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_ino) for p in root.rglob("*") if p.is_file()}


def test_export_served_by_nginx_and_rebuilt_in_part(filled: Server, tmp_path: Path, client_env: dict[str, str]) -> None:
    tree = tmp_path / "tree"
    port = free_port()
    out = filled.cli("export", "exp", "-o", str(tree), "--nginx-listen", f"127.0.0.1:{port}")
    assert "2 projects written" in out.stderr
    nginx = Nginx(tmp_path / "nginx", f"    include {tree}/nginx.conf;").start(f"http://127.0.0.1:{port}/simple/")
    try:
        base = f"http://127.0.0.1:{port}/simple/"
        as_json = httpx.get(f"{base}exp-b/", headers={"Accept": PIP_ACCEPT})
        assert as_json.headers["content-type"] == "application/vnd.pypi.simple.v1+json"
        assert as_json.headers["vary"] == "Accept"
        as_html = httpx.get(f"{base}exp-b/", headers={"Accept": "text/html"})
        assert as_html.headers["content-type"].startswith("text/html") and "<a href" in as_html.text
        for accept in (pypi_simple.ACCEPT_JSON_ONLY, pypi_simple.ACCEPT_HTML_ONLY):
            with pypi_simple.PyPISimple(base, accept=accept) as client:
                page = client.get_project_page("exp-b")
                assert sorted(p.filename for p in page.packages) == ["exp_b-0.9-py3-none-any.whl", "exp_b-1.0-py3-none-any.whl"]
                yanked = {p.filename: p.yanked_reason for p in page.packages}
                assert yanked["exp_b-0.9-py3-none-any.whl"] == "do not use"
                assert all(p.has_metadata for p in page.packages)
                assert list(client.get_index_page().projects) == ["exp-a", "exp-b"]
        assert install("pip", tmp_path / "v1", client_env, "--index-url", base) == "1.0 1.0"
        assert install("uv", tmp_path / "v2", client_env, "--index-url", base) == "1.0 1.0"
        assert httpx.get(f"http://127.0.0.1:{port}/pypi/exp-a/json").json()["info"]["summary"] == "the a"
        assert httpx.get(f"http://127.0.0.1:{port}/nginx.conf").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{port}/.wheelcave-export.json").status_code == 404
        lines = httpx.get(f"http://127.0.0.1:{port}/packages.json").text.splitlines()
        assert len(lines) == 4

        # One upload, then a second export: only that project's files are written.
        before = snapshot(tree)
        new = make_wheel(tmp_path, "exp-a", "2.0")
        filled.cli("import", "exp", str(new))
        again = filled.cli("export", "exp", "-o", str(tree), "--nginx-listen", f"127.0.0.1:{port}")
        assert "1 projects written, 1 unchanged" in again.stderr
        after = snapshot(tree)
        changed = sorted(p for p in after if before.get(p) != after[p])
        sha_dir = next(p.split("/")[2] for p in changed if p.endswith("exp_a-2.0-py3-none-any.whl"))
        assert changed == sorted([
            ".wheelcave-export.json", "links.html", "packages.json",
            f"files/sha256/{sha_dir}/exp_a-2.0-py3-none-any.whl", f"files/sha256/{sha_dir}/exp_a-2.0-py3-none-any.whl.metadata",
            "pypi/exp-a/json", "pypi/exp-a/1.0/json", "pypi/exp-a/2.0/json",
            "simple/exp-a/index.html", "simple/exp-a/index.json",
        ])
        assert install("pip", tmp_path / "v3", client_env, "--index-url", base) == "2.0 1.0"
    finally:
        nginx.stop()


def test_export_by_html_only_and_links(filled: Server, tmp_path: Path, client_env: dict[str, str]) -> None:
    """A file server that knows nothing of Accept (python -m http.server serves index.html):
    pip and uv install by HTML; --files link hard-links from the blob store."""
    tree = tmp_path / "tree"
    filled.cli("export", "exp", "-o", str(tree), "--files", "link")
    wheel = next(tree.glob("files/sha256/*/exp_a-1.0-py3-none-any.whl"))
    assert wheel.stat().st_nlink == 2  # the blob store's copy and this one
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tree)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/simple/"
        for _ in range(200):
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.TransportError:
                subprocess.run(["sleep", "0.05"])
        assert httpx.get(f"{base}exp-a/", headers={"Accept": PIP_ACCEPT}).headers["content-type"].startswith("text/html")
        assert install("pip", tmp_path / "v1", client_env, "--index-url", base) == "1.0 1.0"
        assert install("uv", tmp_path / "v2", client_env, "--index-url", base) == "1.0 1.0"
    finally:
        proc.terminate()
        proc.wait()


def test_export_to_an_s3_compatible_server(filled: Server, tmp_path: Path, client_env: dict[str, str], s3: S3Server) -> None:
    s3.public_bucket("wheels")
    env = {**filled.env, **s3.env}
    result = subprocess.run([str(BIN / "wheelcave"), "export", "exp", "-o", "s3://wheels/team", "--data-dir", str(filled.data_dir)],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket="wheels")["Contents"])
    assert "team/simple/exp-b/index.json" in keys and "team/links.html" in keys
    page = httpx.get(f"{s3.url}/wheels/team/simple/exp-b/index.json")
    assert page.headers["content-type"] == "application/vnd.pypi.simple.v1+json"
    links = f"{s3.url}/wheels/team/links.html"
    assert install("pip", tmp_path / "v1", client_env, "--no-index", "--find-links", links) == "1.0 1.0"
    assert install("uv", tmp_path / "v2", client_env, "--no-index", "--find-links", links) == "1.0 1.0"
    # A second run against the bucket reads its state back and writes nothing.
    again = subprocess.run([str(BIN / "wheelcave"), "export", "exp", "-o", "s3://wheels/team", "--data-dir", str(filled.data_dir)],
                           env=env, capture_output=True, text=True)
    assert "0 projects written, 2 unchanged" in again.stderr, again.stderr


def test_export_refuses_bad_options(filled: Server, tmp_path: Path) -> None:
    for args, message in (
        (["nope", "-o", str(tmp_path / "t")], "No index named 'nope'"),
        (["exp", "-o", str(tmp_path / "t"), "--files", "move"], "use copy, link or url=BASE"),
        (["exp", "-o", str(tmp_path / "t"), "--files", "url=ftp://x/"], "BASE must be an http(s) URL"),
        (["exp", "-o", "s3://wheels/x", "--files", "link"], "--files link needs a folder output"),
        (["exp", "-o", "ftp://host/x"], "a folder or s3://"),
    ):
        result = filled.cli("export", *args, check=False)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)


def test_export_watch_follows_changes(filled: Server, tmp_path: Path) -> None:
    """--watch rewrites the tree after an upload and after a yank (polling the index)."""
    import time

    tree = tmp_path / "tree"
    proc = subprocess.Popen([str(BIN / "wheelcave"), "export", "exp", "-o", str(tree), "--watch", "--interval", "0.1",
                             "--data-dir", str(filled.data_dir)], env=filled.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_for(check: object) -> None:
        for _ in range(600):  # polls: at most 60 s
            if check():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise AssertionError("the watched export never caught up")

    try:
        page = tree / "simple" / "exp-a" / "index.json"
        wait_for(page.exists)
        filled.cli("import", "exp", str(make_wheel(tmp_path, "exp-a", "3.0")))
        wait_for(lambda: "exp_a-3.0-py3-none-any.whl" in page.read_text())
        filled.cli("yank", "exp", "exp-a", "3.0", "--reason", "oops")
        wait_for(lambda: '"yanked":"oops"' in page.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
