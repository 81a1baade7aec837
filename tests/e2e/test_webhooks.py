"""Webhooks (issue 14, acceptance 3): a receiver in the test (a real HTTP server on 127.0.0.1)
gets every event once, signed; a failing receiver is retried until it recovers; and who may
not manage webhooks, or point them where they should not, is refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.e2e.test_mirror import eventually
from tests.support.dists import make_wheel
from tests.support.server import Server, ThreadedServer, free_port
from tests.support.upload import upload
from wheelcave.core.webhooks import verify

FAST = {"WHEELCAVE_WEBHOOKS_POLL": "0.1s", "WHEELCAVE_WEBHOOKS_RETRY_BASE": "0.2s", "WHEELCAVE_WEBHOOKS_MAX_ATTEMPTS": "4"}


class Receiver:
    """Records every POST; answers ``fail_first`` of them with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.answered: list[int] = []
        self.fail_first = fail_first
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._lock = threading.Lock()

        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                status = 500 if len(self.answered) < self.fail_first else 204
                self.answered.append(status)
                if status == 204:
                    self.got.append((dict(request.headers), body))
            return Response(status_code=status)

        self._server = ThreadedServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), self.port)

    def __enter__(self) -> Receiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def events(self) -> list[str]:
        return [h["x-wheelcave-event"] for h, _ in self.got]


#: How long a test waits for deliveries (polls every 0.1 s, retries after 0.2, 0.4, 0.8 s).
WAIT = 15.0


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", extra_env=FAST).start()
    yield server
    server.stop()


def _hook(srv: Server, url: str, index: str = "local", **body: object) -> dict[str, object]:
    made = httpx.post(f"{srv.url}/api/v1/indexes/{index}/webhooks", json={"url": url, **body},
                      auth=("admin", srv.admin_password))
    assert made.status_code == 201, made.text
    return made.json()


def test_every_event_arrives_once_and_signed(srv: Server, tmp_path: Path) -> None:
    auth = ("admin", srv.admin_password)
    with Receiver() as rx:
        hook = _hook(srv, rx.url, secret="a shared secret of the test")
        assert hook["secret"] == "a shared secret of the test" and hook["events"] == ["*"]
        srv.cli("index", "create", "prod", "--kind", "hosted")
        srv.wait_for_index("prod")
        other = _hook(srv, rx.url, "prod", events=["promote"])  # the target's webhook hears the promotion
        wheel = make_wheel(tmp_path, "wh-demo", "1.0")
        assert upload(f"{srv.url}/legacy/", wheel, auth=auth).status_code == 200
        api = f"{srv.url}/api/v1/indexes/local/projects/wh-demo/versions/1.0"
        assert httpx.post(f"{api}/yank", json={"reason": "oops"}, auth=auth).status_code == 200
        assert httpx.post(f"{api}/unyank", auth=auth).status_code == 200
        promoted = httpx.post(f"{srv.url}/api/v1/promote", auth=auth,
                              json={"project": "wh-demo", "version": "1.0", "from": "local", "to": "prod"})
        assert promoted.status_code == 200, promoted.text
        srv.cli("delete", "local", "wh-demo", "1.0", "--yes")  # from another process: the outbox carries it

        def logs() -> list[list[dict[str, object]]]:
            return [httpx.get(f"{srv.url}/api/v1/indexes/{i}/webhooks/{h['id']}/deliveries", auth=auth).json()
                    for i, h in (("local", hook), ("prod", other))]

        def all_delivered() -> bool:
            got = logs()
            return [len(g) for g in got] == [4, 1] and all(d["status"] == "delivered" for g in got for d in g)

        assert eventually(all_delivered, WAIT), logs()
        # Every delivery is recorded as delivered, so none is sent again: what arrived is all.
        assert sorted(rx.events()) == ["delete", "promote", "unyank", "upload", "yank"], rx.events()
        ids = [h["x-wheelcave-delivery"] for h, _ in rx.got]
        assert len(set(ids)) == len(ids)
        for headers, body in rx.got:
            secret = other["secret"] if headers["x-wheelcave-event"] == "promote" else hook["secret"]
            assert verify(str(secret), body, headers["x-wheelcave-signature"]), headers
            assert not verify("another secret entirely", body, headers["x-wheelcave-signature"])
        upload_body = json.loads(next(b for h, b in rx.got if h["x-wheelcave-event"] == "upload"))
        assert upload_body["index"] == "local" and upload_body["project"] == "wh-demo"
        assert upload_body["filename"] == wheel.name and upload_body["actor"] == "admin"
        assert all(d["attempts"] == 1 for g in logs() for d in g)
        shown = httpx.get(f"{srv.url}/index/local/webhooks", auth=auth)  # the delivery log in the UI
        assert shown.status_code == 200 and rx.url in shown.text and shown.text.count("<td>delivered</td>") == 4
        assert "a shared secret of the test" not in shown.text
        listed = httpx.get(f"{srv.url}/api/v1/indexes/local/webhooks", auth=auth).json()
        assert [w["id"] for w in listed] == [hook["id"]]
        assert all("secret" not in w for w in listed)  # shown once, never listed


def test_an_import_is_an_upload_for_each_file(srv: Server, tmp_path: Path) -> None:
    """``wheelcave import`` (another process, bulk rows) sends one upload event per imported
    file, marked as an import; a second run imports nothing and sends nothing."""
    folder = tmp_path / "drop"
    folder.mkdir()
    wheels = [make_wheel(folder, "wh-imported", f"1.{i}") for i in range(3)]
    with Receiver() as rx:
        _hook(srv, rx.url, events=["upload"])
        srv.cli("import", "local", str(folder))
        assert eventually(lambda: len(rx.got) == 3, WAIT), rx.events()
        bodies = [json.loads(b) for _, b in rx.got]
        assert sorted(b["filename"] for b in bodies) == sorted(w.name for w in wheels)
        assert all(b["event"] == "upload" and b["detail"]["source"] == "import" and b["index"] == "local" for b in bodies)
        srv.cli("import", "local", str(folder))  # nothing new
        srv.mark_log()
        assert upload(f"{srv.url}/legacy/", make_wheel(tmp_path, "wh-after", "1.0"), auth=("admin", srv.admin_password)).status_code == 200
        assert eventually(lambda: len(rx.got) == 4, WAIT)  # the next event is the upload, not a repeat
        assert json.loads(rx.got[-1][1])["filename"] == "wh_after-1.0-py3-none-any.whl"


def test_a_failing_receiver_is_retried_until_it_recovers(srv: Server, tmp_path: Path) -> None:
    auth = ("admin", srv.admin_password)
    with Receiver(fail_first=3) as rx:
        hook = _hook(srv, rx.url)
        assert upload(f"{srv.url}/legacy/", make_wheel(tmp_path, "wh-retry", "1.0"), auth=auth).status_code == 200
        assert eventually(lambda: rx.got, WAIT), rx.answered
        assert rx.answered == [500, 500, 500, 204]
        (delivery,) = httpx.get(f"{srv.url}/api/v1/indexes/local/webhooks/{hook['id']}/deliveries", auth=auth).json()
        assert delivery["status"] == "delivered" and delivery["attempts"] == 4 and delivery["last_status"] == 204


def test_a_receiver_that_never_recovers_is_given_up(srv: Server, tmp_path: Path) -> None:
    auth = ("admin", srv.admin_password)
    gone = f"http://127.0.0.1:{free_port()}/nobody-listens"
    hook = _hook(srv, gone)
    assert upload(f"{srv.url}/legacy/", make_wheel(tmp_path, "wh-gone", "1.0"), auth=auth).status_code == 200
    url = f"{srv.url}/api/v1/indexes/local/webhooks/{hook['id']}/deliveries"
    log = eventually(lambda: [d for d in httpx.get(url, auth=auth).json() if d["status"] == "failed"], WAIT)
    assert log and log[0]["attempts"] == 4 and "ConnectError" in log[0]["last_error"]
    assert "webhook.failed" in srv.log_path.read_text()


def test_who_may_not_manage_webhooks_and_where_they_may_not_point(srv: Server) -> None:
    admin = ("admin", srv.admin_password)
    srv.cli("user", "add", "wh-plain", "--password-stdin", input="a long password 1\n")
    srv.cli("user", "add", "wh-manager", "--password-stdin", input="a long password 2\n")
    srv.cli("acl", "grant", "local", "user:wh-manager", "manage")
    base = f"{srv.url}/api/v1/indexes/local/webhooks"
    made = _hook(srv, "https://hooks.example.invalid/x")
    assert httpx.get(base).status_code == 401
    assert httpx.post(base, json={"url": "https://hooks.example.invalid/y"}).status_code == 401
    plain = ("wh-plain", "a long password 1")
    assert httpx.get(base, auth=plain).status_code == 403
    assert httpx.post(base, json={"url": "https://hooks.example.invalid/y"}, auth=plain).status_code == 403
    assert httpx.delete(f"{base}/{made['id']}", auth=plain).status_code == 403
    assert httpx.get(f"{base}/{made['id']}/deliveries", auth=plain).status_code == 403
    manager = ("wh-manager", "a long password 2")
    assert httpx.get(base, auth=manager).status_code == 200
    for url in ("http://127.0.0.1:5432/", "http://localhost/x", "http://[::1]/x", "http://169.254.169.254/latest",
                "http://10.0.0.1/x", "http://[::ffff:127.0.0.1]/x"):
        refused = httpx.post(base, json={"url": url}, auth=manager)
        assert refused.status_code == 400 and "administrators" in refused.json()["message"], url
    for url in ("file:///etc/passwd", "javascript:alert(1)", "gopher://x/", "http://user:pw@hooks.example.invalid/",
                "http:///nohost", "https://hooks.example.invalid/a b", "x" * 3000):
        bad = httpx.post(base, json={"url": url}, auth=admin)
        assert bad.status_code in (400, 422), url
    assert httpx.post(base, json={"url": "https://h.example.invalid/", "events": ["explode"]}, auth=admin).status_code == 400
    assert httpx.post(base, json={"url": "https://h.example.invalid/", "secret": "short"}, auth=admin).status_code == 400
    assert httpx.post(base, json={"url": "https://h.example.invalid/", "extra": 1}, auth=admin).status_code == 400
    assert httpx.delete(f"{base}/999999", auth=admin).status_code == 404
    for worst in ("-1", "2147483648", "9" * 40, "abc", "1%00"):  # ids out of range or not numbers
        assert httpx.delete(f"{base}/{worst}", auth=admin).status_code in (400, 404), worst
        assert httpx.get(f"{base}/{worst}/deliveries", auth=admin).status_code in (400, 404), worst
    assert httpx.get(f"{base}/999999/deliveries", auth=admin).status_code == 404
    other = f"{srv.url}/api/v1/indexes/pypi/webhooks/{made['id']}"  # a webhook id of another index
    assert httpx.delete(other, auth=admin).status_code == 404
    assert httpx.get(f"{other}/deliveries", auth=admin).status_code == 404
    assert httpx.get(f"{srv.url}/api/v1/indexes/no-such/webhooks", auth=admin).status_code == 404
    page = f"{srv.url}/index/local/webhooks"
    assert httpx.get(page).status_code == 401
    assert httpx.get(page, auth=plain).status_code == 403
    assert httpx.get(page, auth=manager).status_code == 200
    assert httpx.get(f"{srv.url}/index/{'x' * 300}/webhooks", auth=admin).status_code == 404
    assert httpx.delete(f"{base}/{made['id']}", auth=manager).status_code == 204
    assert httpx.get(base, auth=admin).json() == []
