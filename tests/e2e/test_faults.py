"""Issue 10: faults and worst-form inputs against a real server, each a regression test of a
defect found (wrong bytes as a complete 200, Range parsing, oversized request heads, ...)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.support.dists import make_wheel, wheel_bytes
from tests.support.server import BIN, Server
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def test_wrong_bytes_are_never_a_complete_answer(fresh_server: Server, upstream: FakeUpstream) -> None:
    """Defect 10.1: with an upstream sending bytes that do not match the listed sha256, no
    client of ten (the first and every follower) gets a complete 200 body."""
    f = UpFile("fa_wrong-1.0-py3-none-any.whl", wheel_bytes("fa-wrong", "1.0", extra_files={"fa_wrong/x.bin": os.urandom(3 * 2**20)}))
    upstream.add("fa-wrong", f)
    upstream.wrong_bytes = True
    upstream.throttle = 4 * 2**20  # slow enough that the ten overlap
    fresh_server.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url)
    fresh_server.wait_for_index("up")
    base = f"{fresh_server.url}/index/up/simple/"
    entry = httpx.get(f"{base}fa-wrong/", headers=JSON).json()["files"][0]
    url = str(httpx.URL(f"{base}fa-wrong/").join(entry["url"]))

    def fetch(_: int) -> tuple[int, int] | str:
        try:
            r = httpx.get(url, timeout=60)
            return r.status_code, len(r.content)
        except httpx.HTTPError as exc:
            return type(exc).__name__

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(fetch, range(10)))
    complete = [r for r in results if isinstance(r, tuple) and r[0] == 200 and r[1] == len(f.data)]
    assert complete == [], results
    upstream.wrong_bytes = False
    upstream.throttle = None
    assert hashlib.sha256(httpx.get(url, timeout=60).content).hexdigest() == f.sha256


@pytest.fixture(scope="module")
def hosted_file(server: Server, admin: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    wheel = make_wheel(tmp_path_factory.mktemp("range"), "fa-range", "1.0")
    assert upload(f"{server.url}/legacy/", wheel, auth=admin).status_code == 200
    files = httpx.get(f"{server.url}/simple/fa-range/", headers=JSON).json()["files"]
    return str(httpx.URL(f"{server.url}/simple/fa-range/").join(files[0]["url"])), wheel.read_bytes()


@pytest.mark.parametrize(("header", "status", "part"), [
    ("bytes=0-9", 206, slice(0, 10)),
    ("bytes=-10", 206, slice(-10, None)),
    ("bytes=5-", 206, slice(5, None)),
    ("bytes=5-2", 200, slice(None)),  # an invalid range-spec: ignored (RFC 9110), not 416
    ("bytes=0-9,20-29", 200, slice(None)),  # several ranges: the whole file
    ("bytes=" + "9" * 5000 + "-", 416, None),  # was a 500 with a traceback
    ("bytes=0-" + "9" * 5000, 206, slice(None)),
    ("bytes=-" + "9" * 5000, 206, slice(None)),
    ("bytes=-0", 416, None),
    ("bytes=99999999999999999999-", 416, None),
    ("bits=0-9", 200, slice(None)),
    ("bytes=x-y", 200, slice(None)),
])
def test_range_headers_in_every_form(hosted_file: tuple[str, bytes], header: str, status: int, part: slice | None) -> None:
    """Defect 10.6: Range headers in every form (5,000-digit bounds were a 500, bytes=5-2 a 416)."""
    url, data = hosted_file
    r = httpx.get(url, headers={"Range": header})
    assert r.status_code == status, (header[:30], r.status_code, r.text[:200])
    if part is not None:
        assert r.content == data[part]
    else:
        assert r.headers["content-range"] == f"bytes */{len(data)}"


def _raw(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
        except OSError:
            pass  # the server may close before it has read everything: its answer is what counts
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("head", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (10 * 2**20) + b"\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(20_000)) + b"\r\n",
    b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["10 MB header", "20,000 headers", "200 KB URL"])
def test_oversized_request_heads_get_431(server: Server, head: bytes) -> None:
    """Defect 10.6: request heads of 10 MB, 20,000 headers or a 200 KB URL get 431 as the bytes arrive; the server goes on serving."""
    answer = _raw(server.port, head)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert httpx.get(f"{server.url}/health").status_code == 200
    # a request just within the limits is fine
    headers = {f"x-h{i}": "v" * 500 for i in range(60)}
    assert httpx.get(f"{server.url}/health", headers=headers).status_code == 200


def _json_page(upstream: FakeUpstream, project: str, files: list[dict[str, object]]) -> None:
    import json

    doc = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
    upstream.raw_pages[project] = (json.dumps(doc).encode(), "application/vnd.pypi.simple.v1+json")


def test_small_wrong_answers(fresh_server: Server, upstream: FakeUpstream) -> None:
    """Defect 10.11: the JSON API when a cooldown hides every file (was a 500); `check` on a
    mirror with listed-but-uncached files (was "blob missing", exit 1); an upstream filename
    with '#' is never a link that loses its tail (such names are not valid distribution names:
    dropped; every link's filename is percent-encoded, see core.pages.files_url)."""
    srv = fresh_server
    fresh = UpFile("fa_fresh-1.0-py3-none-any.whl", wheel_bytes("fa-fresh", "1.0"))
    odd = UpFile("fa_odd-1.0#x.tar.gz", b"not really an sdist")
    upstream.add("fa-fresh", fresh)
    good = UpFile("fa_odd-1.0+local.1-py3-none-any.whl", wheel_bytes("fa-odd", "1.0+local.1"))
    _json_page(upstream, "fa-odd", [
        {"filename": odd.filename, "url": "../../files/fa_odd-1.0%23x.tar.gz", "hashes": {"sha256": odd.sha256}},
        {"filename": good.filename, "url": f"../../files/{good.filename}", "hashes": {"sha256": good.sha256}},
    ])
    upstream.add("fa-odd-files", odd, good)
    srv.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url, "--cooldown", "7d")
    srv.wait_for_index("up")
    r = httpx.get(f"{srv.url}/index/up/pypi/fa-fresh/json")
    assert r.status_code == 404 and "lists no file" in r.text
    assert httpx.get(f"{srv.url}/index/up/no-cooldown/simple/fa-fresh/", headers=JSON).status_code == 200
    page = httpx.get(f"{srv.url}/index/up/no-cooldown/simple/fa-odd/", headers=JSON).json()
    assert [f["filename"] for f in page["files"]] == [good.filename]
    url = str(httpx.URL(f"{srv.url}/index/up/no-cooldown/simple/fa-odd/").join(page["files"][0]["url"]))
    assert url.endswith("/fa_odd-1.0+local.1-py3-none-any.whl")
    r = srv.cli("check")
    assert r.returncode == 0, r.stderr
    assert "0 files with their bytes, 2 mirror files listed and not cached yet" in r.stderr
    assert hashlib.sha256(httpx.get(url, timeout=30).content).hexdigest() == good.sha256
    r = srv.cli("check")
    assert "1 files with their bytes, 1 mirror files listed and not cached yet" in r.stderr


def test_public_url_is_used_instead_of_the_host_header(tmp_path: Path) -> None:
    """Defect 10.11: with [server] public_url, absolute URLs never reflect a client's Host."""
    srv = Server(tmp_path / "data", extra_env={"WHEELCAVE_SERVER_PUBLIC_URL": "https://pypi.example.test/"}).start()
    try:
        wheel = make_wheel(tmp_path, "fa-host", "1.0")
        assert upload(f"{srv.url}/legacy/", wheel, auth=("admin", srv.admin_password)).status_code == 200
        doc = httpx.get(f"{srv.url}/pypi/fa-host/json", headers={"Host": "evil.example"}).json()
        assert doc["urls"][0]["url"].startswith("https://pypi.example.test/files/sha256/")
        assert doc["info"]["project_url"] == "https://pypi.example.test/project/fa-host/"
        files = httpx.get(f"{srv.url}/api/v1/indexes/local/projects/fa-host", headers={"Host": "evil.example"}).json()["files"]
        assert files[0]["url"].startswith("https://pypi.example.test/")
        # Project pages link their files absolutely too (pip resolves those faster), in JSON and
        # HTML, from the route and from the page cache alike.
        for _ in range(2):
            page = httpx.get(f"{srv.url}/simple/fa-host/", headers={**JSON, "Host": "evil.example"}).json()
            assert page["files"][0]["url"].startswith("https://pypi.example.test/files/sha256/")
            html = httpx.get(f"{srv.url}/index/local/simple/fa-host/", headers={"Host": "evil.example"}).text
            assert 'href="https://pypi.example.test/files/sha256/' in html and "evil" not in html
        bad = Server(tmp_path / "bad", extra_env={"WHEELCAVE_SERVER_PUBLIC_URL": "pypi.example.test"})
        with pytest.raises(RuntimeError, match="public_url must be an http"):
            bad.start()
    finally:
        srv.stop()


def test_installs_follow_absolute_links_when_public_url_is_set(tmp_path: Path, client_env: dict[str, str]) -> None:
    """With public_url set to where the server really is, pip and uv install a hosted project and
    a mirrored one through pages whose file links are absolute."""
    upstream = FakeUpstream().start()
    upstream.add("fa-mirrored", UpFile("fa_mirrored-1.0-py3-none-any.whl", wheel_bytes("fa-mirrored", "1.0")))
    srv = Server(tmp_path / "data")
    srv.extra_env.update({"WHEELCAVE_SERVER_PUBLIC_URL": f"{srv.url}/", "PIP_INDEX_URL": upstream.url})
    srv.start()
    try:
        wheel = make_wheel(tmp_path, "fa-hosted", "1.0")
        assert upload(f"{srv.url}/legacy/", wheel, auth=("admin", srv.admin_password)).status_code == 200
        page = httpx.get(f"{srv.url}/simple/fa-mirrored/", headers=JSON).json()
        assert page["files"][0]["url"].startswith(f"{srv.url}/files/sha256/")
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", "--index-url",
             f"{srv.url}/simple/", "fa-hosted", "fa-mirrored"], client_env)
        run([str(BIN / "uv"), "pip", "install", "--python", str(python), "--reinstall", "--no-cache",
             "--index-url", f"{srv.url}/simple/", "fa-hosted", "fa-mirrored"], client_env)
    finally:
        srv.stop()
        upstream.stop()


def test_form_field_bombs_are_capped(server: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    """Defect 10.5: a form of 100,000 empty fields is refused after 2,000 parts (it cost 49 s of
    CPU with 200 MB of them); an ordinary upload with many repeated fields still works."""
    boundary = "wcbomb"
    part = f"--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n".encode()
    body = part * 100_000 + f"--{boundary}--\r\n".encode()
    r = httpx.post(f"{server.url}/legacy/", content=body, auth=admin, timeout=60,
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "Too many form fields" in r.text
    big_fields = {"x": "y" * (17 * 2**20)}
    wheel = make_wheel(tmp_path, "fa-fields", "1.0")
    r = upload(f"{server.url}/legacy/", wheel, auth=admin, **big_fields)
    assert r.status_code == 413 and "Form fields too large" in r.text
    files = {"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")}
    from tests.support.upload import form_for

    fields: dict[str, object] = {**form_for(wheel), "classifiers": [f"Topic :: Thing {i}" for i in range(1500)]}
    r = httpx.post(f"{server.url}/legacy/", data=fields, files=files, auth=admin, timeout=60)
    assert r.status_code == 200, r.text


def test_a_client_leaving_mid_upload_is_one_info_line(fresh_server: Server, tmp_path: Path) -> None:
    """Defect 10.12: no ERROR traceback when a client disconnects mid-upload; nothing kept."""
    srv = fresh_server
    boundary = "wcgone"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"fa_gone-1.0-py3-none-any.whl\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + b"x" * 100_000
    import base64

    creds = base64.b64encode(f"admin:{srv.admin_password}".encode()).decode()
    request = (f"POST /legacy/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {creds}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 10000000\r\n\r\n").encode()
    srv.mark_log()
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(request + head)
    for _ in range(200):  # poll the log for the server's line about it
        if "upload.disconnected" in srv.log_path.read_text():
            break
        httpx.get(f"{srv.url}/health")
    log = srv.log_path.read_text()
    assert re.search(r"INFO wheelcave\.upload \[[0-9a-f]{16}\] upload\.disconnected index=local address=127\.0\.0\.1", log)
    assert "Traceback" not in log and "ERROR" not in log
    assert list((srv.data_dir / "blobs" / "tmp").iterdir()) == []


def test_unusable_upstream_files_are_one_line_a_page(fresh_server: Server, upstream: FakeUpstream) -> None:
    """Defect 10.12: an upstream page listing .egg and .exe files logs one line, not one a file."""
    good = UpFile("fa_eggs-1.0-py3-none-any.whl", wheel_bytes("fa-eggs", "1.0"))
    entries = [{"filename": f"fa_eggs-0.{i}-py2.7.egg", "url": f"../../files/fa_eggs-0.{i}-py2.7.egg",
                "hashes": {"sha256": "0" * 64}} for i in range(30)]
    entries.append({"filename": good.filename, "url": f"../../files/{good.filename}", "hashes": {"sha256": good.sha256}})
    _json_page(upstream, "fa-eggs", entries)
    fresh_server.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url, "--ttl", "0")
    fresh_server.wait_for_index("up")
    fresh_server.mark_log()
    for _ in range(3):
        assert httpx.get(f"{fresh_server.url}/index/up/simple/fa-eggs/", headers=JSON).status_code == 200
    lines = [line for line in fresh_server.log_path.read_text().splitlines() if "fa_eggs-0." in line]
    assert len(lines) == 1 and "upstream.skipped_entries" in lines[0] and " more" in lines[0], lines


def test_slow_drip_upstream_meets_the_deadline(fresh_server: Server, upstream: FakeUpstream) -> None:
    """Defect 10.2: `timeout` bounds a page request as a whole. A never-cached project gets a
    504 (every waiting client the same answer, one upstream request among them); a cached one
    its stale page."""
    srv = fresh_server
    upstream.add("fa-drip", UpFile("fa_drip-1.0-py3-none-any.whl", wheel_bytes("fa-drip", "1.0")))
    srv.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url, "--timeout", "2", "--ttl", "0")
    srv.wait_for_index("up", timeout=2)
    url = f"{srv.url}/index/up/simple/fa-drip/"
    assert httpx.get(url, headers=JSON).status_code == 200  # cached now
    upstream.drip = 1.0  # then the upstream sends a byte a second
    upstream.add("fa-drip2", UpFile("fa_drip2-1.0-py3-none-any.whl", wheel_bytes("fa-drip2", "1.0")))
    before = upstream.count("GET /simple/fa-drip2/")

    def get(target: str) -> int:
        return httpx.get(target, headers=JSON, timeout=30).status_code  # the client's deadline bounds the test

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        codes = list(pool.map(get, [f"{srv.url}/index/up/simple/fa-drip2/"] * 3))
    assert codes == [504, 504, 504]
    assert upstream.count("GET /simple/fa-drip2/") - before == 1
    assert get(url) == 200  # stale, as it is cached
    upstream.drip = 0.0


def test_an_index_change_does_not_cut_downloads_in_flight(fresh_server: Server, upstream: FakeUpstream) -> None:
    """Defect 10.10: changing a mirror's settings while a first download streams used to close
    the upstream client under it."""
    f = UpFile("fa_flight-1.0-py3-none-any.whl", wheel_bytes("fa-flight", "1.0", extra_files={"fa_flight/x.bin": os.urandom(4 * 2**20)}))
    upstream.add("fa-flight", f)
    upstream.throttle = 2 * 2**20
    srv = fresh_server
    srv.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url)
    srv.wait_for_index("up")
    entry = httpx.get(f"{srv.url}/index/up/simple/fa-flight/", headers=JSON).json()["files"][0]
    url = str(httpx.URL(f"{srv.url}/index/up/simple/fa-flight/").join(entry["url"]))
    digest = hashlib.sha256()
    changed = False
    with httpx.stream("GET", url, timeout=60) as r:
        for chunk in r.iter_raw():
            digest.update(chunk)
            if not changed:
                srv.cli("index", "update", "up", "--timeout", "20")  # a new client for the index
                srv.wait_for_index("up", timeout=20)
                changed = True
    assert digest.hexdigest() == f.sha256
    assert upstream.sent[f.filename] == len(f.data)


@pytest.mark.parametrize("fault", ["status", "delay", "drip", "stopped", "redirect-loop", "huge", "truncated", "garbage"])
def test_cached_projects_never_5xx_under_upstream_faults(fresh_server: Server, upstream: FakeUpstream, fault: str) -> None:
    """Upstream faults (500s, slow answers, a slow drip, gone, redirect loops, 40 MB pages,
    truncated and garbage pages) under 50 concurrent clients: projects already cached always
    answer 200 (stale), never a 5xx."""
    srv = fresh_server
    for i in range(10):
        upstream.add(f"fa-load{i}", UpFile(f"fa_load{i}-1.0-py3-none-any.whl", wheel_bytes(f"fa-load{i}", "1.0")))
    srv.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url, "--ttl", "0", "--timeout", "2")
    srv.wait_for_index("up", ttl=0)
    for i in range(10):
        assert httpx.get(f"{srv.url}/index/up/simple/fa-load{i}/", headers=JSON).status_code == 200
    if fault == "status":
        upstream.status = 500
    elif fault == "delay":
        upstream.delay = 5
    elif fault == "drip":
        upstream.drip = 0.5
    elif fault == "redirect-loop":
        upstream.redirect_loop = True
    elif fault in ("huge", "truncated", "garbage"):
        for i in range(10):
            good, content_type = upstream._page(f"fa-load{i}")  # noqa: SLF001 - the page it served before
            body = {"huge": good[:-1] + b" " * (40 * 2**20) + good[-1:], "truncated": good[: len(good) // 2],
                    "garbage": b"\x00\xff<html><a href='"}[fault]
            upstream.raw_pages[f"fa-load{i}"] = (body, content_type)
    else:
        upstream.stop()

    def read(n: int) -> int:
        return httpx.get(f"{srv.url}/index/up/simple/fa-load{n % 10}/", headers=JSON, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(read, range(200)))
    assert codes == [200] * 200, sorted(set(codes))
    upstream.status, upstream.delay, upstream.drip, upstream.redirect_loop = None, 0.0, 0.0, False


def test_workers_download_a_file_once(tmp_path: Path, upstream: FakeUpstream) -> None:
    """Defect 10.10: with --workers 2, ten clients asking for one uncached file at once (on
    fresh connections, so both workers get some) make one upstream download, and all get it."""
    f = UpFile("fa_once-1.0-py3-none-any.whl", wheel_bytes("fa-once", "1.0", extra_files={"fa_once/x.bin": os.urandom(3 * 2**20)}))
    upstream.add("fa-once", f)
    upstream.throttle = 3 * 2**20
    srv = Server(tmp_path / "data", workers=2, extra_env={"PIP_INDEX_URL": upstream.url}).start()
    try:
        entry = httpx.get(f"{srv.url}/index/pypi/simple/fa-once/", headers=JSON).json()["files"][0]
        url = str(httpx.URL(f"{srv.url}/index/pypi/simple/fa-once/").join(entry["url"]))

        def fetch(_: int) -> str:
            with httpx.Client(timeout=60) as client:
                return hashlib.sha256(client.get(url).content).hexdigest()

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            digests = list(pool.map(fetch, range(10)))
        assert digests == [f.sha256] * 10
        assert upstream.count(f"GET /files/{f.filename}") == 1
    finally:
        srv.stop()
