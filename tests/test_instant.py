"""Cached pages answered by the HTTP protocol itself (wheelcave.web.instant, issue 13's hot page).

A real uvicorn server with wheelcave's protocol runs in a thread of this process on 127.0.0.1
(so the tests can see which way a request went: :class:`HotPages` is wrapped to count its
answers) and is spoken to over raw sockets, since the cases that matter are the ones ordinary
clients never send: HTTP/1.0, ``Connection: close``, pipelined requests, a body after a GET.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.support.dists import make_wheel
from tests.support.server import Server, free_port, ok
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile
from wheelcave.config import load_settings
from wheelcave.services import open_services
from wheelcave.web.accesslog import AccessLines
from wheelcave.web.app import create_app
from wheelcave.web.fastpath import HotPages
from wheelcave.web.instant import InstantHttpProtocol
from wheelcave.web.requestid import REQUEST_ID, JsonFormatter, LogHandler, RequestIdFilter

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
PASSWORD = "instant-password-1"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Live:
    url: str
    port: int
    admin: tuple[str, str]
    answered: list[str] = field(default_factory=list)  # paths HotPages answered on arrival

    def send(self, raw: bytes, replies: int = 1, *, head: bool = False) -> list[Reply]:
        """Send ``raw`` on a new connection and read ``replies`` answers in order."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(raw)
            return read_replies(sock, replies, head=head)

    def get(self, path: str, *headers: str, version: str = "1.1", method: str = "GET") -> Reply:
        lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *headers, "", ""]
        return self.send("\r\n".join(lines).encode(), head=method == "HEAD")[0]


def read_replies(sock: socket.socket, count: int, *, head: bool = False) -> list[Reply]:
    buffer = b""
    replies: list[Reply] = []
    while len(replies) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(replies)} replies"
            buffer += chunk
        head_bytes, _, buffer = buffer.partition(b"\r\n\r\n")
        status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        status = int(status_line.split()[1])
        size = 0 if head or status == 304 else int(headers.get("content-length", "0"))
        while len(buffer) < size:
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside a body"
            buffer += chunk
        replies.append(Reply(status, headers, buffer[:size]))
        buffer = buffer[size:]
    return replies


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("instant") / "data"
    settings = load_settings(data, environ={})

    async def bootstrap() -> str | None:  # what `wheelcave serve` does first
        svc = await open_services(settings)
        try:
            return await svc.auth.ensure_initial_admin()
        finally:
            await svc.close()

    password = asyncio.run(bootstrap())
    assert password
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=InstantHttpProtocol, lifespan="on",
                            log_config=None, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    original = HotPages.wire
    state = Live(f"http://127.0.0.1:{port}", port, ("admin", password))

    def counted(self: HotPages, method: str, route: tuple[str, str, str], headers: object) -> object:
        answer = original(self, method, route, headers)  # type: ignore[arg-type]
        if answer is not None:
            state.answered.append(f"/index/{route[0]}/simple/{route[1]}/")
        return answer

    HotPages.wire = counted  # type: ignore[assignment, method-assign]
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped"
        time.sleep(0.02)
    tmp = tmp_path_factory.mktemp("instant-dists")
    api = f"{state.url}/api/v1"
    ok(upload(f"{state.url}/index/local/", make_wheel(tmp, "inst-pub", "1.0"), auth=state.admin))
    ok(httpx.post(f"{api}/users", json={"name": "inst-reader", "password": PASSWORD}, auth=state.admin))
    ok(httpx.post(f"{api}/indexes", json={"name": "inst-private", "kind": "hosted", "private": True}, auth=state.admin))
    ok(httpx.post(f"{api}/indexes/inst-private/acl/grant", json={"principal": "user:inst-reader",
                                                                 "permissions": ["read"]}, auth=state.admin))
    ok(upload(f"{state.url}/index/inst-private/", make_wheel(tmp, "inst-secret", "1.0"), auth=state.admin))
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(20)
        HotPages.wire = original  # type: ignore[method-assign]


def _warm(live: Live, path: str, *headers: str) -> None:
    """Ask until a request for ``path`` is answered on arrival (the first one renders the page
    through the app; a re-read of the grants or definitions is due now and then)."""
    for _ in range(50):
        before = len(live.answered)
        assert live.get(path, *headers).status == 200
        if len(live.answered) > before:
            return
    pytest.fail(f"{path} was never answered on arrival")


def _raw(path: str, *headers: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 GET for a JSON page, as bytes (with ``body`` after its head)."""
    return "".join(f"{line}\r\n" for line in (f"GET {path} HTTP/1.1", "Host: x", f"Accept: {JSON}", *headers, "")).encode() + body


def _same(a: Reply, b: Reply) -> None:
    assert a.status == b.status
    assert a.body == b.body
    strip = {"date", "x-request-id", "connection"}  # HTTP/1.0 answers close the connection
    assert {k: v for k, v in a.headers.items() if k not in strip} == {k: v for k, v in b.headers.items() if k not in strip}
    assert re.fullmatch(r"[0-9a-f]{16}", a.headers["x-request-id"])


@pytest.mark.parametrize("accept", [JSON, PIP_ACCEPT, "text/html"])
@pytest.mark.parametrize("encoding", ["", "gzip", "zstd"])
def test_an_answer_on_arrival_is_the_routes_answer(live: Live, accept: str, encoding: str) -> None:
    path = "/index/local/simple/inst-pub/"
    headers = [f"Accept: {accept}", *([f"Accept-Encoding: {encoding}"] if encoding else [])]
    _warm(live, path, *headers)
    before = len(live.answered)
    fast = live.get(path, *headers)
    assert len(live.answered) == before + 1
    slow = live.get(path, *headers, version="1.0")  # HTTP/1.0 is left to the app (its fast path)
    assert len(live.answered) == before + 1
    _same(fast, slow)
    routed = live.get(path + "?via=route", *headers)  # a query passes the fast paths: the route answers
    assert len(live.answered) == before + 1
    _same(fast, routed)
    assert fast.headers.get("content-encoding", "") == encoding
    assert b"inst_pub-1.0-py3-none-any.whl" in httpx.Response(200, headers=fast.headers, content=fast.body).content
    # HEAD: the same head, no body; a matching If-None-Match: 304 with the tag
    fast_head = live.get(path, *headers, method="HEAD")
    assert len(live.answered) == before + 2
    assert fast_head.body == b"" and fast_head.headers["content-length"] == fast.headers["content-length"]
    etag = fast.headers["etag"]
    cached = live.get(path, *headers, f"If-None-Match: W/{etag}")
    assert len(live.answered) == before + 3
    assert cached.status == 304 and cached.body == b"" and cached.headers["etag"] == etag
    _same(cached, live.get(path, *headers, f"If-None-Match: W/{etag}", version="1.0"))
    _same(cached, live.get(path + "?via=route", *headers, f"If-None-Match: W/{etag}"))
    # the client's own request id is kept when it is a plain token, replaced when it is not
    assert live.get(path, *headers, "X-Request-ID: abc.DEF-1").headers["x-request-id"] == "abc.DEF-1"
    forged = live.get(path, *headers, "X-Request-ID: forged] line/*").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", forged)


def test_a_repeated_header_counts_as_the_routes_read_it(live: Live) -> None:
    path = "/index/local/simple/inst-pub/"
    _warm(live, path, "Accept: text/html")
    _warm(live, path, f"Accept: {JSON}")
    twice = ("Accept: text/html", f"Accept: {JSON}")  # the first one counts
    before = len(live.answered)
    fast = live.get(path, *twice)
    assert len(live.answered) == before + 1
    _same(fast, live.get(path, *twice, version="1.0"))
    _same(fast, live.get(path + "?via=route", *twice))
    assert fast.headers["content-type"].startswith("text/html")


def test_refused_callers_never_get_a_page_on_arrival(live: Live) -> None:
    path = "/index/inst-private/simple/inst-secret/"
    reader = "Authorization: Basic " + httpx.BasicAuth("inst-reader", PASSWORD)._auth_header.split()[1]
    admin_token = httpx.post(f"{live.url}/api/v1/tokens", json={}, auth=live.admin).json()["token"]
    ok(httpx.post(f"{live.url}/api/v1/users", json={"name": "inst-stranger", "password": PASSWORD}, auth=live.admin))
    outsider = "Authorization: Basic " + httpx.BasicAuth("inst-stranger", PASSWORD)._auth_header.split()[1]
    wrong = "Authorization: Basic " + httpx.BasicAuth("inst-reader", "not-it")._auth_header.split()[1]
    _warm(live, path, reader)  # the reader's page is cached, the reader's credentials verified
    before = len(live.answered)
    assert live.get(path).status == 401  # anonymous
    assert live.get(path, wrong).status == 401
    assert live.get(path, "Authorization: Basic !!!").status == 401
    assert live.get(path, outsider).status == 404
    assert live.get(path, outsider).status == 404  # verified now, and still refused
    assert len(live.answered) == before  # none of them on arrival
    # the reader loses the grant: refused at once, on arrival or not
    ok(httpx.post(f"{live.url}/api/v1/indexes/inst-private/acl/revoke",
                  json={"principal": "user:inst-reader", "permissions": ["read"]}, auth=("__token__", admin_token)))
    assert live.get(path, reader).status == 404
    assert live.get(path, reader).status == 404
    assert len(live.answered) == before


def test_requests_the_protocol_leaves_to_the_app(live: Live) -> None:
    path = "/index/local/simple/inst-pub/"
    _warm(live, path, f"Accept: {JSON}")
    before = len(live.answered)
    assert live.get(path + "?format=" + JSON.replace("+", "%2B"), f"Accept: {JSON}").status == 200  # a query
    assert live.get("/index/local/simple/inst%2Dpub/", f"Accept: {JSON}").status in (200, 301)  # escaped
    assert live.get("/index/local/simple/inst-pub", f"Accept: {JSON}").status == 301  # not a page path
    assert live.get(f"http://127.0.0.1{path}", f"Accept: {JSON}").status == 200  # absolute form
    assert live.get(path, f"Accept: {JSON}", "Connection: close").status == 200
    assert live.get(path, "Accept: application/json").status == 406
    assert live.get(path, f"Accept: {JSON}", method="POST").status == 405
    assert len(live.answered) == before
    # Connection: close is honoured: the answer, then the end of the connection
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(_raw(path, "Connection: close"))
        assert read_replies(sock, 1)[0].status == 200
        assert sock.recv(1) == b""
    # Expect: 100-continue on a GET goes the usual way and is answered
    assert live.get(path, f"Accept: {JSON}", "Expect: 100-continue").status in (200, 100)


def test_pipelined_requests_keep_their_order(live: Live) -> None:
    path = "/index/local/simple/inst-pub/"
    _warm(live, path, f"Accept: {JSON}")
    before = len(live.answered)
    one, listing, missing = _raw(path), _raw("/index/local/simple/"), _raw("/index/local/simple/not-here/")
    replies = live.send(one + listing + one + missing + one, 5)
    assert [r.status for r in replies] == [200, 200, 200, 404, 200]
    assert b"projects" in replies[1].body and b"inst_pub-1.0" in replies[0].body
    assert replies[0].body == replies[2].body == replies[4].body
    assert len(live.answered) >= before + 1  # the first at least; those behind the app's wait their turn


def test_a_client_that_does_not_keep_up_is_left_to_the_app(live: Live) -> None:
    """100 pipelined requests for a ~700 KB page, sent in one piece by a client reading through
    a small window: answers on arrival stop once the connection holds more than it has taken
    (the app's way then writes one answer at a time as the client reads), so the server never
    holds a hundred copies of the page for a client that does not read them."""
    upstream = FakeUpstream().start()
    try:
        upstream.add("inst-big", *(UpFile(f"inst_big-{i}.0-py3-none-any.whl", b"x") for i in range(3000)))
        ok(httpx.post(f"{live.url}/api/v1/indexes", json={"name": "inst-mirror", "kind": "mirror",
                                                          "config": {"upstream": upstream.url}}, auth=live.admin))
        path = "/index/inst-mirror/simple/inst-big/"
        _warm(live, path, f"Accept: {JSON}")
        before = len(live.answered)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(60)
            sock.connect(("127.0.0.1", live.port))
            sock.sendall(_raw(path) * 100)
            replies = read_replies(sock, 100)
        assert {r.status for r in replies} == {200} and len({r.body for r in replies}) == 1
        assert len(replies[0].body) > 500_000
        assert 0 < len(live.answered) - before < 10
    finally:
        upstream.stop()


def test_a_body_after_a_get_head_is_read_and_dropped(live: Live) -> None:
    path = "/index/local/simple/inst-pub/"
    _warm(live, path, f"Accept: {JSON}")
    before = len(live.answered)
    with_body = _raw(path, "Content-Length: 10", body=b"0123456789")
    chunked = _raw(path, "Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n")
    replies = live.send(with_body + _raw(path) + chunked + with_body, 4)
    assert [r.status for r in replies] == [200, 200, 200, 200]
    assert len(live.answered) == before + 4
    # both lengths at once (a smuggling attempt): refused by the parser, nothing answered
    smuggled = _raw(path, "Content-Length: 5", "Transfer-Encoding: chunked", body=b"0\r\n\r\n")
    assert live.send(smuggled)[0].status == 400
    assert len(live.answered) == before + 4


def test_an_upload_shows_in_the_next_answer(live: Live, tmp_path: Path) -> None:
    path = "/index/local/simple/inst-pub/"
    _warm(live, path, f"Accept: {JSON}")
    ok(upload(f"{live.url}/index/local/", make_wheel(tmp_path, "inst-pub", "2.0"), auth=live.admin))
    assert b"inst_pub-2.0-py3-none-any.whl" in live.get(path, f"Accept: {JSON}").body


# ---------------------------------------------------------------- the access-log lines


def _handler(fmt: str) -> tuple[LogHandler, io.StringIO, logging.Logger]:
    stream = io.StringIO()
    handler = LogHandler(stream, line_format=fmt)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    parent = logging.Logger("instant-test")  # a private tree: the real loggers stay as they are
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    child = logging.Logger("instant-test.access")
    child.parent = parent
    return handler, stream, child


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_lines_are_the_loggers_lines(fmt: str) -> None:
    handler, stream, logger = _handler(fmt)
    lines = AccessLines.find(logger)
    assert lines is not None
    message = '127.0.0.1:5 - "GET /simple/a\u00e9/ HTTP/1.1" 200'
    lines.write("r1d", message)
    token = REQUEST_ID.set("r1d")
    try:
        logger.info(message)
    finally:
        REQUEST_ID.reset(token)
    ours, theirs = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d{3}Z?"
    assert re.sub(stamp, "T", ours) == re.sub(stamp, "T", theirs)
    assert re.search(stamp, ours)


def test_access_lines_of_one_loop_turn_go_out_together() -> None:
    _, stream, logger = _handler("text")
    lines = AccessLines.find(logger)
    assert lines is not None and AccessLines.find(logger) is lines  # one writer for every connection

    async def turn() -> list[str]:
        lines.write("a1", "first")
        lines.write("a2", "second")
        assert stream.getvalue() == ""  # not yet: the turn is not over
        await asyncio.sleep(0)
        return stream.getvalue().splitlines()

    written = asyncio.run(turn())
    assert [line.split(" ", 4)[-1] for line in written] == ["[a1] first", "[a2] second"]


def test_a_busy_turns_lines_go_out_in_writes_a_pipe_keeps_whole() -> None:
    class Writes(io.StringIO):
        sizes: list[int] = []

        def write(self, text: str) -> int:
            self.sizes.append(len(text.encode()))
            return super().write(text)

    handler, _, logger = _handler("json")
    handler.setStream(Writes())
    lines = AccessLines.find(logger)
    assert lines is not None

    async def turn() -> None:
        for i in range(300):
            lines.write(f"r{i}", f'127.0.0.1:1 - "GET /simple/p{i}/ HTTP/1.1" 200 é')

    asyncio.run(turn())
    stream = handler.stream
    assert 1 < len(stream.sizes) < 300 and max(stream.sizes) <= 4096
    assert [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()] == [f"r{i}" for i in range(300)]


def test_access_lines_are_only_used_where_they_are_the_whole_story() -> None:
    handler, _, logger = _handler("text")
    assert AccessLines.find(logger) is not None
    logger.parent.addHandler(logging.StreamHandler(io.StringIO()))  # type: ignore[union-attr]  # a second place
    assert AccessLines.find(logger) is None
    handler2, _, logger2 = _handler("text")
    logger2.addFilter(lambda record: False)  # a filter on the way could drop the line
    assert AccessLines.find(logger2) is None
    _, _, logger3 = _handler("text")
    logger3.setLevel(logging.WARNING)  # no access lines at all
    assert AccessLines.find(logger3) is None
    handler4, _, logger4 = _handler("text")
    handler4.setLevel(logging.ERROR)
    assert AccessLines.find(logger4) is None


def test_a_real_servers_access_log_names_the_request_and_the_forwarded_client(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    ok(upload(f"{srv.url}/index/local/", make_wheel(tmp_path, "inst-log", "1.0"), auth=("admin", srv.admin_password)))
    url = f"{srv.url}/index/local/simple/inst-log/"
    for _ in range(3):
        ok(httpx.get(url, headers={"Accept": JSON}))
    srv.mark_log()
    plain = ok(httpx.get(url, headers={"Accept": JSON}))
    forwarded = ok(httpx.get(url, headers={"Accept": JSON, "X-Forwarded-For": "203.0.113.9"}))
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        text = srv.log_path.read_text(errors="replace")
        if forwarded.headers["x-request-id"] in text:
            break
        time.sleep(0.05)
    assert re.search(rf'\[{plain.headers["x-request-id"]}\] 127\.0\.0\.1:\d+ - "GET /index/local/simple/inst-log/ HTTP/1\.1" 200', text)
    assert re.search(rf'\[{forwarded.headers["x-request-id"]}\] 203\.0\.113\.9:\d+ - "GET /index/local/simple/inst-log/ HTTP/1\.1" 200', text)
