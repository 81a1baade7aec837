"""Issue 10: faults and worst-form inputs against a real server, each a regression test of a
defect found (wrong bytes as a complete 200, Range parsing, oversized request heads, ...)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dists import make_wheel, wheel_bytes
from tests.support.server import Server
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
    """Defect 10.6: refused with 431 as the bytes arrive; the server goes on serving."""
    answer = _raw(server.port, head)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert httpx.get(f"{server.url}/health").status_code == 200
    # a request just within the limits is fine
    headers = {f"x-h{i}": "v" * 500 for i in range(60)}
    assert httpx.get(f"{server.url}/health", headers=headers).status_code == 200
