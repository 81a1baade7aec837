"""Operations (issue 14): a request id on every answer and log line, JSON logs, the access log on
by default, readiness that knows the schema, and a shutdown that lets in-flight uploads finish."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.support.dists import make_wheel
from tests.support.server import BIN, Server
from tests.support.upload import form_for

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("ops") / "data", extra_env={"WHEELCAVE_SERVER_LOG_FORMAT": "json"}).start()
    yield srv
    srv.stop()


def test_every_answer_has_a_request_id_and_a_good_one_is_kept(json_server: Server) -> None:
    base = json_server.url
    seen = set()
    for path in ("/simple/", "/simple/", "/simple/nothing-here/", "/files/sha256/zz/x.whl", "/api/v1/indexes/nope",
                 "/health", "/"):
        answer = httpx.get(f"{base}{path}")
        rid = answer.headers["x-request-id"]
        assert len(rid) == 16 and rid not in seen, (path, rid)
        seen.add(rid)
    assert httpx.get(f"{base}/simple/", headers={"X-Request-ID": "proxy-1.2_3"}).headers["x-request-id"] == "proxy-1.2_3"
    for forged in ("a" * 65, 'x" injected="1', "two words", "é", ""):
        got = httpx.get(f"{base}/simple/", headers={"X-Request-ID": forged.encode("utf-8")}).headers["x-request-id"]
        assert got != forged and len(got) == 16, forged


def test_json_logs_carry_the_request_id_on_every_line(json_server: Server) -> None:
    rid = "trace-json-42"
    assert httpx.get(f"{json_server.url}/simple/no-such-project/", headers={"X-Request-ID": rid}).status_code == 404
    wheel = make_wheel(json_server.data_dir.parent, "ops-demo", "1.0")
    up = httpx.post(f"{json_server.url}/legacy/", data=form_for(wheel), auth=("admin", json_server.admin_password),
                    files={"content": (wheel.name, wheel.read_bytes())}, headers={"X-Request-ID": "trace-upload"})
    assert up.status_code == 200
    lines = json_server.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object, start-up lines too
    assert all({"time", "level", "logger", "message", "request_id"} <= e.keys() for e in entries)
    access = [e for e in entries if e["request_id"] == rid]
    assert access and "GET /simple/no-such-project/" in access[0]["message"] and access[0]["logger"] == "uvicorn.access"
    assert any(e["request_id"] == "trace-upload" and "POST /legacy/" in e["message"] for e in entries)
    assert any("index URL for pip and uv" in e["message"] and e["request_id"] == "-" for e in entries)


def test_the_access_log_is_on_by_default(tmp_path: Path) -> None:
    """Started without --access-log (the test helper always passes it): requests are logged,
    each with its id."""
    srv = Server(tmp_path / "data")
    log = (tmp_path / "plain.log").open("wb")
    proc = subprocess.Popen([str(BIN / "wheelcave"), "serve", "--data-dir", str(srv.data_dir), "--port", str(srv.port)],
                            env=srv.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{srv.url}/health", headers={"X-Request-ID": "plain-1"}).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)  # polling for the server to listen
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = (tmp_path / "plain.log").read_text()
    assert "[plain-1] 127.0.0.1" in text and '"GET /health HTTP/1.1" 200' in text, text[-2000:]


def test_ready_knows_the_schema(json_server: Server) -> None:
    ready = httpx.get(f"{json_server.url}/ready").json()
    assert ready == {"ready": True, "checks": {"database": "ok", "schema": "ok", "storage": "ok"}}


def test_ready_is_false_while_the_schema_is_not_this_servers(tmp_path: Path) -> None:
    """Another replica migrated the shared database further (here: the revision is rewritten)."""
    srv = Server(tmp_path / "data").start()
    try:
        engine = sa.create_engine(f"sqlite:///{srv.data_dir / 'wheelcave.db'}")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        engine.dispose()
        answer = httpx.get(f"{srv.url}/ready")
        assert answer.status_code == 503
        assert answer.json()["checks"]["schema"].startswith("error: the database is at 9999")
    finally:
        srv.stop()


def test_an_upload_in_flight_finishes_after_sigterm(tmp_path: Path) -> None:
    """SIGTERM while a client is still sending: the upload completes (200) and is there after a
    restart; the server then exits cleanly."""
    srv = Server(tmp_path / "data").start()
    wheel = make_wheel(tmp_path, "ops-slow", "1.0", extra_files={"ops_slow/pad.bin": b"\0" * 200_000})
    boundary = "wheelcaveopsboundary"
    form = form_for(wheel)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in form.items()]
    head = b"".join(parts) + (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
                              f'filename="{wheel.name}"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    body = head + wheel.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    half = threading.Event()
    go_on = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield body[: len(body) // 2]
        half.set()
        go_on.wait(30)  # the test sends SIGTERM meanwhile
        yield body[len(body) // 2:]

    result: dict[str, object] = {}

    def send() -> None:
        try:
            result["answer"] = httpx.post(
                f"{srv.url}/legacy/", content=chunks(), auth=("admin", srv.admin_password), timeout=60,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(body))})
        except httpx.HTTPError as exc:
            result["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    assert half.wait(30)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    # The server stops listening but keeps the request it has: poll until new connections fail.
    for _ in range(300):
        try:
            httpx.get(f"{srv.url}/health", timeout=1)
        except httpx.TransportError:
            break
        threading.Event().wait(0.05)
    go_on.set()
    sender.join(60)
    answer = result.get("answer")
    assert isinstance(answer, httpx.Response) and answer.status_code == 200, result
    # uvicorn re-raises the signal once it has shut down: -SIGTERM is its orderly exit.
    assert srv.proc.wait(60) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in srv.log_path.read_text()
    srv.proc = None
    srv.start()
    try:
        page = httpx.get(f"{srv.url}/simple/ops-slow/", headers=JSON).json()
        assert [f["filename"] for f in page["files"]] == [wheel.name]
    finally:
        srv.stop()
