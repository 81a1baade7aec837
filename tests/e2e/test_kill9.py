"""The kill -9 matrix (issue 10's suite): the server is killed at random moments while it takes
uploads, promotes releases and fills a mirror, and a ``wheelcave gc`` collecting old orphan blobs
and a ``wheelcave import`` of a folder are killed at their own random moments; after each restart, a consistency check: no row without its
blob, no blob whose bytes are not its name's, and every upload that got a 200 before the kill is
still listed with its bytes (the test keeps its own log of acknowledged uploads)."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dists import wheel_bytes
from tests.support.server import BIN, Server
from tests.support.upload import form_for
from tests.support.upstream import FakeUpstream, UpFile

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
ROUNDS = int(os.environ.get("WHEELCAVE_TEST_KILL9_ROUNDS", "8"))


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    for i in range(40):
        up.add(f"k9-up{i}", UpFile(f"k9_up{i}-1.0-py3-none-any.whl",
                                   wheel_bytes(f"k9-up{i}", "1.0", extra_files={"x.bin": os.urandom(256 * 1024)})))
    up.throttle = 8 * 2**20
    yield up
    up.stop()


def _work(srv: Server, stop: threading.Event, acked: dict[str, str], lock: threading.Lock, seed: int) -> None:
    """Uploads (recording each 200), promotions and mirror downloads until told to stop or the
    server dies under it."""
    rng = random.Random(seed)
    auth = ("admin", srv.admin_password)
    with httpx.Client(timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                kind = rng.random()
                if kind < 0.6:
                    version = f"{seed}.{n}"
                    data = wheel_bytes("k9-pkg", version, extra_files={"x.bin": os.urandom(rng.randint(1, 400_000))})
                    filename = f"k9_pkg-{version}-py3-none-any.whl"
                    path = Path(f"/tmp/{filename}")
                    r = client.post(f"{srv.url}/legacy/", data=form_for(path, data), auth=auth,
                                    files={"content": (filename, data, "application/octet-stream")})
                    if r.status_code == 200:
                        with lock:
                            acked[filename] = hashlib.sha256(data).hexdigest()
                elif kind < 0.8:
                    with lock:
                        done = [f.split("-")[1] for f in acked]
                    if done:
                        client.post(f"{srv.url}/api/v1/promote", auth=auth, json={
                            "project": "k9-pkg", "version": rng.choice(done), "source": "local", "target": "k9-prod"})
                else:
                    project = f"k9-up{rng.randrange(40)}"
                    page = client.get(f"{srv.url}/index/pypi/simple/{project}/", headers=JSON)
                    if page.status_code == 200:
                        url = httpx.URL(f"{srv.url}/index/pypi/simple/{project}/").join(page.json()["files"][0]["url"])
                        client.get(url)
            except httpx.HTTPError:
                if srv.proc is None or srv.proc.poll() is not None:
                    return


def _orphans(srv: Server, count: int) -> None:
    """Blobs nothing lists, a week old: what gc collects (and a killed gc leaves half done)."""
    week_ago = time.time() - 7 * 86400
    for _ in range(count):
        data = os.urandom(64 * 1024)
        sha = hashlib.sha256(data).hexdigest()
        path = srv.data_dir / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (week_ago, week_ago))


def _gc(srv: Server) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(BIN / "wheelcave"), "gc", "--data-dir", str(srv.data_dir)], env=srv.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _import(srv: Server, folder: Path, round_: int) -> subprocess.Popen[bytes]:
    """A ``wheelcave import`` of 200 small wheels (killed at its own random moment)."""
    folder.mkdir(parents=True)
    for i in range(200):
        version = f"{round_}.{i}"
        (folder / f"k9_imp-{version}-py3-none-any.whl").write_bytes(wheel_bytes("k9-imp", version))
    return subprocess.Popen([str(BIN / "wheelcave"), "import", "k9-imp", str(folder), "-q", "--data-dir", str(srv.data_dir)],
                            env=srv.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _consistent(srv: Server, acked: dict[str, str]) -> None:
    check = srv.cli("check", "--hashes", check=False)
    assert check.returncode == 0, check.stdout + check.stderr  # no row without its blob (or with wrong bytes)
    for blob in (srv.data_dir / "blobs" / "sha256").rglob("*"):
        if blob.is_file():  # no partial blob visible under a content address
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    files = httpx.get(f"{srv.url}/api/v1/indexes/local/projects/k9-pkg", auth=("admin", srv.admin_password))
    listed = {f["filename"]: f["sha256"] for f in files.json()["files"]} if files.status_code == 200 else {}
    for filename, sha in acked.items():
        assert listed.get(filename) == sha, f"acknowledged upload {filename} lost"


@pytest.mark.stress
def test_kill9_matrix(tmp_path: Path, upstream: FakeUpstream) -> None:
    """kill -9 at random moments of uploads, promotions, mirror fills, imports and gc, then a
    restart and a consistency check, eight times: every acknowledged upload kept, no row without
    its bytes; the killed imports finish when run again."""
    srv = Server(tmp_path / "data", extra_env={"PIP_INDEX_URL": upstream.url}).start()
    try:
        srv.cli("index", "create", "k9-prod", "--kind", "hosted")
        srv.cli("index", "create", "k9-imp", "--kind", "hosted")
        acked: dict[str, str] = {}
        lock = threading.Lock()
        rng = random.Random(20261202)
        for round_ in range(ROUNDS):
            stop = threading.Event()
            workers = [threading.Thread(target=_work, args=(srv, stop, acked, lock, round_ * 10 + i)) for i in range(3)]
            for w in workers:
                w.start()
            _orphans(srv, 30)
            gc = _gc(srv)
            imports = _import(srv, tmp_path / "imports" / str(round_), round_)
            # let the work run for a random moment, then the hard kills
            stop.wait(rng.uniform(0.2, 1.5))
            for killed in (gc, imports):
                killed.send_signal(signal.SIGKILL)
                killed.wait()
            srv.kill9()
            stop.set()
            for w in workers:
                w.join(30)
            srv.start()
            _consistent(srv, acked)
        assert len(acked) >= ROUNDS  # the matrix really wrote things
        # the killed imports, run again to the end, import the rest and refuse nothing
        rerun = srv.cli("import", "k9-imp", str(tmp_path / "imports"), "--json", "-q")
        assert rerun.returncode == 0, rerun.stderr
        assert list((srv.data_dir / "blobs" / "tmp").iterdir()) == []  # leftovers cleared at start
        # a gc that runs to the end finishes what the killed ones left, and takes every orphan
        assert _gc(srv).wait(120) == 0
        assert not list((srv.data_dir / "blobs" / "trash").iterdir())
        assert "would remove 0 blobs" in srv.cli("gc", "--dry-run").stderr  # every old orphan taken
        _consistent(srv, acked)
    finally:
        srv.stop()
