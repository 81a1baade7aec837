"""Blobs in an object store (issue 14): ``[storage] url = "s3://bucket/prefix"`` against an
S3-compatible server on 127.0.0.1 (moto's server mode: a real HTTP server speaking S3; no cloud
is contacted). Real clients upload and install; the bytes are in the bucket and nowhere on the
server's disk; a mirror caches into it; ranges, HEAD and conditional requests are answered from
it; presigned redirects when configured (never to a caller who may not read the file); /ready
says when the store cannot be reached; check, gc, import, export, bundles, backup and restore work
on it. (The 2 GB upload is in test_object_storage_big.py, a file of its own so that the test
workers run it beside these.)"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.e2e.test_mirror import mirror
from tests.support.dists import make_sdist, make_wheel, wheel_bytes
from tests.support.s3 import S3Server
from tests.support.server import BIN, Server, clean_env
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _bucket(s3: S3Server, name: str) -> str:
    s3.client().create_bucket(Bucket=name)
    return name


def _keys(s3: S3Server, bucket: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [o["Key"] for o in page.get("Contents", [])]
    return found


def _store_env(s3: S3Server, bucket: str, **extra: str) -> dict[str, str]:
    return {**s3.env, "WHEELCAVE_STORAGE_URL": f"s3://{bucket}/wc", **extra}


@pytest.fixture(scope="module")
def objsrv(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    bucket = _bucket(s3, "wc-main")
    srv = Server(tmp_path_factory.mktemp("obj") / "data", extra_env=_store_env(s3, bucket)).start()
    yield srv
    srv.stop()


def _file_url(srv: Server, project: str, filename: str) -> str:
    page = httpx.get(f"{srv.url}/simple/{project}/", headers=JSON).json()
    entry = next(f for f in page["files"] if f["filename"] == filename)
    return str(httpx.URL(f"{srv.url}/simple/{project}/").join(entry["url"]))


def test_upload_and_install_with_the_bytes_in_the_bucket(objsrv: Server, s3: S3Server, tmp_path: Path,
                                                         client_env: dict[str, str]) -> None:
    wheel = make_wheel(tmp_path, "os-app", "1.0", requires_dist=["os-dep"])
    dep = make_sdist(tmp_path, "os-dep", "2.0")
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
         f"{objsrv.url}/legacy/", "-u", "admin", "-p", objsrv.admin_password, str(wheel), str(dep)], client_env)
    for dist in (wheel, dep):
        sha = hashlib.sha256(dist.read_bytes()).hexdigest()
        assert f"wc/sha256/{sha[:2]}/{sha[2:4]}/{sha}" in _keys(s3, "wc-main", "wc/sha256/")
    # The server's disk holds a spool, no blob.
    local = objsrv.data_dir / "blobs"
    assert not [p for p in local.rglob("*") if p.is_file() and p.parent.name not in {"locks"}], list(local.rglob("*"))
    for installer in (["pip"], ["uv"]):
        python = new_venv(tmp_path / f"venv-{installer[0]}", client_env)
        if installer == ["pip"]:
            cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url", f"{objsrv.url}/simple/", "os-app"]
        else:
            cmd = [str(BIN / "uv"), "pip", "install", "--python", str(python), "--index-url", f"{objsrv.url}/simple/", "os-app"]
        run(cmd, client_env)
        run([str(python), "-c", "import os_app, os_dep"], client_env)


def test_ranges_head_and_conditional_requests_from_the_store(objsrv: Server, tmp_path: Path) -> None:
    data = wheel_bytes("os-range", "1.0", extra_files={"os_range/pad.bin": os.urandom(3 * 2**20)})
    wheel = tmp_path / "os_range-1.0-py3-none-any.whl"
    wheel.write_bytes(data)
    assert upload(f"{objsrv.url}/legacy/", wheel, auth=("admin", objsrv.admin_password)).status_code == 200
    url = _file_url(objsrv, "os-range", wheel.name)
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data and whole.headers["content-length"] == str(len(data))
    tail = httpx.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == data[-100:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
    middle = httpx.get(url, headers={"Range": "bytes=1000000-2500000"})
    assert middle.status_code == 206 and middle.content == data[1_000_000:2_500_001]
    assert httpx.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
    etag = whole.headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    meta = httpx.get(f"{url}.metadata")
    assert meta.status_code == 200 and b"Name: os-range" in meta.content


def test_a_mirror_caches_into_the_bucket_once(objsrv: Server, s3: S3Server) -> None:
    up = FakeUpstream()
    wheel = UpFile("os_mirrored-1.0-py3-none-any.whl", wheel_bytes("os-mirrored", "1.0", extra_files={"os_mirrored/x.bin": os.urandom(2**20)}))
    up.add("os-mirrored", wheel)
    up.start()
    try:
        base = mirror(objsrv, up.url, "os-up")
        entry = httpx.get(f"{base}os-mirrored/", headers=JSON).json()["files"][0]
        url = str(httpx.URL(f"{base}os-mirrored/").join(entry["url"]))
        for _ in range(3):
            got = httpx.get(url, timeout=60)
            assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == wheel.sha256
        assert up.count(f"GET /files/{wheel.filename}") == 1
        key = f"wc/sha256/{wheel.sha256[:2]}/{wheel.sha256[2:4]}/{wheel.sha256}"
        assert key in _keys(s3, "wc-main", "wc/sha256/")
    finally:
        up.stop()


def test_redirects_to_presigned_urls_only_for_readers(s3: S3Server, tmp_path: Path, client_env: dict[str, str]) -> None:
    bucket = _bucket(s3, "wc-redirect")
    srv = Server(tmp_path / "data", extra_env=_store_env(s3, bucket, WHEELCAVE_STORAGE_REDIRECT="300")).start()
    try:
        auth = ("admin", srv.admin_password)
        wheel = make_wheel(tmp_path, "os-redir", "1.0")
        assert upload(f"{srv.url}/legacy/", wheel, auth=auth).status_code == 200
        url = _file_url(srv, "os-redir", wheel.name)
        answer = httpx.get(url)
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(f"{s3.url}/{bucket}/wc/sha256/") and "X-Amz-Signature=" in location
        assert "immutable" not in answer.headers["cache-control"]  # the URL expires
        assert httpx.get(location).content == wheel.read_bytes()
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url", f"{srv.url}/simple/", "os-redir"], client_env)
        # A private index: a caller who may not read it gets no redirect (no URL leaks).
        created = httpx.post(f"{srv.url}/api/v1/indexes", json={"name": "secret", "kind": "hosted", "private": True}, auth=auth)
        assert created.status_code in (200, 201), created.text
        private = make_wheel(tmp_path, "os-private", "1.0")
        assert upload(f"{srv.url}/index/secret/", private, auth=auth).status_code == 200
        entry = httpx.get(f"{srv.url}/index/secret/simple/os-private/", headers=JSON, auth=auth).json()["files"][0]
        file_url = str(httpx.URL(f"{srv.url}/index/secret/simple/os-private/").join(entry["url"]))
        refused = httpx.get(file_url)
        assert refused.status_code == 401 and "location" not in refused.headers
        assert httpx.get(file_url, auth=auth).status_code == 302
    finally:
        srv.stop()


def test_ready_says_when_the_store_is_unreachable(tmp_path: Path) -> None:
    own = S3Server().start()
    own.client().create_bucket(Bucket="wc-ready")
    missing = Server(tmp_path / "nobucket", extra_env=_store_env(own, "no-such-bucket")).start()
    try:  # a wrong bucket: the server starts, says so at start, and is not ready
        assert "NOT USABLE YET" in missing.log_path.read_text()
        assert httpx.get(f"{missing.url}/ready").status_code == 503
    finally:
        missing.stop()
    srv = Server(tmp_path / "data", extra_env=_store_env(own, "wc-ready")).start()
    try:
        assert "NOT USABLE" not in srv.log_path.read_text() and "blobs in s3://wc-ready/wc" in srv.log_path.read_text()
        ready = httpx.get(f"{srv.url}/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["storage"] == "ok"
        own.stop()
        down = httpx.get(f"{srv.url}/ready", timeout=30)
        assert down.status_code == 503 and down.json()["checks"]["storage"].startswith("error")
        assert httpx.get(f"{srv.url}/health").status_code == 200  # alive, just not ready
        # An upload while the store is down is refused whole: no row without its blob.
        wheel = make_wheel(tmp_path, "os-down", "1.0")
        answer = upload(f"{srv.url}/legacy/", wheel, auth=("admin", srv.admin_password))
        assert answer.status_code == 503 and "blob store cannot be reached" in answer.text, answer.text
        assert answer.text.count("\n") == 1 and "Traceback" not in answer.text  # one line
        assert httpx.get(f"{srv.url}/simple/os-down/", headers=JSON).status_code == 404
        assert not list((srv.data_dir / "blobs" / "tmp").glob("*.part"))  # the spool let go of it
        failed = srv.cli("check", check=False)
        assert failed.returncode == 1 and failed.stderr.startswith("error: the blob store cannot be used"), failed.stderr
    finally:
        srv.stop()
        own.stop()


def test_check_gc_import_export_backup_restore_on_the_store(s3: S3Server, tmp_path: Path) -> None:
    bucket = _bucket(s3, "wc-jobs")
    srv = Server(tmp_path / "data", extra_env=_store_env(s3, bucket)).start()
    auth = ("admin", srv.admin_password)
    try:
        folder = tmp_path / "drop"
        folder.mkdir()
        wheels = [make_wheel(folder, "os-imp", f"1.{i}") for i in range(3)]
        imported = srv.cli("import", "local", str(folder))
        assert "3" in imported.stdout + imported.stderr, imported
        for w in wheels:
            sha = hashlib.sha256(w.read_bytes()).hexdigest()
            assert f"wc/sha256/{sha[:2]}/{sha[2:4]}/{sha}" in _keys(s3, bucket, "wc/sha256/")
        assert "ok:" in srv.cli("check", "--hashes").stderr
        # gc: a deleted file's blob leaves the bucket.
        gone = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        deleted = httpx.delete(f"{srv.url}/api/v1/indexes/local/files/{wheels[0].name}", auth=auth)
        assert deleted.status_code in (200, 204), deleted.text
        srv.cli("gc", "--grace", "0")
        keys = _keys(s3, bucket, "wc/")
        assert not [k for k in keys if gone in k], keys
        assert "ok:" in srv.cli("check").stderr
        # export: a folder tree with the files read from the store.
        out = tmp_path / "tree"
        srv.cli("export", "local", "-o", str(out))
        assert (out / "files").exists() or any(out.rglob(wheels[1].name)), list(out.rglob("*"))[:20]
        assert next(out.rglob(wheels[1].name)).read_bytes() == wheels[1].read_bytes()
        # an air-gap bundle read out of the store, imported into another prefix's index.
        bundle = tmp_path / "ship.tar"
        srv.cli("bundle", "create", "--index", "local", "-o", str(bundle))
        other = Server(tmp_path / "other", extra_env=_store_env(s3, bucket, WHEELCAVE_STORAGE_URL=f"s3://{bucket}/other"))
        shipped = other.cli("import", "local", str(bundle))
        assert shipped.returncode == 0, shipped
        assert len([k for k in _keys(s3, bucket, "other/sha256/")]) == 4  # two wheels and their metadata
        # backup, then restore into an empty data folder on an empty prefix of the store.
        backup = tmp_path / "backup"
        srv.cli("backup", str(backup))
        restored = Server(tmp_path / "restored", extra_env=_store_env(s3, bucket, WHEELCAVE_STORAGE_URL=f"s3://{bucket}/again"))
        result = restored.cli("restore", str(backup))
        assert result.returncode == 0, result
        assert [k for k in _keys(s3, bucket, "again/sha256/")]
        # An empty data folder on a prefix that holds blobs: refused, nothing written.
        third = Server(tmp_path / "third", extra_env=_store_env(s3, bucket, WHEELCAVE_STORAGE_URL=f"s3://{bucket}/again"))
        again = third.cli("restore", str(backup), check=False)
        assert again.returncode == 1 and "holds blobs" in again.stderr, again.stderr
        assert not (tmp_path / "third" / "wheelcave.db").exists()
        srv.stop()
        restored.start()
        try:
            for w in wheels[1:]:
                got = httpx.get(_file_url(restored, "os-imp", w.name))
                assert got.status_code == 200 and got.content == w.read_bytes()
        finally:
            restored.stop()
    finally:
        srv.stop()


def test_bad_storage_settings_are_refused_at_start(tmp_path: Path) -> None:
    for env, message in (({"WHEELCAVE_STORAGE_URL": "ftp://host/x"}, "storage.url must be an object store URL"),
                         ({"WHEELCAVE_STORAGE_REDIRECT": "60"}, "storage.redirect needs storage.url"),
                         ({"WHEELCAVE_STORAGE_URL": "s3://b/p", "WHEELCAVE_STORAGE_REDIRECT": "9999999"}, "between 0 and 604800")):
        result = subprocess.run([str(BIN / "wheelcave"), "serve", "--data-dir", str(tmp_path / "d")],
                                env=clean_env(env), capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
