"""Index policies, promotion, yank, cooldown and the dependency-confusion guard with real
pip (issue #4 acceptance 1-4, 7, 8)."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.e2e.test_mirror import eventually, small_wheel
from tests.support.dists import make_wheel, wheel_bytes
from tests.support.server import Server
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def blob_count(server: Server) -> int:
    return sum(1 for p in (server.data_dir / "blobs" / "sha256").rglob("*") if p.is_file())


def pip_install(python: Path, index: str, env: dict[str, str], *reqs: str, check: bool = True):  # type: ignore[no-untyped-def]
    return run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
                "--index-url", index, *reqs], env, check=check)


def installed_version(python: Path, module: str, env: dict[str, str]) -> str:
    return run([str(python), "-c", f"import {module}; print({module}.VERSION)"], env).stdout.strip()


def test_dependency_confusion_guard_and_allow_upstream(tmp_path: Path, client_env: dict[str, str]) -> None:
    upstream = FakeUpstream().start()
    upstream.add("acme-utils", small_wheel("acme-utils", "99.0"))
    srv = Server(tmp_path / "data", extra_env={"PIP_INDEX_URL": upstream.url}).start()
    try:
        wheel = make_wheel(tmp_path, "acme-utils", "1.0")
        assert upload(f"{srv.url}/legacy/", wheel, auth=("admin", srv.admin_password)).status_code == 200
        python = new_venv(tmp_path / "venv", client_env)
        pip_install(python, f"{srv.url}/simple/", client_env, "acme-utils")
        assert installed_version(python, "acme_utils", client_env) == "1.0"
        assert not [r for r in upstream.requests if "acme" in r]
        srv.cli("index", "update", "main", "--allow-upstream", "acme-utils")
        srv.wait_for_index("main", allow_upstream=["acme-utils"])
        page = httpx.get(f"{srv.url}/simple/acme-utils/", headers=JSON).json()
        assert set(page["versions"]) == {"1.0", "99.0"}
        assert page["files"][0]["filename"] == wheel.name  # the private member comes first
    finally:
        srv.stop()
        upstream.stop()


def test_a_name_found_absent_from_the_private_index_is_guarded_once_it_is_there(tmp_path: Path) -> None:
    """The virtual index remembers which names its hosted member lacks (a resolution asks about
    every dependency): an upload here, or a promotion by another process, ends that at once or
    within the change poll, and the upstream's files of the name stop showing."""
    upstream = FakeUpstream().start()
    for name in ("late-private", "late-promoted"):
        upstream.add(name, small_wheel(name, "99.0"))
    srv = Server(tmp_path / "data", extra_env={"PIP_INDEX_URL": upstream.url}).start()

    def versions(name: str) -> list[str]:
        return httpx.get(f"{srv.url}/simple/{name}/", headers=JSON).json()["versions"]

    try:
        auth = ("admin", srv.admin_password)
        assert versions("late-private") == versions("late-promoted") == ["99.0"]  # the hosted index lacks both
        wheel = make_wheel(tmp_path, "late-private", "1.0")
        assert upload(f"{srv.url}/legacy/", wheel, auth=auth).status_code == 200
        assert versions("late-private") == ["1.0"]  # this process's upload: at once
        srv.cli("index", "create", "staging", "--kind", "hosted")
        srv.wait_for_index("staging")
        other = make_wheel(tmp_path, "late-promoted", "1.0")
        assert upload(f"{srv.url}/index/staging/", other, auth=auth).status_code == 200
        srv.cli("promote", "late-promoted", "1.0", "--from", "staging", "--to", "local")  # another process
        assert eventually(lambda: versions("late-promoted") == ["1.0"])
    finally:
        srv.stop()
        upstream.stop()


def test_promotion_shares_blobs(fresh_server: Server, tmp_path: Path, client_env: dict[str, str]) -> None:
    srv = fresh_server
    for name in ("dev", "prod"):
        srv.cli("index", "create", name, "--kind", "hosted")
        srv.wait_for_index(name)
    auth = ("admin", srv.admin_password)
    wheel = make_wheel(tmp_path, "promo-pkg", "1.0")
    assert upload(f"{srv.url}/index/dev/", wheel, auth=auth).status_code == 200
    before = blob_count(srv)
    out = srv.cli("promote", "promo-pkg", "1.0", "--from", "dev", "--to", "prod").stdout
    assert out.strip() == f"promoted {wheel.name}"
    assert blob_count(srv) == before  # no second copy of the bytes
    dev = httpx.get(f"{srv.url}/index/dev/simple/promo-pkg/", headers=JSON).json()["files"]
    prod = httpx.get(f"{srv.url}/index/prod/simple/promo-pkg/", headers=JSON).json()["files"]
    assert [f["hashes"] for f in dev] == [f["hashes"] for f in prod]
    python = new_venv(tmp_path / "venv", client_env)
    pip_install(python, f"{srv.url}/index/prod/simple/", client_env, "promo-pkg")
    assert srv.cli("promote", "promo-pkg", "1.0", "--from", "dev", "--to", "prod").returncode == 0  # idempotent
    missing = srv.cli("promote", "promo-pkg", "9.9", "--from", "dev", "--to", "prod", check=False)
    assert missing.returncode == 1 and "No release promo-pkg 9.9" in missing.stderr
    srv.cli("index", "create", "frozen", "--kind", "hosted")
    other = wheel_bytes("promo-pkg", "1.0", summary="other bytes")
    srv.wait_for_index("frozen")
    r = upload(f"{srv.url}/index/frozen/", wheel, auth=auth, data=other)
    assert r.status_code == 200
    refused = srv.cli("promote", "promo-pkg", "1.0", "--from", "dev", "--to", "frozen", check=False)
    assert refused.returncode == 1 and "File already exists" in refused.stderr


def test_immutable_and_overwrite(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    auth = ("admin", srv.admin_password)
    wheel = make_wheel(tmp_path, "imm-pkg", "1.0")
    assert upload(f"{srv.url}/legacy/", wheel, auth=auth).status_code == 200
    assert srv.cli("delete", "local", "imm-pkg", "1.0").stdout.strip() == f"deleted {wheel.name}"
    assert httpx.get(f"{srv.url}/index/local/simple/imm-pkg/").status_code == 404
    r = upload(f"{srv.url}/legacy/", wheel, auth=auth)
    assert r.status_code == 409
    assert "deleted" in r.text
    # A scratch index that takes overwrites.
    srv.cli("index", "create", "scratch", "--kind", "hosted", "--allow-overwrite")
    srv.wait_for_index("scratch", allow_overwrite=True)
    assert upload(f"{srv.url}/index/scratch/", wheel, auth=auth).status_code == 200
    first = httpx.get(f"{srv.url}/index/scratch/simple/imm-pkg/", headers=JSON).json()["files"][0]["hashes"]["sha256"]
    changed = wheel_bytes("imm-pkg", "1.0", summary="rebuilt")
    assert upload(f"{srv.url}/index/scratch/", wheel, auth=auth, data=changed).status_code == 200
    second = httpx.get(f"{srv.url}/index/scratch/simple/imm-pkg/", headers=JSON).json()["files"][0]["hashes"]["sha256"]
    assert first != second == hashlib.sha256(changed).hexdigest()
    # No deletes where the policy says so.
    srv.cli("index", "update", "scratch", "--no-delete")
    refused = srv.cli("delete", "scratch", "imm-pkg", check=False)
    assert refused.returncode == 1 and "does not allow deletes" in refused.stderr


def test_yanked_skipped_unless_pinned(fresh_server: Server, tmp_path: Path, client_env: dict[str, str]) -> None:
    srv = fresh_server
    auth = ("admin", srv.admin_password)
    for version in ("1.0", "2.0"):
        assert upload(f"{srv.url}/legacy/", make_wheel(tmp_path, "yank-pkg", version), auth=auth).status_code == 200
    srv.cli("yank", "local", "yank-pkg", "2.0", "--reason", "broken on 3.12")
    assert 'data-yanked="broken on 3.12"' in httpx.get(f"{srv.url}/simple/yank-pkg/").text
    assert "broken on 3.12" in [f["yanked"] for f in httpx.get(f"{srv.url}/simple/yank-pkg/", headers=JSON).json()["files"]]
    python = new_venv(tmp_path / "venv", client_env)
    pip_install(python, f"{srv.url}/simple/", client_env, "yank-pkg")
    assert installed_version(python, "yank_pkg", client_env) == "1.0"
    result = pip_install(python, f"{srv.url}/simple/", client_env, "yank-pkg==2.0")
    assert installed_version(python, "yank_pkg", client_env) == "2.0"
    assert "broken on 3.12" in result.stderr  # pip warns with the reason


@pytest.mark.parametrize("where", ["mirror", "virtual"])
def test_cooldown(tmp_path: Path, client_env: dict[str, str], where: str) -> None:
    upstream = FakeUpstream().start()
    old, new = small_wheel("cool-pkg", "1.0"), small_wheel("cool-pkg", "2.0")
    old.upload_time = datetime.now(UTC) - timedelta(days=30)
    new.upload_time = datetime.now(UTC) - timedelta(days=1)
    upstream.add("cool-pkg", old, new)
    exempt_old, exempt_new = small_wheel("hot-fix", "1.0"), small_wheel("hot-fix", "1.1")
    exempt_old.upload_time = datetime.now(UTC) - timedelta(days=30)
    upstream.add("hot-fix", exempt_old, exempt_new)
    srv = Server(tmp_path / "data", extra_env={"PIP_INDEX_URL": upstream.url}).start()
    try:
        target = "pypi" if where == "mirror" else "main"
        srv.cli("index", "update", target, "--cooldown", "7d", "--cooldown-exempt", "hot-fix")
        srv.wait_for_index(target, cooldown_exempt=["hot-fix"])
        python = new_venv(tmp_path / "venv", client_env)
        pip_install(python, f"{srv.url}/simple/", client_env, "cool-pkg", "hot-fix")
        assert installed_version(python, "cool_pkg", client_env) == "1.0"
        assert installed_version(python, "hot_fix", client_env) == "1.1"  # exempt
        page = httpx.get(f"{srv.url}/simple/cool-pkg/", headers=JSON).json()
        assert [f["filename"] for f in page["files"]] == [old.filename]  # simply absent
        override = httpx.get(f"{srv.url}/index/{target}/no-cooldown/simple/cool-pkg/", headers=JSON).json()
        assert {f["filename"] for f in override["files"]} == {old.filename, new.filename}
    finally:
        srv.stop()
        upstream.stop()


def test_bad_index_changes_change_nothing(fresh_server: Server) -> None:
    srv = fresh_server
    before = srv.cli("index", "list").stdout
    srv.cli("index", "create", "v1", "--kind", "virtual", "--members", "local")
    after_ok = srv.cli("index", "list").stdout
    cases = [
        (["index", "create", "Bad Name", "--kind", "hosted"], "invalid index name"),
        (["index", "create", "x", "--kind", "virtual", "--members", "nope"], "is not an index"),
        (["index", "update", "v1", "--members", "local,v1"], "cycle"),
        (["index", "create", "x", "--kind", "mirror", "--upstream", "ftp://x/"], "http(s) upstream"),
        (["index", "create", "x", "--kind", "hosted", "--upstream", "http://x/"], "does not take --upstream"),
        (["index", "update", "nope", "--ttl", "5"], "No index named 'nope'"),
        (["index", "delete", "local"], "is used by main"),
        (["index", "create", "local", "--kind", "hosted"], "exists already"),
    ]
    for args, message in cases:
        result = srv.cli(*args, check=False)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
    assert srv.cli("index", "list").stdout == after_ok
    assert before != after_ok
