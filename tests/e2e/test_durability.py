"""Restarts and crashes (issue #2 acceptance 7): nothing committed is lost, nothing half-done
becomes visible."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.dists import make_wheel, wheel_bytes
from tests.support.server import Server
from tests.support.upload import form_for, upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def test_restart_keeps_everything(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    password = srv.admin_password
    token = srv.create_token()
    whl = make_wheel(tmp_path, "keep-me", "1.0")
    assert upload(f"{srv.url}/legacy/", whl, auth=("admin", password)).status_code == 200
    page = httpx.get(f"{srv.url}/simple/keep-me/", headers=JSON).json()
    srv.restart()
    assert srv.admin_password == password  # no second admin, no new password
    assert httpx.get(f"{srv.url}/simple/keep-me/", headers=JSON).json() == page
    file_url = httpx.URL(f"{srv.url}/simple/keep-me/").join(page["files"][0]["url"])
    assert httpx.get(file_url).content == whl.read_bytes()
    again = make_wheel(tmp_path, "keep-me", "1.1")
    assert upload(f"{srv.url}/legacy/", again, auth=("__token__", token)).status_code == 200


def _slow_body(head: bytes, payload: bytes, tail: bytes, started: threading.Event) -> Iterator[bytes]:
    yield head
    for i in range(0, len(payload), 64 * 1024):
        yield payload[i : i + 64 * 1024]
        if i >= 1 * 2**20:
            started.set()
            time.sleep(0.05)
    yield tail


def test_kill_9_during_upload_leaves_no_trace(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    auth = ("admin", srv.admin_password)
    # A real wheel padded with 8 MiB of incompressible data, sent slowly.
    data = wheel_bytes("crash-me", "1.0", extra_files={"crash_me/blob.bin": os.urandom(8 * 2**20)})
    path = tmp_path / "crash_me-1.0-py3-none-any.whl"
    path.write_bytes(data)
    request = httpx.Request("POST", f"{srv.url}/legacy/", data=form_for(path), files={"content": (path.name, data)})
    body = request.read()
    boundary_at = body.index(data)
    head, tail = body[:boundary_at], body[boundary_at + len(data):]
    started = threading.Event()
    errors: list[BaseException] = []

    def send() -> None:
        try:
            httpx.post(
                f"{srv.url}/legacy/", content=_slow_body(head, data, tail, started),
                headers={"Content-Type": request.headers["content-type"]}, auth=auth, timeout=30,
            )
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    assert started.wait(20)
    tmp_dir = srv.data_dir / "blobs" / "tmp"
    deadline = time.monotonic() + 10
    while not any(tmp_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(tmp_dir.iterdir()), "the upload should be streaming into a temporary file"
    srv.kill9()
    thread.join(30)
    assert errors, "the client must see the connection die"

    srv.start()
    assert list(tmp_dir.iterdir()) == []  # leftovers of the interrupted write are gone
    assert httpx.get(f"{srv.url}/simple/crash-me/").status_code == 404
    sha = hashlib.sha256(data).hexdigest()
    assert not (srv.data_dir / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha).exists()
    check = srv.cli("check", "--hashes")
    assert check.returncode == 0, check.stdout + check.stderr
    # And the same upload succeeds afterwards.
    assert upload(f"{srv.url}/legacy/", path, auth=auth).status_code == 200
    assert srv.cli("check", "--hashes").returncode == 0
