"""``wheelcave serve --engine granian``: the same app under granian instead of uvicorn (issue 13:
measured in benchmarks/engines.py). Real clients against it, its bounds on request heads, TLS,
several workers, a clean stop; and the errors when the engine is unknown or not installed."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.support.dists import make_wheel
from tests.support.server import BIN, Server, clean_env
from tests.support.tls import make_certificate

GRANIAN = {"WHEELCAVE_SERVER_ENGINE": "granian"}


def _raw(url: str, head: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)
        return s.recv(200)


def test_clients_work_under_granian(tmp_path: Path, client_env: dict[str, str]) -> None:
    srv = Server(tmp_path / "data", extra_env=GRANIAN, workers=2).start()
    try:
        assert "Starting granian" in srv.log_path.read_text()
        wheel = make_wheel(tmp_path, "gr-demo", "1.0")
        run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
             f"{srv.url}/legacy/", "-u", "admin", "-p", srv.admin_password, str(wheel)], client_env)
        again = run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
                     f"{srv.url}/legacy/", "-u", "admin", "-p", "wrong", str(wheel)], client_env, check=False)
        said = again.stdout + again.stderr
        assert again.returncode != 0 and ("401" in said or "403" in said), said
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", "--index-url",
             f"{srv.url}/simple/", "gr-demo"], client_env)
        run([str(BIN / "uv"), "pip", "install", "--python", str(python), "--reinstall", "--index-url",
             f"{srv.url}/simple/", "gr-demo"], client_env)
        # Heads are bounded as under uvicorn: 64 KiB and 100 headers, then 431.
        assert b" 200 " in _raw(srv.url, b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 60_000 + b"\r\n\r\n")
        assert b" 431 " in _raw(srv.url, b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n")
        many = b"".join(b"X-H%d: 1\r\n" % i for i in range(150))
        assert b" 431 " in _raw(srv.url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        # A body larger than it says is never taken as an upload.
        bad = httpx.post(f"{srv.url}/legacy/", auth=("admin", srv.admin_password), content=b"x" * 1000,
                         headers={"content-type": "multipart/form-data; boundary=zz"})
        assert bad.status_code == 400
        assert srv.proc is not None
        srv.proc.terminate()
        assert srv.proc.wait(20) == 0  # a clean stop: the lifespan's shutdown ran
        srv.proc = None
    finally:
        srv.stop()


def test_granian_serves_https(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    tls = make_certificate(tmp_path / "tls")
    srv = Server(tmp_path / "data", extra_env=GRANIAN, tls=tls).start()
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(tls[0]))) as client:
            assert client.get(f"{srv.url}/simple/").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/simple/", verify=True)  # not a certificate the system trusts
    finally:
        srv.stop()


def test_an_engine_not_installed_or_unknown_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    (blocker / "granian").mkdir(parents=True)
    (blocker / "granian" / "__init__.py").write_text("raise ImportError('granian is not installed here')\n")
    env = clean_env({"PYTHONPATH": str(blocker)})
    missing = subprocess.run([str(BIN / "wheelcave"), "serve", "--engine", "granian", "--data-dir", str(tmp_path / "d")],
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: engine 'granian' needs the granian package: pip install 'wheelcave[granian]'"]
    assert not (tmp_path / "d").exists()  # nothing created
    unknown = subprocess.run([str(BIN / "wheelcave"), "serve", "--engine", "nginx; rm -rf /", "--data-dir",
                              str(tmp_path / "d")], env=clean_env(), capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: engine must be one of uvicorn, granian")
