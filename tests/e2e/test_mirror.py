"""Mirror indexes against real upstreams on 127.0.0.1 (issue #3 acceptance 1-5, 7): a fault-
injecting fake index, and another wheelcave (a two-level chain)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.conftest import database_url_for, new_venv, run
from tests.support.dists import build_with_hatchling, make_sdist, wheel_bytes
from tests.support.server import Server
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
T = TypeVar("T")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def mirror(server: Server, upstream_url: str, name: str = "up", *extra: str) -> str:
    server.cli("index", "create", name, "--kind", "mirror", "--upstream", upstream_url, *extra)
    server.wait_for_index(name)
    return f"{server.url}/index/{name}/simple/"


def eventually(probe: Callable[[], T], seconds: float = 3.0) -> T:
    """The probe's first truthy answer within ``seconds`` (its last answer otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def json_page(upstream: FakeUpstream, project: str, files: list[dict[str, object]]) -> None:
    """Make the fake upstream answer ``project``'s page with exactly these PEP 691 entries."""
    doc = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
    upstream.raw_pages[project] = (json.dumps(doc).encode(), "application/vnd.pypi.simple.v1+json")


def small_wheel(name: str, version: str, **kw: object) -> UpFile:
    data = wheel_bytes(name, version, **kw)  # type: ignore[arg-type]
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA")))
    return UpFile(f"{name.replace('-', '_')}-{version}-py3-none-any.whl", data, metadata=meta)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_pages_rewritten_and_files_cached(backend: str, request: pytest.FixtureRequest, tmp_path: Path, upstream: FakeUpstream) -> None:
    f1, f2 = small_wheel("mir-basic", "1.0"), small_wheel("mir-basic", "2.0")
    f1.yanked = "bad one"
    f2.requires_python = ">=3.8"
    upstream.add("mir-basic", f1, f2)
    srv = Server(tmp_path / "data", database_url_for(backend, request)).start()
    try:
        base = mirror(srv, upstream.url)
        page = httpx.get(f"{base}mir-basic/", headers=JSON).json()
        files = {f["filename"]: f for f in page["files"]}
        assert files[f1.filename]["yanked"] == "bad one"
        assert files[f2.filename]["requires-python"] == ">=3.8"
        assert files[f2.filename]["size"] == len(f2.data)
        assert files[f2.filename]["upload-time"].endswith("Z")
        assert files[f2.filename]["core-metadata"] == {"sha256": hashlib.sha256(f2.metadata or b"").hexdigest()}
        assert all(f["url"].startswith("../../../../files/sha256/") for f in page["files"])
        assert str(upstream.port) not in httpx.get(f"{base}mir-basic/").text  # nothing points upstream
        url = httpx.URL(f"{base}mir-basic/").join(files[f2.filename]["url"])
        assert httpx.get(url).content == f2.data
        assert httpx.get(f"{url}.metadata").content == f2.metadata
        assert httpx.get(url).content == f2.data  # now from the cache
        assert upstream.count(f"GET /files/{f2.filename}") == 1
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'wheelcave_mirror_files_total{index="up",result="hit"} 1.0' in metrics
        assert 'wheelcave_mirror_pages_total{index="up",result="fetched"} 1.0' in metrics
        # The page is fresh for the ttl: a second look does not ask the upstream.
        before = upstream.count("GET /simple/mir-basic/")
        httpx.get(f"{base}mir-basic/", headers={"Accept": "text/html"})
        assert upstream.count("GET /simple/mir-basic/") == before
    finally:
        srv.stop()


def test_metadata_extracted_when_upstream_has_none(fresh_server: Server, upstream: FakeUpstream) -> None:
    f = small_wheel("mir-nometa", "1.0")
    meta = f.metadata
    f.metadata = None  # the upstream advertises and serves no .metadata
    upstream.add("mir-nometa", f)
    base = mirror(fresh_server, upstream.url, "up", "--ttl", "0")
    entry = httpx.get(f"{base}mir-nometa/", headers=JSON).json()["files"][0]
    assert entry["core-metadata"] is True  # offered before anything is known (issue 13)
    url = httpx.URL(f"{base}mir-nometa/").join(entry["url"])
    assert httpx.get(url).content == f.data
    # Once the wheel is cached, its metadata is extracted and listed with its hash.
    def listed_hash() -> dict[str, str] | None:
        meta = httpx.get(f"{base}mir-nometa/", headers=JSON).json()["files"][0]["core-metadata"]
        return meta if isinstance(meta, dict) else None

    entry = eventually(listed_hash)
    assert entry == {"sha256": hashlib.sha256(meta or b"").hexdigest()}
    assert httpx.get(f"{url}.metadata").content == meta


def test_an_https_upstream_through_the_servers_own_loop(tmp_path: Path, client_env: dict[str, str]) -> None:
    """The server (uvloop) mirrors an HTTPS upstream on the asyncio-streams backend
    (upstream/streams.py): pip installs, the metadata comes by Range over TLS; a server that does
    not trust the upstream's certificate answers 502 and asks nothing over the connection."""
    from tests.support.tls import make_certificate

    tls = make_certificate(tmp_path)
    up = FakeUpstream()
    up.ranges = True
    f = small_wheel("mir-tls", "1.0")
    f.metadata = None  # read from the wheel with Range requests
    up.add("mir-tls", f)
    up.start(tls)
    trusting = Server(tmp_path / "trusting", extra_env={"PIP_INDEX_URL": up.url, "SSL_CERT_FILE": str(tls[0])}).start()
    doubting = Server(tmp_path / "doubting", extra_env={"PIP_INDEX_URL": up.url}).start()
    try:
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
             "--index-url", f"{trusting.url}/simple/", "mir-tls"], client_env)
        run([str(python), "-c", "import mir_tls"], client_env)
        # A wheel this small arrives whole in the first Range read and is kept as the cached file.
        assert (up.range_requests, up.full_downloads) == ([f.filename], [])
        asked = len(up.requests)
        r = httpx.get(f"{doubting.url}/simple/mir-tls/", timeout=60)
        assert r.status_code == 502 and "certificate" in r.text.lower(), r.text
        assert len(up.requests) == asked
    finally:
        trusting.stop()
        doubting.stop()
        up.stop()


def test_first_answer_is_the_stored_page(tmp_path: Path, upstream: FakeUpstream) -> None:
    """A first fetch is answered from the parsed upstream page, without reading the new rows
    back: that answer must be byte for byte what the rows give once read (after a restart,
    within the TTL, nothing is fetched again). The page carries every field a row stores:
    yanked, requires-python, metadata, an upload time given in another time zone, a file
    without a sha256 (not listed) and a filename listed twice (the first kept)."""
    good = [small_wheel("mir-first", f"1.{i}") for i in range(3)]
    good[0].yanked = "broken"
    good[1].requires_python = ">=3.9"
    good[2].metadata = None
    up = f"http://127.0.0.1:{upstream.port}"
    files = [
        {"filename": f.filename, "url": f"{up}/files/{f.filename}", "hashes": {"sha256": f.sha256},
         "size": len(f.data), "upload-time": "2026-01-02T05:04:05.123456+02:00",
         "requires-python": f.requires_python, "yanked": f.yanked or False,
         "core-metadata": {"sha256": hashlib.sha256(f.metadata).hexdigest()} if f.metadata else False}
        for f in good
    ]
    files.append({**files[0], "hashes": {"sha256": "0" * 64}})  # the same filename again: ignored
    files.append({"filename": "mir_first-9.0-py3-none-any.whl", "url": f"{up}/files/x.whl", "hashes": {}})
    json_page(upstream, "mir-first", files)
    srv = Server(tmp_path / "data").start()
    try:
        base = mirror(srv, upstream.url)
        first_json = httpx.get(f"{base}mir-first/", headers=JSON)
        first_html = httpx.get(f"{base}mir-first/")
        listed = first_json.json()["files"]
        assert [f["filename"] for f in listed] == [f.filename for f in good]
        assert listed[0]["hashes"]["sha256"] == good[0].sha256
        assert listed[0]["upload-time"] == "2026-01-02T03:04:05.123456Z"
        srv.restart()
        assert httpx.get(f"{base}mir-first/", headers=JSON).content == first_json.content
        assert httpx.get(f"{base}mir-first/").content == first_html.content
        assert upstream.count("GET /simple/mir-first/") == 1
    finally:
        srv.stop()


def test_early_answer_serves_files_before_rows_are_written(tmp_path: Path, upstream: FakeUpstream) -> None:
    """On the embedded default (SQLite, one worker) a first fetch is answered before its rows
    are written; a client asking for a listed file's .metadata and bytes right after gets
    them from what the page listed. A page of 30,000 files keeps the rows pending long
    enough (a quarter of a second or more here) for both requests to land meanwhile; the
    metrics say they took that path. Afterwards the rows are there (the restart serves the
    same page and the cached file without asking the upstream)."""
    real = small_wheel("mir-early", "1.0")
    up = f"http://127.0.0.1:{upstream.port}"
    meta_sha = hashlib.sha256(real.metadata or b"").hexdigest()
    files = [{"filename": f"mir_early-0.{i}-py3-none-any.whl", "url": f"{up}/files/none-{i}.whl",
              "hashes": {"sha256": hashlib.sha256(str(i).encode()).hexdigest()}} for i in range(30_000)]
    files.append({"filename": real.filename, "url": f"{up}/files/{real.filename}", "hashes": {"sha256": real.sha256},
                  "core-metadata": {"sha256": meta_sha}, "size": len(real.data)})
    upstream.projects["mir-early"] = [real]  # so the fake serves its bytes and metadata
    json_page(upstream, "mir-early", files)
    srv = Server(tmp_path / "data").start()
    try:
        base = mirror(srv, upstream.url)
        page = httpx.get(f"{base}mir-early/", headers=JSON, timeout=60)
        entry = page.json()["files"][-1]
        url = httpx.URL(f"{base}mir-early/").join(entry["url"])
        with httpx.Client(timeout=30) as client:
            meta = client.get(f"{url}.metadata")
            data = client.get(url)
        assert meta.status_code == 200 and hashlib.sha256(meta.content).hexdigest() == meta_sha
        assert data.status_code == 200 and data.content == real.data
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'wheelcave_mirror_pages_total{index="up",result="early"} 1.0' in metrics
        # Whether the two requests landed while the rows were still being written depends on
        # timing (under load the rows can be done first): either path must give the same bytes.
        pending = re.search(r'wheelcave_mirror_files_total\{index="up",result="pending"\} ([\d.]+)', metrics)
        assert pending is None or float(pending.group(1)) <= 2.0
        srv.restart()
        assert httpx.get(f"{base}mir-early/", headers=JSON, timeout=60).content == page.content
        assert httpx.get(url).content == real.data
        assert upstream.count("GET /simple/mir-early/") == 1
        assert upstream.count(f"GET /files/{real.filename}") == 1
    finally:
        srv.stop()


def test_html_only_upstream(fresh_server: Server, upstream: FakeUpstream, tmp_path: Path, client_env: dict[str, str]) -> None:
    upstream.html_only = True
    f = small_wheel("mir-html", "1.0")
    f.yanked = True
    g = small_wheel("mir-html", "1.1")
    upstream.add("mir-html", f, g)
    base = mirror(fresh_server, upstream.url)
    page = httpx.get(f"{base}mir-html/", headers=JSON).json()
    files = {x["filename"]: x for x in page["files"]}
    assert files[f.filename]["yanked"] is True
    assert "size" not in files[g.filename]  # an HTML upstream does not say
    python = new_venv(tmp_path / "venv", client_env)
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url", base, "mir-html"], client_env)
    # The size is learned once the download is committed (just after the last byte is sent).
    assert eventually(lambda: {x["filename"]: x for x in httpx.get(f"{base}mir-html/", headers=JSON).json()["files"]}[g.filename].get("size")) == len(g.data)


def test_stale_page_when_upstream_fails_and_502_for_unknown(fresh_server: Server, upstream: FakeUpstream, tmp_path: Path, client_env: dict[str, str]) -> None:
    f = small_wheel("mir-stale", "1.0")
    upstream.add("mir-stale", f)
    base = mirror(fresh_server, upstream.url, "up", "--ttl", "0")
    python = new_venv(tmp_path / "venv", client_env)
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", "--index-url", base]
    run([*pip, "mir-stale"], client_env)
    for fault in ("status", "stop", "delay"):
        if fault == "status":
            upstream.status = 500
        elif fault == "stop":
            upstream.stop()
        r = httpx.get(f"{base}mir-stale/", headers=JSON, timeout=60)
        assert r.status_code == 200, fault
        assert r.json()["files"][0]["filename"] == f.filename
        run([*pip, "--force-reinstall", "mir-stale"], client_env)
    r = httpx.get(f"{base}never-seen/", timeout=40)  # the client's deadline bounds the wait
    assert r.status_code in {502, 504}
    assert "upstream" in r.text
    assert "stale" in httpx.get(f"{fresh_server.url}/metrics").text


def test_a_page_stored_by_another_process_is_served_when_the_upstream_fails(fresh_server: Server, upstream: FakeUpstream) -> None:
    """The server takes a name it never stored a page of as new without asking the database
    (indexes/known.py); when the upstream then fails, it looks after all: a page another process
    stored meanwhile (here ``wheelcave index refresh``) is served stale, not a 502."""
    upstream.add("mir-first", small_wheel("mir-first", "1.0"))
    upstream.add("mir-other", small_wheel("mir-other", "1.0"))
    base = mirror(fresh_server, upstream.url, "up")
    assert httpx.get(f"{base}mir-first/", headers=JSON).status_code == 200  # the server has read its names
    assert fresh_server.cli("index", "refresh", "up", "mir-other").stdout.strip() == "refreshed mir-other"
    upstream.status = 500
    r = httpx.get(f"{base}mir-other/", headers=JSON, timeout=60)
    assert r.status_code == 200, r.text
    assert [f["filename"] for f in r.json()["files"]] == ["mir_other-1.0-py3-none-any.whl"]
    assert httpx.get(f"{base}never-stored/", timeout=60).status_code == 502  # nothing to fall back on


def test_timeout_gives_504_quickly(fresh_server: Server, upstream: FakeUpstream) -> None:
    fresh_server.cli("index", "create", "slow", "--kind", "mirror", "--upstream", upstream.url, "--timeout", "1")
    fresh_server.wait_for_index("slow", timeout=1)
    upstream.delay = 30
    # The server's 1 s timeout answers long before this client's own 15 s deadline (which would
    # raise) and the upstream's 30 s delay: a bound, not a timing measurement.
    r = httpx.get(f"{fresh_server.url}/index/slow/simple/anything/", timeout=15)
    assert r.status_code == 504
    assert r.text.strip() == f"upstream {upstream.url}anything/ did not answer in time"
    upstream.delay = 0


def test_removed_upstream_file_stays_while_cached(fresh_server: Server, upstream: FakeUpstream, tmp_path: Path, client_env: dict[str, str]) -> None:
    old, new = small_wheel("mir-gone", "1.0"), small_wheel("mir-gone", "2.0")
    upstream.add("mir-gone", old, new)
    base = mirror(fresh_server, upstream.url, "up", "--ttl", "0")
    python = new_venv(tmp_path / "venv", client_env)
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", "--index-url", base]
    run([*pip, "mir-gone==1.0"], client_env)
    upstream.projects["mir-gone"] = [new]  # the upstream drops 1.0
    names = {f["filename"] for f in httpx.get(f"{base}mir-gone/", headers=JSON).json()["files"]}
    assert names == {old.filename, new.filename}  # 1.0 is cached: still listed
    run([*pip, "--force-reinstall", "mir-gone==1.0"], client_env)
    del upstream.projects["mir-gone"]  # ... and then the whole project
    names = {f["filename"] for f in httpx.get(f"{base}mir-gone/", headers=JSON).json()["files"]}
    assert names == {old.filename}  # 2.0 was never cached
    run([*pip, "--force-reinstall", "mir-gone==1.0"], client_env)


def test_concurrent_clients_one_download(fresh_server: Server, upstream: FakeUpstream) -> None:
    big = UpFile("mir_big-1.0-py3-none-any.whl", wheel_bytes("mir-big", "1.0", extra_files={"mir_big/blob.bin": os.urandom(50 * 2**20)}))
    upstream.add("mir-big", big)
    upstream.throttle = 100 * 2**20  # slow enough that all 20 ask while it downloads
    base = mirror(fresh_server, upstream.url)
    entry = httpx.get(f"{base}mir-big/", headers=JSON).json()["files"][0]
    url = str(httpx.URL(f"{base}mir-big/").join(entry["url"]))

    def fetch(_: int) -> str:
        return hashlib.sha256(httpx.get(url, timeout=120).content).hexdigest()

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        digests = list(pool.map(fetch, range(20)))
    assert digests == [big.sha256] * 20
    assert upstream.count(f"GET /files/{big.filename}") == 1


@pytest.mark.parametrize("fault", ["wrong_bytes", "drop_files"])
def test_bad_transfer_keeps_nothing(fresh_server: Server, upstream: FakeUpstream, fault: str) -> None:
    f = UpFile("mir_bad-1.0-py3-none-any.whl", wheel_bytes("mir-bad", "1.0", extra_files={"mir_bad/x.bin": os.urandom(2 * 2**20)}))
    upstream.add("mir-bad", f)
    setattr(upstream, fault, True)
    base = mirror(fresh_server, upstream.url)
    entry = httpx.get(f"{base}mir-bad/", headers=JSON).json()["files"][0]
    url = str(httpx.URL(f"{base}mir-bad/").join(entry["url"]))
    with pytest.raises(httpx.HTTPError):
        r = httpx.get(url, timeout=60)
        r.raise_for_status()
        assert hashlib.sha256(r.content).hexdigest() == f.sha256  # never reached: the transfer fails
    sha = f.sha256
    assert not (fresh_server.data_dir / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha).exists()
    assert list((fresh_server.data_dir / "blobs" / "tmp").iterdir()) == []
    setattr(upstream, fault, False)
    assert hashlib.sha256(httpx.get(url, timeout=60).content).hexdigest() == sha  # a retry works


def test_first_byte_streams_before_download_ends(fresh_server: Server, upstream: FakeUpstream) -> None:
    f = UpFile("mir_stream-1.0-py3-none-any.whl", wheel_bytes("mir-stream", "1.0", extra_files={"mir_stream/x.bin": os.urandom(50 * 2**20)}))
    upstream.add("mir-stream", f)
    upstream.throttle = 5 * 2**20  # 5 MB/s: the whole file takes 10 s
    base = mirror(fresh_server, upstream.url)
    entry = httpx.get(f"{base}mir-stream/", headers=JSON).json()["files"][0]
    url = str(httpx.URL(f"{base}mir-stream/").join(entry["url"]))
    digest = hashlib.sha256()
    sent_at_first_byte = None
    with httpx.stream("GET", url, timeout=60) as r:
        for chunk in r.iter_raw():
            if sent_at_first_byte is None:
                sent_at_first_byte = upstream.sent.get(f.filename, 0)
            digest.update(chunk)
    assert digest.hexdigest() == f.sha256
    # the client had bytes while the upstream was still sending (no clock needed to tell)
    assert sent_at_first_byte is not None and sent_at_first_byte < len(f.data) // 2, sent_at_first_byte


@pytest.mark.parametrize(
    ("page", "content_type"),
    [
        (b"<html><body><a href='", "text/html"),
        (b'{"files": "not a list"}', "application/vnd.pypi.simple.v1+json"),
        (b'{"files": [{"filename": 3, "url": null}, {"filename": "../../evil-1.0-py3-none-any.whl", "url": "x", "hashes": {}}]}',
         "application/vnd.pypi.simple.v1+json"),
        (b'<a href="file:///etc/passwd#sha256=' + b"0" * 64 + b'">mir_junk-1.0-py3-none-any.whl</a>', "text/html"),
        (b'<a href="../x/../../mir_junk-1.0.tar.gz/../etc#sha256=' + b"0" * 64 + b'">x</a>', "text/html"),
        (b"{" + b" " * (10 * 2**20) + b"}", "application/vnd.pypi.simple.v1+json"),
    ],
    ids=["malformed-html", "json-wrong-types", "json-bad-entries", "foreign-scheme", "dotdot-url", "10mb-page"],
)
def test_bad_upstream_data_never_poisons(fresh_server: Server, upstream: FakeUpstream, page: bytes, content_type: str) -> None:
    good = small_wheel("mir-junk", "1.0")
    upstream.add("mir-junk", good)
    base = mirror(fresh_server, upstream.url, "up", "--ttl", "0")
    assert httpx.get(f"{base}mir-junk/", headers=JSON).status_code == 200  # a good page is cached
    upstream.raw_pages["mir-junk"] = (page, content_type)
    r = httpx.get(f"{base}mir-junk/", headers=JSON, timeout=60)
    assert r.status_code == 200
    assert [f["filename"] for f in r.json()["files"]] == [good.filename]  # still the good page
    # A project seen only with bad data: a clear 502 or an empty page, never a crash.
    upstream.raw_pages["mir-other"] = (page, content_type)
    r = httpx.get(f"{base}mir-other/", headers=JSON, timeout=60)
    assert r.status_code in {200, 404, 502}
    if r.status_code == 200:
        assert r.json()["files"] == []
    assert httpx.get(f"{fresh_server.url}/health").status_code == 200


def test_two_level_chain(tmp_path: Path, client_env: dict[str, str]) -> None:
    """pip installs through B whose upstream is A; A stops; installs keep working, also after
    B restarts (issue #3 acceptance 2)."""
    a = Server(tmp_path / "a").start()
    b: Server | None = None
    try:
        auth = ("admin", a.admin_password)
        dists = [
            build_with_hatchling(tmp_path, "chain-base", "1.0", requires_python=">=3.8"),
            make_sdist(tmp_path, "chain-sd", "1.0"),
            build_with_hatchling(tmp_path, "chain-top", "2.0", dependencies=["chain-base", "chain-sd"]),
        ]
        for d in dists:
            assert upload(f"{a.url}/legacy/", d, auth=auth).status_code == 200
        a.cli("yank", "local", "chain-base", "1.0", "--reason", "kept for the chain test")
        b = Server(tmp_path / "b", extra_env={"PIP_INDEX_URL": f"{a.url}/simple/"}).start()
        b.cli("index", "update", "pypi", "--ttl", "0")  # revalidate on every request
        b.wait_for_index("pypi", ttl=0)

        def install(venv: str) -> None:
            python = new_venv(tmp_path / venv, client_env)
            run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
                 "--index-url", f"{b.url}/simple/", "chain-top", "chain-base==1.0"], client_env)
            run([str(python), "-c", "import chain_top, chain_base, chain_sd"], client_env)

        install("v1")
        for project in ("chain-base", "chain-top", "chain-sd"):
            pa = httpx.get(f"{a.url}/simple/{project}/", headers=JSON).json()
            pb = httpx.get(f"{b.url}/simple/{project}/", headers=JSON).json()
            strip = lambda page: [{k: v for k, v in f.items() if k != "url"} for f in page["files"]]  # noqa: E731
            assert strip(pa) == strip(pb), project
        a.stop()
        install("v2")
        b.restart()
        install("v3")
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_private_upstream_with_credentials(tmp_path: Path, client_env: dict[str, str]) -> None:
    a = Server(tmp_path / "a", extra_env={"WHEELCAVE_AUTH_ANONYMOUS_READ": "false"}).start()
    b = Server(tmp_path / "b").start()
    try:
        wheel = tmp_path / "priv_up-1.0-py3-none-any.whl"
        wheel.write_bytes(wheel_bytes("priv-up", "1.0"))
        assert upload(f"{a.url}/legacy/", wheel, auth=("admin", a.admin_password)).status_code == 200
        token = a.create_token()
        base = mirror(b, f"http://__token__:{token}@127.0.0.1:{a.port}/simple/", "team")
        assert token not in b.cli("index", "list").stdout  # the secret is masked in listings
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url", base, "priv-up"], client_env)
        wrong = mirror(b, f"http://__token__:wrong@127.0.0.1:{a.port}/simple/", "wrong")
        r = httpx.get(f"{wrong}priv-up/")
        assert r.status_code == 502 and "401" in r.text
    finally:
        a.stop()
        b.stop()


def test_revalidation_uses_etags_and_refresh_command(fresh_server: Server, upstream: FakeUpstream) -> None:
    upstream.add("mir-etag", small_wheel("mir-etag", "1.0"))
    base = mirror(fresh_server, upstream.url, "up", "--ttl", "0")
    for _ in range(3):
        assert httpx.get(f"{base}mir-etag/", headers=JSON).status_code == 200
    assert 'wheelcave_mirror_pages_total{index="up",result="revalidated"} 2.0' in httpx.get(f"{fresh_server.url}/metrics").text
    upstream.add("mir-etag", small_wheel("mir-etag", "2.0"))
    fresh_server.cli("index", "update", "up", "--ttl", "3600")
    assert fresh_server.cli("index", "refresh", "up", "mir-etag").stdout.strip() == "refreshed mir-etag"
    fresh_server.wait_for_index("up", ttl=3600)
    names = eventually(lambda: {f["filename"] for f in httpx.get(f"{base}mir-etag/", headers=JSON).json()["files"]}
                       & {"mir_etag-2.0-py3-none-any.whl"})
    assert names == {"mir_etag-2.0-py3-none-any.whl"}


def test_offline_mirror_never_asks(fresh_server: Server, upstream: FakeUpstream) -> None:
    upstream.add("mir-off", small_wheel("mir-off", "1.0"))
    base = mirror(fresh_server, upstream.url, "up", "--ttl", "0")
    entry = httpx.get(f"{base}mir-off/", headers=JSON).json()["files"][0]
    fresh_server.cli("index", "update", "up", "--offline")
    fresh_server.wait_for_index("up", offline=True)
    before = len(upstream.requests)
    assert httpx.get(f"{base}mir-off/", headers=JSON).status_code == 200
    assert httpx.get(f"{base}unknown-here/").status_code == 404
    url = httpx.URL(f"{base}mir-off/").join(entry["url"])
    assert httpx.get(url).status_code == 404  # not cached, and offline
    assert len(upstream.requests) == before


def test_private_names_never_go_upstream(tmp_path: Path, upstream: FakeUpstream, client_env: dict[str, str]) -> None:
    """The minimal virtual rule: a project in ``local`` is not looked up in ``pypi``."""
    upstream.add("acme-utils", small_wheel("acme-utils", "99.0"))
    upstream.add("public-thing", small_wheel("public-thing", "1.0"))
    srv = Server(tmp_path / "data", extra_env={"PIP_INDEX_URL": upstream.url}).start()
    try:
        wheel = tmp_path / "acme_utils-1.0-py3-none-any.whl"
        wheel.write_bytes(wheel_bytes("acme-utils", "1.0"))
        assert upload(f"{srv.url}/legacy/", wheel, auth=("admin", srv.admin_password)).status_code == 200
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--index-url", f"{srv.url}/simple/",
             "acme-utils", "public-thing"], client_env)
        out = run([str(python), "-c", "import acme_utils; print(acme_utils.VERSION)"], client_env).stdout
        assert out.strip() == "1.0"
        assert not [r for r in upstream.requests if "acme" in r]
        assert upstream.count("GET /simple/public-thing/") == 1
    finally:
        srv.stop()
