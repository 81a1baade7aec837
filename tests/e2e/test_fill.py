"""Issue 11: filling an index in bulk and shipping it across an air gap, with the real CLI,
real servers and real pip.

- ``wheelcave import``: a folder of real wheels and sdists (nested like pip's wheel cache,
  plus a broken archive) is imported; the broken one is named with its reason; a second run
  imports nothing and says so; pip installs from the index.
- Bundles: made on one wheelcave, imported into an empty one whose mirror cannot reach
  anything; the same files with the same hashes, yank state and upload times; pip installs
  through it and from the extracted bundle alone; an incremental bundle carries only what
  is new; a bundle with one byte changed is refused, naming the file, and nothing is stored.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.support.dists import make_sdist, make_wheel
from tests.support.server import Server
from tests.support.upload import upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def files_of(server: Server, index: str, project: str) -> dict[str, dict[str, object]]:
    r = httpx.get(f"{server.url}/index/{index}/simple/{project}/", headers=JSON)
    assert r.status_code == 200, r.text
    return {f["filename"]: f for f in r.json()["files"]}


def pip_install(server_index: str | None, requirement: str, tmp: Path, env: dict[str, str], *extra: str) -> str:
    python = new_venv(tmp, env)
    source = ["--index-url", server_index] if server_index else []
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", *source, *extra, requirement], env)
    return run([str(python), "-c", f"import importlib.metadata as m; print(m.version({requirement.split('==')[0]!r}))"], env).stdout.strip()


def test_import_a_folder(fresh_server: Server, tmp_path: Path, client_env: dict[str, str]) -> None:
    src = tmp_path / "wheelhouse"
    cache = src / "wheels" / "ab" / "cd" / "ef"  # pip's wheel cache nests wheels like this
    cache.mkdir(parents=True)
    old = make_wheel(src, "fill-alpha", "1.0", requires_dist=["fill-beta>=2"])
    make_sdist(src, "fill-alpha", "1.0")
    make_wheel(cache, "fill-beta", "2.0")
    (src / "fill_broken-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 not really a zip")
    (src / "notes.txt").write_text("not a distribution: left alone")
    os.utime(old, (datetime(2021, 5, 4, tzinfo=UTC).timestamp(),) * 2)
    fresh_server.cli("index", "create", "filled", "--kind", "hosted")

    first = fresh_server.cli("import", "filled", str(src), check=False)
    assert first.returncode == 1, first.stderr  # something was refused
    assert "refused: " in first.stderr and "fill_broken-1.0-py3-none-any.whl" in first.stderr
    assert "not a valid zip archive" in first.stderr
    assert "filled: 3 imported, 0 already there, 1 refused" in first.stderr

    second = fresh_server.cli("import", "filled", str(src), "--json", check=False)
    assert "nothing new imported into filled: 3 files already there, 1 refused" in second.stderr
    report = json.loads(second.stdout)
    assert (report["imported"], report["present"]) == (0, 3)
    assert [r["filename"] for r in report["refused"]] == ["fill_broken-1.0-py3-none-any.whl"]
    (src / "fill_broken-1.0-py3-none-any.whl").unlink()
    assert fresh_server.cli("import", "filled", str(src), "--quiet").returncode == 0  # nothing refused: exit 0

    fresh_server.wait_for_index("filled")
    listed = files_of(fresh_server, "filled", "fill-alpha")
    assert sorted(listed) == ["fill_alpha-1.0-py3-none-any.whl", "fill_alpha-1.0.tar.gz"]
    assert str(listed["fill_alpha-1.0-py3-none-any.whl"]["upload-time"]).startswith("2021-05-04")  # the file's mtime
    assert "fill-broken" not in httpx.get(f"{fresh_server.url}/index/filled/simple/").text
    version = pip_install(f"{fresh_server.url}/index/filled/simple/", "fill-alpha", tmp_path / "venv", client_env)
    assert version == "1.0"


def test_import_refuses_what_an_upload_refuses(fresh_server: Server, tmp_path: Path) -> None:
    """Who may not: a mirror is not a target; a file whose bytes differ from the index's
    copy under the same name is refused (immutable index); a missing path fails at once."""
    wheel = make_wheel(tmp_path, "fill-gamma", "1.0")
    fresh_server.cli("index", "create", "imm", "--kind", "hosted")
    assert fresh_server.cli("import", "imm", str(wheel)).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    make_wheel(other, "fill-gamma", "1.0", summary="other bytes")
    again = fresh_server.cli("import", "imm", str(other), check=False)
    assert again.returncode == 1 and "File already exists" in again.stderr
    to_mirror = fresh_server.cli("import", "pypi", str(wheel), check=False)
    assert to_mirror.returncode == 1 and "upload to a hosted index" in to_mirror.stderr
    gone = fresh_server.cli("import", "imm", str(tmp_path / "nope"), check=False)
    assert gone.returncode == 1 and "no such file or folder" in gone.stderr


@pytest.fixture
def dead_upstream_env() -> dict[str, str]:
    """The air-gapped side: its default mirror points at a closed port on loopback."""
    return {"PIP_INDEX_URL": "http://127.0.0.1:9/simple/"}


def test_bundle_carries_an_index_across_an_air_gap(
    tmp_path: Path, client_env: dict[str, str], dead_upstream_env: dict[str, str],
) -> None:
    here = Server(tmp_path / "here").start()
    there = Server(tmp_path / "there", extra_env=dead_upstream_env).start()
    try:
        auth = ("admin", here.admin_password)
        here.cli("index", "create", "team", "--kind", "hosted")
        dists = tmp_path / "dists"
        dists.mkdir()
        for path in (make_wheel(dists, "ship-app", "1.0", requires_dist=["ship-lib"]), make_sdist(dists, "ship-app", "1.0"),
                     make_wheel(dists, "ship-lib", "0.9"), make_wheel(dists, "ship-lib", "1.0")):
            assert upload(f"{here.url}/index/team/", path, auth=auth).status_code == 200
        here.cli("yank", "team", "ship-lib", "0.9", "--reason", "broken")

        first = tmp_path / "first.tar"
        made = json.loads(here.cli("bundle", "create", "-o", str(first), "--index", "team", "--json", "-q").stdout)
        assert made["files"] == 4

        there.cli("index", "create", "airgap", "--kind", "hosted")
        assert there.cli("import", "airgap", str(first)).returncode == 0
        there.wait_for_index("airgap")
        for project in ("ship-app", "ship-lib"):
            a, b = files_of(here, "team", project), files_of(there, "airgap", project)
            assert sorted(a) == sorted(b)
            for name in a:  # the same bytes, yank state, upload time and metadata
                for key in ("hashes", "yanked", "upload-time", "core-metadata", "size"):
                    assert a[name][key] == b[name][key], (name, key)
        assert pip_install(f"{there.url}/index/airgap/simple/", "ship-app", tmp_path / "v1", client_env) == "1.0"

        # The bundle is a plain wheelhouse once extracted.
        extracted = tmp_path / "extracted"
        with tarfile.open(first) as tar:
            tar.extractall(extracted, filter="data")
        assert pip_install(None, "ship-app", tmp_path / "v2", client_env, "--no-index", "--find-links", str(extracted)) == "1.0"
        # ... and an extracted bundle imports like the tar (checked against its manifest).
        there.cli("index", "create", "airgap2", "--kind", "hosted")
        assert there.cli("import", "airgap2", str(extracted)).returncode == 0

        # Incremental: only what is new since the first bundle.
        assert upload(f"{here.url}/index/team/", make_wheel(dists, "ship-lib", "1.1"), auth=auth).status_code == 200
        second = tmp_path / "second.tar"
        here.cli("bundle", "create", "-o", str(second), "--index", "team", "--since", str(first))
        with tarfile.open(second) as tar:
            names = tar.getnames()
        assert names == ["wheelcave-bundle.json", "ship_lib-1.1-py3-none-any.whl", "ship_lib-1.1-py3-none-any.whl.metadata"]
        assert there.cli("import", "airgap", str(second)).returncode == 0
        there.wait_for_index("airgap")
        assert "ship_lib-1.1-py3-none-any.whl" in files_of(there, "airgap", "ship-lib")
    finally:
        here.stop()
        there.stop()


def test_a_tampered_bundle_is_refused_whole(fresh_server: Server, tmp_path: Path) -> None:
    fresh_server.cli("index", "create", "src", "--kind", "hosted")
    dists = tmp_path / "dists"
    dists.mkdir()
    for version in ("1.0", "2.0"):
        make_wheel(dists, "ship-tamper", version)
    fresh_server.cli("import", "src", str(dists))
    good = tmp_path / "good.tar"
    fresh_server.cli("bundle", "create", "-o", str(good), "--index", "src")

    def rewrite(target: Path, change: dict[str, bytes | None]) -> Path:
        with tarfile.open(good) as src, tarfile.open(target, "w") as out:
            for member in src.getmembers():
                data = src.extractfile(member).read()  # type: ignore[union-attr]
                if member.name in change:
                    if change[member.name] is None:
                        continue
                    data = change[member.name]  # type: ignore[assignment]
                    member.size = len(data)
                out.addfile(member, io.BytesIO(data))
        return target

    with tarfile.open(good) as tar:
        wheel = tar.extractfile("ship_tamper-2.0-py3-none-any.whl").read()  # type: ignore[union-attr]
    flipped = bytearray(wheel)
    flipped[len(flipped) // 2] ^= 0x01
    cases = {
        "one byte changed": (rewrite(tmp_path / "flip.tar", {"ship_tamper-2.0-py3-none-any.whl": bytes(flipped)}),
                             "ship_tamper-2.0-py3-none-any.whl does not match its sha256"),
        "a file missing": (rewrite(tmp_path / "missing.tar", {"ship_tamper-1.0-py3-none-any.whl": None}),
                           "ship_tamper-1.0-py3-none-any.whl is listed in the manifest but not in the bundle"),
        "truncated": (tmp_path / "cut.tar", "truncated or damaged"),
        "not a bundle": (tmp_path / "plain.tar", "not a wheelcave bundle"),
    }
    (tmp_path / "cut.tar").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with tarfile.open(tmp_path / "plain.tar", "w") as tar:
        tar.add(dists / "ship_tamper-1.0-py3-none-any.whl", "ship_tamper-1.0-py3-none-any.whl")
    fresh_server.cli("index", "create", "dst", "--kind", "hosted")
    blobs = fresh_server.data_dir / "blobs" / "sha256"
    before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    for what, (bundle, message) in cases.items():
        result = fresh_server.cli("import", "dst", str(bundle), check=False)
        assert result.returncode == 1, what
        assert message in result.stderr and "nothing imported" in result.stderr, (what, result.stderr)
    assert sorted(p.name for p in blobs.rglob("*") if p.is_file()) == before  # not a byte kept
    assert not list((fresh_server.data_dir / "blobs" / "tmp").iterdir())
    fresh_server.wait_for_index("dst")
    assert httpx.get(f"{fresh_server.url}/index/dst/simple/ship-tamper/", headers=JSON).status_code == 404


@pytest.mark.postgres
def test_import_on_postgres(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The batched listing on PostgreSQL: a folder and a bundle, twice (the second run finds everything)."""
    from tests.conftest import database_url_for

    srv = Server(tmp_path / "pg", database_url_for("postgres", request)).start()
    try:
        src = tmp_path / "src"
        src.mkdir()
        for i in range(30):
            make_wheel(src, f"fill-pg{i % 3}", f"1.{i}")
        make_sdist(src, "fill-pg0", "9.0")
        srv.cli("index", "create", "pg", "--kind", "hosted")
        report = json.loads(srv.cli("import", "pg", str(src), "--json", "-q").stdout)
        assert (report["imported"], report["present"], report["refused"]) == (31, 0, [])
        report = json.loads(srv.cli("import", "pg", str(src), "--json", "-q").stdout)
        assert (report["imported"], report["present"]) == (0, 31)
        bundle = tmp_path / "pg.tar"
        srv.cli("bundle", "create", "--index", "pg", "-o", str(bundle))
        srv.cli("index", "create", "pg2", "--kind", "hosted")
        assert json.loads(srv.cli("import", "pg2", str(bundle), "--json", "-q").stdout)["imported"] == 31
        srv.wait_for_index("pg2")
        assert len(files_of(srv, "pg2", "fill-pg0")) == 11
    finally:
        srv.stop()


def test_import_watch_picks_up_dropped_files(fresh_server: Server, tmp_path: Path) -> None:
    import subprocess

    from tests.support.server import BIN

    drop = tmp_path / "drop"
    drop.mkdir()
    fresh_server.cli("index", "create", "watched", "--kind", "hosted")
    proc = subprocess.Popen([str(BIN / "wheelcave"), "import", "watched", str(drop), "--watch", "--interval", "0.1",
                             "--data-dir", str(fresh_server.data_dir)], env=fresh_server.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        staged = make_wheel(tmp_path, "fill-dropped", "1.0")
        staged.rename(drop / staged.name)  # a finished file moved in, as the help says
        for _ in range(600):  # polls: at most 60 s
            r = httpx.get(f"{fresh_server.url}/index/watched/simple/fill-dropped/", headers=JSON)
            if r.status_code == 200:
                break
            import time

            time.sleep(0.1)
        assert r.status_code == 200, r.text
        (drop / "fill_bad-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "imported: " in err and "fill_dropped-1.0-py3-none-any.whl" in err


def test_a_killed_import_leaves_no_worker_behind(fresh_server: Server, tmp_path: Path) -> None:
    """kill -9 of `wheelcave import` takes its worker processes with it (they would otherwise
    wait forever, each holding its imports)."""
    import os
    import signal
    import subprocess
    import time

    from tests.support.server import BIN

    src = tmp_path / "many"
    src.mkdir()
    for i in range(3000):
        make_wheel(src, f"fill-kill{i % 50}", f"1.{i}")
    fresh_server.cli("index", "create", "killed", "--kind", "hosted")
    proc = subprocess.Popen([str(BIN / "wheelcave"), "import", "killed", str(src), "-q", "--jobs", "2",
                             "--data-dir", str(fresh_server.data_dir)], env=fresh_server.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children(pid: int) -> set[int]:
        try:
            return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
        except FileNotFoundError:
            return set()

    workers: set[int] = set()
    for _ in range(600):  # polls: at most 60 s for the pool to start
        workers = {c for c in children(proc.pid)
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()} if proc.poll() is None else set()
        if len(workers) >= 2:
            break
        time.sleep(0.1)
    assert len(workers) >= 2, "the import never started its workers"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for _ in range(300):  # polls: at most 30 s
        alive = {w for w in workers if Path(f"/proc/{w}").exists() and b"Z" not in Path(f"/proc/{w}/stat").read_bytes().split(b")")[1][:3]}
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"workers outlived their import: {sorted(alive)}"
    for w in workers:  # reap nothing of ours; just make sure none is left running
        try:
            os.kill(w, 0)
        except ProcessLookupError:
            continue
