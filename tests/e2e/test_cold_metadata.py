"""Cold mirror, issue 13: metadata for every upstream wheel without downloading it.

The upstream here (tests.support.upstream, on 127.0.0.1) offers no PEP 658 metadata files and,
as the public index's file host does, answers Range requests; it logs which files were asked
with a Range header and which were sent whole. pip and uv run as subprocesses against a real
server.
"""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.support.dists import wheel_bytes
from tests.support.server import BIN, Server
from tests.support.upstream import FakeUpstream, UpFile
from tests.e2e.test_mirror import eventually, mirror

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
_NOISE = random.Random(13)
#: 400 KiB of members that do not compress, after METADATA: a tail read is not the wheel, and
#: METADATA is far from the directory (the most requests a read takes).
PAD = {f"pad/{i}.py": _NOISE.randbytes(10240) for i in range(40)}


def _wheel(name: str, version: str, requires: list[str] | None = None, summary: str = "") -> UpFile:
    data = wheel_bytes(name, version, requires_dist=requires or [], summary=summary or f"{name} {version}",
                       extra_files=PAD)
    return UpFile(f"{name.replace('-', '_')}-{version}-py3-none-any.whl", data)  # no metadata file upstream


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    up.ranges = True
    up.add("cm-app", _wheel("cm-app", "1.0", ["cm-liba>=1", "cm-libb"]))
    # The resolver reads cm-liba 3.0's metadata, finds a dependency nobody has, and backtracks.
    up.add("cm-liba", _wheel("cm-liba", "1.0"), _wheel("cm-liba", "2.0"),
           _wheel("cm-liba", "3.0", ["cm-missing-everywhere>=1"]))
    up.add("cm-libb", _wheel("cm-libb", "1.0"))
    up.start()
    yield up
    up.stop()


INSTALLED = {"cm_app-1.0-py3-none-any.whl", "cm_liba-2.0-py3-none-any.whl", "cm_libb-1.0-py3-none-any.whl"}
REJECTED = "cm_liba-3.0-py3-none-any.whl"


def _pages_offer_metadata(base: str) -> None:
    page = httpx.get(f"{base}cm-liba/", headers=JSON).json()
    assert all(f["core-metadata"] for f in page["files"]), page  # offered, though the upstream has none


@pytest.mark.parametrize("client", ["uv", "pip"])
def test_cold_install_reads_metadata_with_ranges(fresh_server: Server, upstream: FakeUpstream, client: str,
                                                 client_env: dict[str, str], tmp_path: Path) -> None:
    base = mirror(fresh_server, upstream.url, "cm")
    _pages_offer_metadata(base)
    python = new_venv(tmp_path / "venv", client_env)
    if client == "uv":
        run([str(BIN / "uv"), "pip", "install", "--python", str(python), "--index-url", base, "cm-app"], client_env)
    else:
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", "--index-url", base,
             "cm-app"], client_env)
    listing = run([str(BIN / "uv"), "pip", "list", "--python", str(python)], client_env).stdout
    assert re.search(r"cm-liba\s+2\.0", listing), listing
    # Whole downloads: exactly what was installed. The rejected candidate was read by Range only.
    assert set(upstream.full_downloads) == INSTALLED, upstream.full_downloads
    assert REJECTED in upstream.range_requests
    assert REJECTED not in upstream.full_downloads
    assert len(upstream.range_requests) <= 3 * 4  # a few ranges per wheel, never a stream of them
    metrics = httpx.get(f"{fresh_server.url}/metrics").text
    assert 'wheelcave_mirror_metadata_total{index="cm",source="range"}' in metrics


def test_cold_compile_downloads_no_wheel(fresh_server: Server, upstream: FakeUpstream, client_env: dict[str, str],
                                         tmp_path: Path) -> None:
    base = mirror(fresh_server, upstream.url, "cm")
    (tmp_path / "req.in").write_text("cm-app\n")
    out = run([str(BIN / "uv"), "pip", "compile", "--no-header", "--index-url", base, str(tmp_path / "req.in")],
              client_env).stdout
    assert "cm-liba==2.0" in out and "cm-libb==1.0" in out, out
    assert upstream.full_downloads == []  # the resolution read metadata only
    assert REJECTED in upstream.range_requests
    # A second resolution asks the upstream nothing more for these files: the metadata is kept.
    before = len(upstream.range_requests)
    run([str(BIN / "uv"), "pip", "compile", "--no-header", "--no-cache", "--index-url", base, str(tmp_path / "req.in")],
        client_env)
    assert len(upstream.range_requests) == before
    # And the pages now list the hashes of the metadata read (1.0 was never asked: still "true").
    def hashed() -> dict[str, bool]:
        files = httpx.get(f"{base}cm-liba/", headers=JSON).json()["files"]
        return {f["filename"]: isinstance(f["core-metadata"], dict) for f in files}

    assert eventually(lambda: hashed() == {"cm_liba-1.0-py3-none-any.whl": False, "cm_liba-2.0-py3-none-any.whl": True,
                                           REJECTED: True}), hashed()


def test_upstream_ignoring_range_still_installs(fresh_server: Server, upstream: FakeUpstream,
                                                client_env: dict[str, str], tmp_path: Path) -> None:
    upstream.ranges = False
    base = mirror(fresh_server, upstream.url, "cm")
    python = new_venv(tmp_path / "venv", client_env)
    run([str(BIN / "uv"), "pip", "install", "--python", str(python), "--index-url", base, "cm-app"], client_env)
    assert INSTALLED <= set(upstream.full_downloads)
    assert REJECTED in upstream.full_downloads  # no other way to read its metadata
    (tmp_path / "req.in").write_text("cm-app\n")
    out = run([str(BIN / "uv"), "pip", "compile", "--no-header", "--no-cache", "--index-url", base,
               str(tmp_path / "req.in")], client_env).stdout
    assert "cm-liba==2.0" in out
    metrics = httpx.get(f"{fresh_server.url}/metrics").text
    assert 'wheelcave_mirror_metadata_total{index="cm",source="download"}' in metrics


def test_metadata_read_by_range_is_checked_when_the_wheel_arrives(
    fresh_server: Server, upstream: FakeUpstream, client_env: dict[str, str], tmp_path: Path,
) -> None:
    real = upstream.projects["cm-libb"][0]
    # Range answers come from another build of the same filename (the upstream replaced it).
    other = wheel_bytes("cm-libb", "1.0", summary="another build", extra_files=PAD)
    upstream.range_bytes[real.filename] = other
    base = mirror(fresh_server, upstream.url, "cm")
    entry = next(f for f in httpx.get(f"{base}cm-libb/", headers=JSON).json()["files"])
    url = httpx.URL(f"{base}cm-libb/").join(entry["url"])
    read = httpx.get(f"{url}.metadata")
    assert read.status_code == 200 and b"another build" in read.content
    wheel = httpx.get(url)
    assert wheel.status_code == 200 and hashlib.sha256(wheel.content).hexdigest() == real.sha256

    def corrected() -> bool:
        files = httpx.get(f"{base}cm-libb/", headers=JSON).json()["files"]
        meta = files[0]["core-metadata"]
        return isinstance(meta, dict) and meta["sha256"] != hashlib.sha256(read.content).hexdigest()

    assert eventually(corrected, 10)
    files = httpx.get(f"{base}cm-libb/", headers=JSON).json()["files"]
    now = httpx.get(f"{httpx.URL(f'{base}cm-libb/').join(files[0]['url'])}.metadata")
    assert b"another build" not in now.content and b"Summary: cm-libb 1.0" in now.content
    assert hashlib.sha256(now.content).hexdigest() == files[0]["core-metadata"]["sha256"]
    metrics = httpx.get(f"{fresh_server.url}/metrics").text
    assert 'wheelcave_mirror_metadata_total{index="cm",source="mismatch"} 1.0' in metrics
    assert "mirror.metadata_mismatch file=cm_libb-1.0-py3-none-any.whl" in fresh_server.log_path.read_text()


def _big(upstream: FakeUpstream, name: str) -> UpFile:
    import os

    f = UpFile(f"{name.replace('-', '_')}-1.0-py3-none-any.whl",
               wheel_bytes(name, "1.0", extra_files={f"{name.replace('-', '_')}/x.bin": os.urandom(20 * 2**20)}))
    upstream.add(name, f)
    return f


def test_range_during_the_first_download(fresh_server: Server, upstream: FakeUpstream) -> None:
    """A Range request for a file not cached yet gets 206 and only its bytes, the first of them
    while the upstream is still sending (no clock: the upstream's own progress tells)."""
    f = _big(upstream, "cm-big")
    upstream.throttle = 4 * 2**20  # 20 MB take 5 s
    base = mirror(fresh_server, upstream.url, "cm")
    entry = httpx.get(f"{base}cm-big/", headers=JSON).json()["files"][0]
    url = str(httpx.URL(f"{base}cm-big/").join(entry["url"]))
    got, sent_at_first_byte = b"", None
    with httpx.stream("GET", url, headers={"Range": "bytes=100-199999"}, timeout=60) as r:
        assert r.status_code == 206
        assert r.headers["content-range"] == f"bytes 100-199999/{len(f.data)}"
        assert r.headers["content-length"] == "199900"
        for chunk in r.iter_raw():
            if sent_at_first_byte is None:
                sent_at_first_byte = upstream.sent.get(f.filename, 0)
            got += chunk
    assert got == f.data[100:200000]
    assert sent_at_first_byte is not None and sent_at_first_byte < len(f.data) // 2, sent_at_first_byte
    # A suffix range and an unsatisfiable one, now from the cache; the file was fetched once.
    tail = httpx.get(url, headers={"Range": "bytes=-1000"})
    assert tail.status_code == 206 and tail.content == f.data[-1000:]
    assert httpx.get(url, headers={"Range": f"bytes={len(f.data) + 5}-"}).status_code == 416
    assert upstream.full_downloads.count(f.filename) == 1


def test_range_answer_never_completes_with_unchecked_bytes(fresh_server: Server, upstream: FakeUpstream) -> None:
    f = _big(upstream, "cm-bad")
    upstream.wrong_bytes = True  # the first byte differs: the hash fails at the end
    base = mirror(fresh_server, upstream.url, "cm")
    entry = httpx.get(f"{base}cm-bad/", headers=JSON).json()["files"][0]
    url = str(httpx.URL(f"{base}cm-bad/").join(entry["url"]))
    got = b""
    try:
        with httpx.stream("GET", url, headers={"Range": "bytes=0-999"}, timeout=60) as r:
            for chunk in r.iter_raw():
                got += chunk
    except httpx.HTTPError:
        pass  # the transfer was cut: what a client must see
    assert len(got) < 1000  # never the whole range: its last byte waited for the hash


def test_small_wheels_arrive_whole_with_their_metadata(fresh_server: Server, client_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    """A wheel no larger than the first Range request arrives whole when its metadata is read:
    it is kept (hash checked) as the cached file, so pip's download of it asks the upstream
    nothing; one request a wheel."""
    up = FakeUpstream()
    up.ranges = True
    up.add("cs-app", UpFile("cs_app-1.0-py3-none-any.whl", wheel_bytes("cs-app", "1.0", requires_dist=["cs-lib"])))
    up.add("cs-lib", UpFile("cs_lib-1.0-py3-none-any.whl", wheel_bytes("cs-lib", "1.0")))
    up.start()
    try:
        base = mirror(fresh_server, up.url, "cs")
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", "--index-url", base,
             "cs-app"], client_env)
        assert "cs-lib" in run([str(BIN / "uv"), "pip", "list", "--python", str(python)], client_env).stdout
        assert up.full_downloads == []
        assert sorted(up.range_requests) == ["cs_app-1.0-py3-none-any.whl", "cs_lib-1.0-py3-none-any.whl"]
        metrics = httpx.get(f"{fresh_server.url}/metrics").text
        assert 'wheelcave_mirror_files_total{index="cs",result="hit"} 2.0' in metrics
    finally:
        up.stop()


def test_small_wheel_of_other_bytes_is_not_kept(fresh_server: Server, upstream: FakeUpstream) -> None:
    """Range answers of a small wheel that are not the file the page lists (its sha256): no
    metadata from them and nothing cached; the wheel itself still downloads, checked."""
    real = UpFile("cm_tiny-1.0-py3-none-any.whl", wheel_bytes("cm-tiny", "1.0"))
    upstream.add("cm-tiny", real)
    upstream.range_bytes[real.filename] = wheel_bytes("cm-tiny", "1.0", summary="another build")
    base = mirror(fresh_server, upstream.url, "cm")
    entry = httpx.get(f"{base}cm-tiny/", headers=JSON).json()["files"][0]
    url = httpx.URL(f"{base}cm-tiny/").join(entry["url"])
    refused = httpx.get(f"{url}.metadata")
    assert refused.status_code == 502 and "sha256" in refused.text
    assert upstream.full_downloads == []
    wheel = httpx.get(url)
    assert wheel.status_code == 200 and wheel.content == real.data
    assert upstream.full_downloads == [real.filename]
    meta = httpx.get(f"{url}.metadata")  # now from the wheel itself
    assert meta.status_code == 200 and b"another build" not in meta.content


def test_a_first_page_answers_again_and_lists_before_its_rows(fresh_server: Server, upstream: FakeUpstream) -> None:
    """A first fetch's record waits for a pause in the mirror's fetching; meanwhile the page is
    answered from memory (not fetched again), the project list shows it, and the record lands
    (its listing: no file rows until a client asks for a file)."""
    upstream.add("cm-early", _wheel("cm-early", "1.0"))
    base = mirror(fresh_server, upstream.url, "ce")
    first = httpx.get(f"{base}cm-early/", headers=JSON).json()
    assert httpx.get(f"{base}cm-early/", headers=JSON).json()["files"] == first["files"]
    assert upstream.count("GET /simple/cm-early/") == 1
    assert "cm-early" in {p["name"] for p in httpx.get(base, headers=JSON).json()["projects"]}

    def listed() -> tuple[int | None, int]:
        db = sqlite3.connect(fresh_server.data_dir / "wheelcave.db")
        try:
            page = db.execute("SELECT listed FROM mirror_pages WHERE project = 'cm-early'").fetchone()
            rows = db.execute("SELECT count(*) FROM files JOIN projects ON projects.id = files.project_id "
                              "WHERE projects.name = 'cm-early'").fetchone()[0]
            return (page[0] if page else None), rows
        finally:
            db.close()

    assert eventually(lambda: listed() == (1, 0), 10)  # no fetch follows: written after a short pause
