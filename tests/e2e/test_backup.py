"""``wheelcave backup`` and ``wheelcave restore`` (issue 14, acceptance 4): a backup taken while
the server runs, restored into an empty data folder, gives indexes whose pages and files are
identical; the refusals (a folder in use, a damaged backup, a data folder not empty) change
nothing. On SQLite and, with pg_dump on the PATH, PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_mirror import mirror
from tests.support.dists import make_sdist, make_wheel, wheel_bytes
from tests.support.server import BIN, PostgresDatabase, Server, clean_env
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
HTML = {"Accept": "text/html"}


def _snapshot(srv: Server) -> dict[str, object]:
    """Every page and file a client can read, by URL (absolute URLs made relative)."""
    out: dict[str, object] = {}
    for index in ("local", "bk-up", "main"):
        base = f"{srv.url}/index/{index}/simple/"
        root = httpx.get(base, headers=JSON).json()
        out[f"{index}/"] = root
        for project in sorted(p["name"] for p in root["projects"]):
            page = httpx.get(f"{base}{project}/", headers=JSON)
            out[f"{index}/{project}/json"] = page.json()
            out[f"{index}/{project}/html"] = httpx.get(f"{base}{project}/", headers=HTML).text
            for f in page.json()["files"]:
                url = httpx.URL(f"{base}{project}/").join(f["url"])
                got = httpx.get(url)
                out[f"{index}/file/{f['filename']}"] = (got.status_code, got.content if got.status_code == 200 else b"")
                if f["core-metadata"]:
                    meta = httpx.get(f"{url}.metadata")
                    out[f"{index}/meta/{f['filename']}"] = (meta.status_code, meta.content)
    out["pypi-json"] = httpx.get(f"{srv.url}/pypi/bk-app/json").json()
    return out


def _without_host(value: object, port: int) -> object:
    if isinstance(value, str):
        return value.replace(f"127.0.0.1:{port}", "HOST")
    if isinstance(value, (dict, list)):
        return json.loads(json.dumps(value).replace(f"127.0.0.1:{port}", "HOST"))
    return value


def _cli(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "wheelcave"), *args, "--data-dir", str(data)], env=env or clean_env(),
                          capture_output=True, text=True, timeout=300)


def _fill(srv: Server, tmp: Path, upstream: FakeUpstream) -> None:
    auth = ("admin", srv.admin_password)
    for path in (make_wheel(tmp, "bk-app", "1.0", requires_dist=["bk-lib"]), make_sdist(tmp, "bk-app", "1.0"),
                 make_wheel(tmp, "bk-app", "2.0"), make_wheel(tmp, "bk-other", "0.1", summary="another")):
        assert upload(f"{srv.url}/legacy/", path, auth=auth).status_code == 200
    srv.cli("yank", "local", "bk-app", "2.0", "--reason", "broken")
    base = mirror(srv, upstream.url, "bk-up")
    page = httpx.get(f"{base}bk-lib/", headers=JSON).json()
    for f in page["files"][:1]:  # one mirror file cached, the other only listed
        url = httpx.URL(f"{base}bk-lib/").join(f["url"])
        assert httpx.get(url).status_code == 200
        assert httpx.get(f"{url}.metadata").status_code == 200


@pytest.fixture
def upstream() -> FakeUpstream:
    up = FakeUpstream()
    up.add("bk-lib", UpFile("bk_lib-1.0-py3-none-any.whl", wheel_bytes("bk-lib", "1.0")),
           UpFile("bk_lib-2.0-py3-none-any.whl", wheel_bytes("bk-lib", "2.0")))
    up.start()
    yield up  # type: ignore[misc]
    up.stop()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_backup_then_restore_gives_identical_pages_and_files(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, upstream: FakeUpstream,
) -> None:
    from tests.conftest import database_url_for

    if backend == "postgres" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not on the PATH")
    source_url = database_url_for(backend, request)
    srv = Server(tmp_path / "data", source_url).start()
    target_db: PostgresDatabase | None = None
    try:
        _fill(srv, tmp_path, upstream)
        # Reading every metadata file caches what it asks for (and records it after answering):
        # read until nothing changes, so the backup holds what "before" shows.
        before, previous = _snapshot(srv), None
        for _ in range(50):
            if before == previous:
                break
            previous, before = before, _snapshot(srv)
        assert before == previous, "the pages kept changing"
        env = srv.env
        taken = _cli(srv.data_dir, "backup", str(tmp_path / "backup"), env=env)  # the server keeps running
        assert taken.returncode == 0, taken.stderr
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        assert manifest["database"] == ("sqlite" if backend == "sqlite" else "postgresql")
        assert len(manifest["blobs"]) >= 5 and manifest["files"] >= 6
    finally:
        srv.stop()
    upstream.stop()  # the restored mirror must not need it for what was cached
    restored_env = {}
    if backend == "postgres":
        from tests.conftest import PG_URL

        target_db = PostgresDatabase(str(PG_URL))
        target_db.create()
        restored_env = {"WHEELCAVE_DATABASE_URL": target_db.url}
    try:
        done = _cli(tmp_path / "restored", "restore", str(tmp_path / "backup"), env=clean_env(restored_env))
        assert done.returncode == 0, done.stderr
        again = Server(tmp_path / "restored", target_db.url if target_db else None).start()
        try:
            after = _snapshot(again)
            # The users came back with the database: the old password signs in.
            assert httpx.get(f"{again.url}/admin/users", auth=("admin", srv.admin_password)).status_code == 200
        finally:
            again.stop()
        for key in before:  # the same but for the server's own address (in HTML and the JSON API)
            before[key] = _without_host(before[key], srv.port)
            after[key] = _without_host(after[key], again.port)
        assert after.keys() == before.keys()
        for key in before:
            assert after[key] == before[key], key
    finally:
        if target_db is not None:
            target_db.drop()


def test_what_backup_and_restore_refuse(tmp_path: Path, upstream: FakeUpstream) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        _fill(srv, tmp_path, upstream)
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / "keep.txt").write_text("mine")
        refused = _cli(srv.data_dir, "backup", str(busy))
        assert refused.returncode == 1 and refused.stderr.startswith("error: ") and "not empty" in refused.stderr
        assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
        inside = _cli(srv.data_dir, "backup", str(srv.data_dir / "bk"))
        assert inside.returncode == 1 and "inside the data folder" in inside.stderr
        assert _cli(srv.data_dir, "backup", str(tmp_path / "good")).returncode == 0
    finally:
        srv.stop()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]  # no half backups left

    # Not a backup; a manifest with a path trick; a damaged blob; a data folder in use.
    assert "not a wheelcave backup" in _cli(tmp_path / "r1", "restore", str(busy)).stderr
    tricked = tmp_path / "tricked"
    shutil.copytree(tmp_path / "good", tricked)
    manifest = json.loads((tricked / "manifest.json").read_text())
    manifest["blobs"][0][0] = "../../../../etc/passwd"
    (tricked / "manifest.json").write_text(json.dumps(manifest))
    said = _cli(tmp_path / "r2", "restore", str(tricked))
    assert said.returncode == 1 and "not [sha256, size] pairs" in said.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "good", damaged)
    sha = json.loads((damaged / "manifest.json").read_text())["blobs"][-1][0]
    blob = damaged / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    said = _cli(tmp_path / "r3", "restore", str(damaged))
    assert said.returncode == 1 and "damaged" in said.stderr and sha in said.stderr
    assert not (tmp_path / "r3").exists() or not any((tmp_path / "r3").rglob("*.db"))  # nothing written
    said = _cli(srv.data_dir, "restore", str(tmp_path / "good"))
    assert said.returncode == 1 and "empty data folder" in said.stderr
    ok = _cli(tmp_path / "r4", "restore", str(tmp_path / "good"))
    assert ok.returncode == 0, ok.stderr
