"""The legacy upload API on both database backends (protocols.md §4, issue #2 acceptance 4, 5)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.dists import make_sdist, make_wheel, metadata_text, sdist_bytes, wheel_bytes
from tests.support.server import Server
from tests.support.upload import upload


@pytest.fixture
def auth(server: Server) -> tuple[str, str]:
    return ("admin", server.admin_password)


def blob_files(server: Server) -> set[str]:
    return {p.name for p in (server.data_dir / "blobs" / "sha256").rglob("*") if p.is_file()}


def temp_files(server: Server) -> list[Path]:
    return list((server.data_dir / "blobs" / "tmp").iterdir())


def project_status(server: Server, project: str) -> int:
    return httpx.get(f"{server.url}/simple/{project}/").status_code


def test_upload_then_listed_and_idempotent_t4_2(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-basic", "1.0", summary="basic")
    r = upload(f"{server.url}/legacy/", whl, auth=auth)
    assert r.status_code == 200, r.text
    page = httpx.get(f"{server.url}/simple/up-basic/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert [f["filename"] for f in page["files"]] == [whl.name]
    assert page["files"][0]["hashes"]["sha256"] == hashlib.sha256(whl.read_bytes()).hexdigest()
    # Same bytes again: a retry, 200, nothing new.
    before = blob_files(server)
    r = upload(f"{server.url}/legacy/", whl, auth=auth)
    assert r.status_code == 200, r.text
    assert blob_files(server) == before


def test_other_bytes_same_filename_409_t4_3(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-dup", "1.0")
    assert upload(f"{server.url}/legacy/", whl, auth=auth).status_code == 200
    other = wheel_bytes("up-dup", "1.0", summary="different bytes")
    before = blob_files(server)
    r = upload(f"{server.url}/legacy/", whl, auth=auth, data=other)
    assert r.status_code == 409
    assert r.text.strip() == f"File already exists: {whl.name}"
    assert r.reason_phrase == f"File already exists: {whl.name}"  # what twine shows
    assert blob_files(server) == before


def test_concurrent_uploads_one_wins(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-race", "1.0")
    variants = [wheel_bytes("up-race", "1.0", summary=f"variant {i}") for i in range(2)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda data: upload(f"{server.url}/legacy/", whl, auth=auth, data=data), variants))
    assert sorted(r.status_code for r in results) == [200, 409]
    winner = variants[[r.status_code for r in results].index(200)]
    page = httpx.get(f"{server.url}/simple/up-race/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert page["files"][0]["hashes"]["sha256"] == hashlib.sha256(winner).hexdigest()


def test_upload_to_named_index_and_no_slash_t4_7(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-named", "1.0")
    r = upload(f"{server.url}/index/local", whl, auth=auth)
    assert r.status_code == 200, r.text
    sdist = make_sdist(tmp_path, "up-named", "1.0")
    r = upload(f"{server.url}/legacy", sdist, auth=auth)
    assert r.status_code == 200, r.text
    assert not r.is_redirect
    page = httpx.get(f"{server.url}/index/local/simple/up-named/").text
    assert whl.name in page and sdist.name in page
    # ...and through main (virtual over local) at the root.
    assert whl.name in httpx.get(f"{server.url}/simple/up-named/").text


def test_upload_to_virtual_goes_to_its_target(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-virtual", "1.0")
    assert upload(f"{server.url}/index/main/", whl, auth=auth).status_code == 200
    assert whl.name in httpx.get(f"{server.url}/index/local/simple/up-virtual/").text


def test_legacy_sdist_spellings_t8_4(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    post = make_sdist(tmp_path, "up-legacy", "1.0.post1")
    assert upload(f"{server.url}/legacy/", post, auth=auth).status_code == 200
    data = sdist_bytes("Up-Legacy", "1.0", top="Up-Legacy-1.0")
    old = tmp_path / "Up-Legacy-1.0.tar.gz"
    old.write_bytes(data)
    r = upload(f"{server.url}/legacy/", old, auth=auth, name="Up-Legacy")
    assert r.status_code == 200, r.text
    page = httpx.get(f"{server.url}/simple/up-legacy/").text
    assert post.name in page and old.name in page


def test_token_auth(server: Server, token: str, tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-token", "1.0")
    assert upload(f"{server.url}/legacy/", whl, auth=("__token__", token)).status_code == 200


# ---------------------------------------------------------------- bad input: 4xx, nothing kept


def assert_nothing_kept(server: Server, before: set[str], project: str) -> None:
    assert blob_files(server) == before
    assert temp_files(server) == []
    assert project_status(server, project) == 404


@pytest.mark.parametrize(
    ("auth_value", "expected"),
    [(None, 401), (("admin", "wrong-password"), 401), (("nobody", "whatever1"), 401),
     (("__token__", "wc_not-a-real-token"), 401)],
    ids=["no-auth", "wrong-password", "unknown-user", "wrong-token"],
)
def test_bad_credentials_t4_4(server: Server, tmp_path: Path, auth_value: tuple[str, str] | None, expected: int) -> None:
    whl = make_wheel(tmp_path, "up-noauth", "1.0")
    before = blob_files(server)
    r = upload(f"{server.url}/legacy/", whl, auth=auth_value)
    assert r.status_code == expected
    assert r.headers["www-authenticate"].startswith("Basic realm=")
    assert len(r.text.strip().splitlines()) == 1
    assert_nothing_kept(server, before, "up-noauth")


def _bad_cases(tmp: Path) -> list[tuple[str, Path, dict[str, object], int, str]]:
    whl = make_wheel(tmp, "up-bad", "1.0")
    mismatched = tmp / "up_bad-2.0-py3-none-any.whl"
    mismatched.write_bytes(wheel_bytes("up-bad", "2.0.1"))  # metadata says 2.0.1, filename 2.0
    other_name = tmp / "up_bad-1.0-py2-none-any.whl"
    other_name.write_bytes(wheel_bytes("something-else", "1.0", dist_info="up_bad-1.0.dist-info"))
    not_zip = tmp / "up_bad-1.1-py3-none-any.whl"
    not_zip.write_bytes(b"this is not a zip file at all" * 10)
    full = wheel_bytes("up-bad", "1.2")
    truncated = tmp / "up_bad-1.2-py3-none-any.whl"
    truncated.write_bytes(full[: len(full) // 2])
    sd = sdist_bytes("up-bad", "1.3")
    trunc_sdist = tmp / "up_bad-1.3.tar.gz"
    trunc_sdist.write_bytes(sd[: len(sd) - 40])
    not_tar = tmp / "up_bad-1.4.tar.gz"
    not_tar.write_bytes(b"\x1f\x8b" + b"garbage" * 50)
    huge = tmp / "up_bad-1.5-py3-none-any.whl"
    huge.write_bytes(wheel_bytes("up-bad", "1.5", description="x" * (5 * 2**20)))
    unknown = tmp / "up_bad-1.6-py3-none-any.whl"
    unknown.write_bytes(wheel_bytes("up-bad", "1.6", extra_headers="Frobnicate: yes\n"))
    no_metadata = tmp / "up_bad-1.7-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("up_bad/__init__.py", "")
    no_metadata.write_bytes(buf.getvalue())
    evil_member = tmp / "up_bad-1.8.tar.gz"
    evil_member.write_bytes(sdist_bytes("up-bad", "1.8", extra_members={"../../evil.py": b"x"}))
    return [
        ("version-mismatch", mismatched, {}, 400, "does not match"),
        ("name-mismatch", other_name, {}, 400, "does not match"),
        ("not-a-zip", not_zip, {}, 400, "not a valid zip archive"),
        ("truncated-wheel", truncated, {}, 400, "not a valid zip archive or is truncated"),
        ("truncated-sdist", trunc_sdist, {}, 400, "not a valid tar archive or is truncated"),
        ("not-a-tar", not_tar, {}, 400, "not a valid tar archive"),
        ("metadata-too-large", huge, {}, 400, "larger than the limit"),
        ("unknown-metadata-field", unknown, {}, 400, "frobnicate"),
        ("no-metadata", no_metadata, {}, 400, "METADATA"),
        ("archive-path-trick", evil_member, {}, 400, "unsafe path"),
        ("dotdot-filename", whl, {"filename": "../../up_bad-1.0-py3-none-any.whl"}, 400, "without a path"),
        ("absolute-filename", whl, {"filename": "/tmp/up_bad-1.0-py3-none-any.whl"}, 400, "without a path"),
        ("invalid-name", whl, {"name": "up bad!"}, 400, "invalid value for Name"),
        ("wrong-digest", whl, {"sha256_digest": "0" * 64}, 400, "digest supplied does not match"),
        ("no-digest", whl, {"sha256_digest": None, "blake2_256_digest": None}, 400, "digest"),
        ("protocol-2-t4-6", whl, {"protocol_version": "2"}, 400, "Unknown protocol version"),
        ("bad-extension", whl, {"filename": "up_bad-1.0.exe"}, 400, "Invalid file extension"),
        ("filetype-mismatch", whl, {"filetype": "sdist"}, 400, "does not match"),
    ]


CASE_IDS = [
    "version-mismatch", "name-mismatch", "not-a-zip", "truncated-wheel", "truncated-sdist",
    "not-a-tar", "metadata-too-large", "unknown-metadata-field", "no-metadata",
    "archive-path-trick", "dotdot-filename", "absolute-filename", "invalid-name", "wrong-digest",
    "no-digest", "protocol-2-t4-6", "bad-extension", "filetype-mismatch",
]


def test_case_ids_cover_every_case(tmp_path: Path) -> None:
    assert [c[0] for c in _bad_cases(tmp_path)] == CASE_IDS


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_input_is_refused_and_leaves_nothing(server: Server, auth: tuple[str, str], tmp_path: Path, case: str) -> None:
    name, path, overrides, status, message = next(c for c in _bad_cases(tmp_path) if c[0] == case)
    before = blob_files(server)
    filename = overrides.pop("filename", None)
    r = upload(f"{server.url}/legacy/", path, auth=auth, filename=filename, **overrides)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert message.lower() in r.text.lower()
    assert len(r.text.strip().splitlines()) == 1, r.text
    assert_nothing_kept(server, before, "up-bad")


def test_not_multipart_and_missing_file(server: Server, auth: tuple[str, str]) -> None:
    r = httpx.post(f"{server.url}/legacy/", content=b"hello", auth=auth)
    assert r.status_code == 400
    assert "multipart/form-data" in r.text
    r = httpx.post(f"{server.url}/legacy/", data={":action": "file_upload", "name": "x"}, files={"x": ("a", b"")}, auth=auth)
    assert r.status_code == 400
    assert "does not have a file" in r.text


def test_truncated_body_leaves_nothing(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-cut", "1.0")
    request = httpx.Request("POST", f"{server.url}/legacy/", data={"name": "up-cut", "version": "1.0"},
                            files={"content": (whl.name, whl.read_bytes())})
    body = request.read()
    before = blob_files(server)
    r = httpx.post(
        f"{server.url}/legacy/", content=body[: len(body) - 100],
        headers={"Content-Type": request.headers["content-type"]}, auth=auth,
    )
    assert r.status_code == 400
    assert "incomplete" in r.text
    assert_nothing_kept(server, before, "up-cut")


def test_json_errors_for_uv(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    whl = make_wheel(tmp_path, "up-json", "1.0")
    r = upload(f"{server.url}/legacy/", whl, auth=auth, protocol_version="9",
               headers={"Accept": "application/json;q=0.9, text/plain;q=0.8, text/html;q=0.7"})
    assert r.status_code == 400
    assert r.json()["message"] == "Unknown protocol version."


def test_metadata_warnings_are_returned(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    meta = metadata_text("up-warn", "1.0") + "License-File: LICENSE\n"
    whl = make_wheel(tmp_path, "up-warn", "1.0", metadata=meta)
    r = upload(f"{server.url}/legacy/", whl, auth=auth)
    assert r.status_code == 200
    assert "license-file" in r.text


def test_concurrent_first_uploads_of_one_project(server: Server, auth: tuple[str, str], tmp_path: Path) -> None:
    """uv publishes a wheel and an sdist at once: both must land, not one 409."""
    paths = [make_wheel(tmp_path, "up-pair", "1.0"), make_sdist(tmp_path, "up-pair", "1.0"),
             make_wheel(tmp_path, "up-pair", "1.0", tag="py2-none-any")]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda p: upload(f"{server.url}/legacy/", p, auth=auth), paths))
    assert [r.status_code for r in results] == [200, 200, 200], [r.text for r in results]
    page = httpx.get(f"{server.url}/simple/up-pair/").text
    assert all(p.name in page for p in paths)
