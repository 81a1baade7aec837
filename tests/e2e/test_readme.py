"""The README, followed as a newcomer would (issue 12): every ``sh`` block, in order, in one bash.

What the test changes, and nothing else:

- The port: ``127.0.0.1:8080`` becomes a free port (8080 may be taken on the machine).
- ``scripts/serve`` runs in the background (a reader gives it its own terminal); a later
  ``scripts/serve`` replaces the running one. The next line waits until ``/health`` answers.
- ``scripts/test`` is skipped: it is what runs this test.

What the test provides, as a reader's machine would: "the public index" is a small upstream
on 127.0.0.1 (pip's ``PIP_INDEX_URL`` names it, so the server's ``pypi`` mirror follows it)
holding ``requests`` and ``flask``; the bucket of the S3 export is an S3-compatible server
on 127.0.0.1 (``AWS_*`` variables). The blocks run in a scratch folder that links the
checkout's ``scripts``, ``pyproject.toml`` and ``.venv`` and holds a copy of ``examples``, so
``wheelcave-data`` and every file the README makes land there, not in the checkout.

The bash runs with ``set -euo pipefail``: any command that fails fails the test, with the
output so far. Afterwards the test checks a few outcomes, so a README whose blocks went
missing cannot pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dists import wheel_bytes
from tests.support.s3 import S3Server
from tests.support.server import clean_env, free_port
from tests.support.upstream import FakeUpstream, UpFile

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def shell_blocks(text: str) -> list[str]:
    """The ``sh`` fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)


def test_shell_blocks_are_found() -> None:
    blocks = shell_blocks("x\n```sh\necho a\n```\n```text\nno\n```\n```sh\necho b\necho c\n```\n")
    assert blocks == ["echo a\n", "echo b\necho c\n"]


def script_for(blocks: list[str], port: int) -> str:
    """One bash script: the blocks in order, with the changes the module docstring lists."""
    out = ["set -euo pipefail", "_serve_pid=''"]
    for number, block in enumerate(blocks, 1):
        out.append(f"echo \"::: README block {number} at $SECONDS s\" >&2")
        for line in block.replace("127.0.0.1:8080", f"127.0.0.1:{port}").splitlines():
            command = line.strip()
            if command.startswith("scripts/test"):
                continue
            if command.startswith("scripts/serve"):
                args = command.split("#", 1)[0].removeprefix("scripts/serve").strip()
                out.append(
                    'if [ -n "$_serve_pid" ]; then kill "$_serve_pid"; wait "$_serve_pid" || true; fi\n'
                    f"scripts/serve --port {port} {args} >>serve.log 2>&1 &\n"
                    '_serve_pid=$!; echo "$_serve_pid" > serve.pid\n'
                    "for _ in $(seq 1 600); do\n"
                    f"  curl -fsS -o /dev/null http://127.0.0.1:{port}/health && break\n"
                    '  kill -0 "$_serve_pid" || { cat serve.log >&2; exit 1; }\n'
                    "  sleep 0.1\n"
                    "done"
                )
                continue
            out.append(line)
    out.append("echo '::: README done' >&2")
    return "\n".join(out) + "\n"


def test_script_rewrites_serve_and_skips_test() -> None:
    script = script_for(["scripts/serve     # start\nscripts/test  # all\ncurl http://127.0.0.1:8080/x\n"], 5555)
    assert "scripts/serve --port 5555" in script
    assert "scripts/test" not in script
    assert "curl http://127.0.0.1:5555/x" in script


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    for name, versions in {"requests": ["2.31.0", "2.32.3"], "flask": ["3.1.0"]}.items():
        for version in versions:
            meta = dict(summary=f"{name}, as the README's upstream holds it", requires_python=">=3.8")
            data = wheel_bytes(name, version, **meta)  # type: ignore[arg-type]
            up.add(name, UpFile(f"{name}-{version}-py3-none-any.whl", data, requires_python=">=3.8"))
    up.start()
    yield up
    up.stop()


@pytest.fixture
def s3() -> Iterator[S3Server]:
    server = S3Server().start()
    server.public_bucket("bucket")
    yield server
    server.stop()


def _scratch(tmp_path: Path) -> Path:
    work = tmp_path / "checkout"
    work.mkdir()
    venv = Path(sys.prefix)
    if not list(venv.glob(".wheelcave-install-*-test")):
        pytest.fail(f"{venv} was not set up by scripts/test (no install stamp): run the suite with scripts/test")
    (work / "scripts").symlink_to(ROOT / "scripts")
    (work / "pyproject.toml").symlink_to(ROOT / "pyproject.toml")
    (work / ".venv").symlink_to(venv)
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("dist", "__pycache__"))
    return work


def test_every_readme_shell_block_runs(tmp_path: Path, upstream: FakeUpstream, s3: S3Server) -> None:
    blocks = shell_blocks(README.read_text())
    assert len(blocks) >= 10, "the README lost its shell blocks"
    work = _scratch(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    script = script_for(blocks, port)
    (work / "readme.sh").write_text(script)
    env = clean_env({
        "HOME": str(home), "PIP_INDEX_URL": upstream.url, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "PATH": os.environ["PATH"], **s3.env,
    })
    env.pop("VIRTUAL_ENV", None)
    try:
        result = subprocess.run(["bash", "readme.sh"], cwd=work, env=env, capture_output=True, text=True,
                                timeout=900)
        report = f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-12000:]}"
        assert result.returncode == 0, report
        assert "::: README done" in result.stderr, report
        base = f"http://127.0.0.1:{port}"
        # What the blocks did is there: the promoted release, the air-gapped copy, the export.
        prod = httpx.get(f"{base}/index/prod/simple/hello-wheelcave/", headers=JSON).json()
        assert {f["filename"] for f in prod["files"]} == {
            "hello_wheelcave-0.1.0-py3-none-any.whl", "hello_wheelcave-0.1.0.tar.gz"}
        airgap_projects = httpx.get(f"{base}/index/airgap/simple/", headers=JSON).json()["projects"]
        assert {p["name"] for p in airgap_projects} == {"hello-wheelcave", "requests", "flask"}
        assert (work / "pypi-site" / "nginx.conf").is_file()
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="bucket").get("Contents", [])]
        assert "pypi/links.html" in keys
        assert "hello from a package served by wheelcave" in result.stdout
        assert upstream.count("GET /simple/requests/") >= 1
        assert '"events":["upload","yank"]' in result.stdout and '"secret":' in result.stdout  # the webhook, made
        manifest = json.loads((work / "backups" / "today" / "manifest.json").read_text())
        assert manifest["database"] == "sqlite" and manifest["blobs"]
        assert (work / "restored-data" / "wheelcave.db").is_file()
    finally:
        pid_file = work / "serve.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
