"""Soak (issue 10's suite): a bounded mixed workload on loopback — page reads of hosted and
mirror projects, uploads, file downloads, mirror misses — for a while (60 s by default,
``WHEELCAVE_TEST_SOAK_SECONDS``); no error answer, and the server's RSS at the end within 10%
of what it was after a warm-up."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dists import wheel_bytes
from tests.support.server import Server
from tests.support.upload import form_for
from tests.support.upstream import FakeUpstream, UpFile

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
SECONDS = float(os.environ.get("WHEELCAVE_TEST_SOAK_SECONDS", "60"))
PROJECTS = 300


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    for i in range(PROJECTS):
        up.add(f"soak-up{i}", UpFile(f"soak_up{i}-1.0-py3-none-any.whl", wheel_bytes(f"soak-up{i}", "1.0")))
    yield up
    up.stop()


def _worker(srv: Server, until: float, seed: int, errors: list[str], counts: dict[str, int]) -> None:
    rng = random.Random(seed)
    auth = ("admin", srv.admin_password)
    with httpx.Client(timeout=30) as client:
        n = 0
        while time.monotonic() < until and n < 100_000:
            n += 1
            what = rng.random()
            if what < 0.45:
                r = client.get(f"{srv.url}/simple/soak-pkg{rng.randrange(5)}/", headers=JSON)
                ok = r.status_code in (200, 404)
                kind = "page"
            elif what < 0.7:
                project = f"soak-up{rng.randrange(PROJECTS)}"
                r = client.get(f"{srv.url}/index/pypi/simple/{project}/", headers=JSON)
                ok = r.status_code == 200
                if ok and rng.random() < 0.5:
                    url = httpx.URL(f"{srv.url}/index/pypi/simple/{project}/").join(r.json()["files"][0]["url"])
                    r = client.get(url)
                    ok = r.status_code == 200
                kind = "mirror"
            elif what < 0.8:
                version, project = f"{seed}.{n}", f"soak-pkg{rng.randrange(5)}"
                data = wheel_bytes(project, version)
                name = f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
                r = client.post(f"{srv.url}/legacy/", data=form_for(Path(name), data), auth=auth,
                                files={"content": (name, data, "application/octet-stream")})
                ok = r.status_code == 200
                kind = "upload"
            else:
                r = client.get(f"{srv.url}/api/v1/search", params={"q": "soak"})
                ok = r.status_code == 200
                kind = "api"
            counts[kind] = counts.get(kind, 0) + 1
            if not ok:
                errors.append(f"{kind}: {r.status_code} {r.text[:200]}")


@pytest.mark.stress
def test_soak(tmp_path: Path, upstream: FakeUpstream) -> None:
    srv = Server(tmp_path / "data", extra_env={"PIP_INDEX_URL": upstream.url}).start()
    try:
        assert srv.proc is not None
        errors: list[str] = []
        counts: dict[str, int] = {}

        def run_for(seconds: float, seed: int) -> None:
            until = time.monotonic() + seconds
            threads = [threading.Thread(target=_worker, args=(srv, until, seed * 10 + i, errors, counts)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(seconds + 60)

        run_for(max(10.0, SECONDS / 4), 1)  # warm-up: caches fill, every mirror project once
        warm = _rss_kib(srv.proc.pid)
        run_for(SECONDS, 2)
        end = _rss_kib(srv.proc.pid)
        assert errors == [], errors[:5]
        assert sum(counts.values()) > 100, counts
        assert end <= warm * 1.10, f"RSS {warm} KiB after warm-up, {end} KiB at the end ({counts})"
    finally:
        srv.stop()
