"""Bounded fuzzing of the upload form parser (web/multipart.py), in process: random and mutated
multipart bodies only ever give a form or a WheelcaveError (400/413), never another exception,
and a refused body leaves no temporary file behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from wheelcave.errors import WheelcaveError
from wheelcave.storage.filesystem import FilesystemBlobStore
from wheelcave.web.multipart import read_upload_form

BOUNDARY = b"wcfuzz"
VALID = (
    b"--wcfuzz\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\nfile_upload\r\n"
    b"--wcfuzz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nfz-pkg\r\n"
    b"--wcfuzz\r\nContent-Disposition: form-data; name=\"classifiers\"\r\n\r\nA :: B\r\n"
    b"--wcfuzz\r\nContent-Disposition: form-data; name=\"content\"; filename=\"fz_pkg-1.0-py3-none-any.whl\"\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n" + bytes(range(256)) * 8 + b"\r\n--wcfuzz--\r\n"
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _parse(tmp_path: Path, body: bytes, chunk: int, content_type: bytes = b"multipart/form-data; boundary=wcfuzz") -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")

    async def go() -> None:
        parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]

        async def receive() -> dict[str, object]:
            if not parts:
                return {"type": "http.disconnect"}
            first = parts.pop(0)
            return {"type": "http.request", "body": first, "more_body": bool(parts)}

        scope = {"type": "http", "method": "POST", "path": "/legacy/", "headers": [(b"content-type", content_type)],
                 "query_string": b""}
        try:
            form = await read_upload_form(Request(scope, receive), store, 1 << 20)  # type: ignore[arg-type]
        except WheelcaveError as exc:
            assert exc.status in (400, 413) and "\n" not in exc.message
            assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
            return
        if form.temp is not None:
            form.temp.discard()

    asyncio.run(go())


def _mutate(edits: list[tuple[int, int]], cut: int | None) -> bytes:
    data = bytearray(VALID)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data[:cut] if cut is not None else data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), max_size=10),
       st.integers(0, len(VALID)) | st.none(), st.integers(1, 4096))
def test_mutated_forms(tmp_path: Path, edits: list[tuple[int, int]], cut: int | None, chunk: int) -> None:
    _parse(tmp_path, _mutate(edits, cut), chunk)


@FUZZ
@given(st.binary(max_size=4096), st.integers(1, 512))
def test_random_bodies(tmp_path: Path, body: bytes, chunk: int) -> None:
    _parse(tmp_path, body, chunk)


@FUZZ
@given(st.binary(max_size=200))
def test_random_content_types(tmp_path: Path, content_type: bytes) -> None:
    _parse(tmp_path, VALID, 512, content_type)
