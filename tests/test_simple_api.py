"""The read APIs over HTTP against a real server (protocols.md T1, T2, T3, T5, T6;
issue #2 acceptance 6 with the pypi-simple parser)."""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path

import httpx
import pypi_simple
import pytest
import zstandard
from packaging.utils import canonicalize_name

from tests.support.dists import make_sdist, make_wheel
from tests.support.server import Server
from tests.support.upload import upload

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


@pytest.fixture(scope="module")
def project(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``api-demo``: 1.0 (wheel + sdist, yanked with a reason), 1.1 wheel yanked without
    reason, 2.0 wheel with Requires-Python."""
    tmp = tmp_path_factory.mktemp("api-demo")
    auth = ("admin", server.admin_password)
    files = {
        "w10": make_wheel(tmp, "Api_Demo", "1.0", summary="demo one"),
        "s10": make_sdist(tmp, "api-demo", "1.0"),
        "w11": make_wheel(tmp, "api-demo", "1.1"),
        "w20": make_wheel(tmp, "api-demo", "2.0", requires_python=">=3.8,<4", requires_dist=["attrs>=1"], summary="demo two"),
    }
    for path in files.values():
        r = upload(f"{server.url}/legacy/", path, auth=auth)
        assert r.status_code == 200, r.text
    server.cli("yank", "local", "api-demo", "1.0", "--reason", "broken build")
    server.cli("yank", "local", "api-demo", "1.1")
    return files


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_redirects_t1_1_t1_2(server: Server, project: dict[str, Path]) -> None:
    r = httpx.get(f"{server.url}/simple/Api_Demo/")
    assert r.status_code == 301
    assert r.headers["location"].endswith("/simple/api-demo/")
    r = httpx.get(f"{server.url}/simple/api-demo?x=1")
    assert r.status_code == 301
    assert r.headers["location"].endswith("/simple/api-demo/?x=1")
    r = httpx.get(f"{server.url}/index/local/simple/API.demo/")
    assert r.headers["location"].endswith("/index/local/simple/api-demo/")


def test_unknown_project_404_t1_3(server: Server) -> None:
    assert httpx.get(f"{server.url}/simple/no-such-project/").status_code == 404
    assert httpx.get(f"{server.url}/index/nope/simple/x/").status_code == 404


def test_pypi_simple_parses_html_and_json_acceptance_6(server: Server, project: dict[str, Path]) -> None:
    for accept in (JSON, "text/html"):
        with pypi_simple.PyPISimple(f"{server.url}/simple/", accept=accept) as client:
            page = client.get_project_page("api-demo")
        by_name = {p.filename: p for p in page.packages}
        assert set(by_name) == {p.name for p in project.values()}
        for key, path in project.items():
            pkg = by_name[path.name]
            assert pkg.digests["sha256"] == sha(path)
            assert pkg.project == "api-demo" or pkg.project.lower().replace("_", "-") == "api-demo"
            assert pkg.is_yanked == (key in {"w10", "s10", "w11"})
        assert by_name[project["w10"].name].yanked_reason == "broken build"
        assert by_name[project["w20"].name].requires_python == ">=3.8,<4"
        assert by_name[project["w20"].name].has_metadata is True
        assert by_name[project["s10"].name].has_metadata in (None, False)
        if accept == JSON:
            assert by_name[project["w20"].name].size == project["w20"].stat().st_size
            assert by_name[project["w20"].name].upload_time is not None
        # and every URL serves the bytes with that hash (T1.4)
        for pkg in page.packages:
            assert hashlib.sha256(httpx.get(pkg.url).content).hexdigest() == pkg.digests["sha256"]
    with pypi_simple.PyPISimple(f"{server.url}/simple/") as client:
        assert "api-demo" in {canonicalize_name(n) for n in client.get_index_page().projects}


def test_html_wire_details_t1_5_t1_6_t1_7(server: Server, project: dict[str, Path]) -> None:
    html = httpx.get(f"{server.url}/simple/api-demo/").text
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in html
    assert 'data-yanked=""' in html
    assert 'data-yanked="broken build"' in html
    assert '<meta name="pypi:repository-version"' in html
    assert '<meta name="pypi:repository-version"' in httpx.get(f"{server.url}/simple/").text


@pytest.mark.parametrize(
    "accept",
    [PIP_ACCEPT, "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01",
     "application/vnd.pypi.simple.v1+json, */*;q=0.1", "application/vnd.pypi.simple.latest+json"],
)
def test_negotiation_json_t2_1_t2_5(server: Server, project: dict[str, Path], accept: str) -> None:
    r = httpx.get(f"{server.url}/simple/api-demo/", headers={"Accept": accept})
    assert r.headers["content-type"] == JSON
    assert "Accept" in r.headers["vary"]


@pytest.mark.parametrize("accept", [None, "*/*", "text/html"])
def test_negotiation_html_t2_2(server: Server, project: dict[str, Path], accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    r = httpx.get(f"{server.url}/simple/api-demo/", headers=headers)
    assert r.headers["content-type"] == "text/html; charset=utf-8"


def test_negotiation_406_and_format_t2_3_t2_4(server: Server, project: dict[str, Path]) -> None:
    r = httpx.get(f"{server.url}/simple/api-demo/", headers={"Accept": "application/json"})
    assert r.status_code == 406
    assert "Accept" in r.headers["vary"]
    r = httpx.get(f"{server.url}/simple/api-demo/?format=application/vnd.pypi.simple.v1+html", headers={"Accept": JSON})
    assert r.headers["content-type"].startswith("application/vnd.pypi.simple.v1+html")


def test_json_page_t2_6_t3_2(server: Server, project: dict[str, Path]) -> None:
    r = httpx.get(f"{server.url}/simple/api-demo/", headers={"Accept": JSON})
    doc = r.json()
    assert doc["meta"]["api-version"].count(".") == 1
    assert set(doc["versions"]) == {"1.0", "1.1", "2.0"}
    for f in doc["files"]:
        assert {"filename", "url", "hashes", "size"} <= f.keys()
    assert b"dist-info-metadata" not in r.content
    yanked = {f["filename"]: f["yanked"] for f in doc["files"]}
    assert yanked[project["w10"].name] == "broken build"
    assert yanked[project["w11"].name] is True
    assert yanked[project["w20"].name] is False


def test_etag_304_and_representations_t6_4_t2_7(server: Server, project: dict[str, Path]) -> None:
    url = f"{server.url}/simple/api-demo/"
    j = httpx.get(url, headers={"Accept": JSON})
    h = httpx.get(url, headers={"Accept": "text/html"})
    assert j.headers["etag"] != h.headers["etag"]
    r = httpx.get(url, headers={"Accept": JSON, "If-None-Match": j.headers["etag"]})
    assert r.status_code == 304
    assert r.headers["etag"] == j.headers["etag"]
    assert "Accept" in r.headers["vary"]
    r = httpx.get(url, headers={"Accept": "text/html", "If-None-Match": j.headers["etag"]})
    assert r.status_code == 200


@pytest.mark.parametrize(("accept_encoding", "coding"), [
    ("gzip", "gzip"), ("gzip, deflate", "gzip"),  # pip
    ("gzip, deflate, zstd", "zstd"), ("zstd", "zstd"),  # uv takes zstd: cheaper to make
    ("zstd;q=0, gzip", "gzip"), ("zstd;q=0", None), ("br", None), ("identity", None),
])
def test_compressed_pages(server: Server, project: dict[str, Path], accept_encoding: str, coding: str | None) -> None:
    url = f"{server.url}/simple/api-demo/"
    raw = httpx.get(url, headers={"Accept": JSON, "Accept-Encoding": "identity"})
    with httpx.Client() as c:
        r = c.send(c.build_request("GET", url, headers={"Accept": JSON, "Accept-Encoding": accept_encoding}), stream=True)
        wire = b"".join(r.iter_raw())  # as sent, not decoded
        r.close()
    assert r.headers.get("content-encoding") == coding
    decoded = {"gzip": gzip.decompress, "zstd": zstandard.ZstdDecompressor().decompressobj().decompress,
               None: lambda body: body}[coding](wire)
    assert decoded == raw.content
    # One ETag a coding; any of them revalidates.
    assert (r.headers["etag"] == raw.headers["etag"]) == (coding is None)
    again = httpx.get(url, headers={"Accept": JSON, "Accept-Encoding": "identity", "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_new_upload_shows_at_once(server: Server, tmp_path: Path) -> None:
    auth = ("admin", server.admin_password)
    url = f"{server.url}/simple/api-fresh/"
    assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, "api-fresh", "1.0"), auth=auth).status_code == 200
    before = httpx.get(url, headers={"Accept": JSON})
    assert httpx.get(url, headers={"Accept": JSON, "If-None-Match": before.headers["etag"]}).status_code == 304
    new = make_wheel(tmp_path, "api-fresh", "2.0")
    assert upload(f"{server.url}/legacy/", new, auth=auth).status_code == 200
    after = httpx.get(url, headers={"Accept": JSON, "If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert new.name in {f["filename"] for f in after.json()["files"]}


def test_files_head_range_t6_1_t6_2_t6_3(server: Server, project: dict[str, Path]) -> None:
    path = project["w20"]
    data = path.read_bytes()
    url = f"{server.url}/files/sha256/{sha(path)}/{path.name}"
    r = httpx.head(url)
    assert r.status_code == 200
    assert r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(data)
    assert "content-encoding" not in r.headers
    r = httpx.get(url, headers={"Range": "bytes=-100"})
    assert r.status_code == 206
    assert r.content == data[-100:]
    assert r.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
    r = httpx.get(url, headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.content == data[:10]
    r = httpx.get(url, headers={"Range": "bytes=10-"})
    assert r.content == data[10:]
    r = httpx.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    r = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200 and r.content == data
    assert httpx.get(url, headers={"If-None-Match": f'"{sha(path)}"'}).status_code == 304
    assert httpx.get(f"{server.url}/files/sha256/{sha(path)}/other-name.whl").status_code == 404
    assert httpx.get(f"{server.url}/files/sha256/{'0' * 64}/{path.name}").status_code == 404
    assert httpx.get(f"{server.url}/files/sha256/nothex/{path.name}").status_code == 404


def test_metadata_files_t3_1(server: Server, project: dict[str, Path]) -> None:
    doc = httpx.get(f"{server.url}/simple/api-demo/", headers={"Accept": JSON}).json()
    for f in doc["files"]:
        url = httpx.URL(f"{server.url}/simple/api-demo/").join(f["url"])
        meta = f["core-metadata"]
        if f["filename"].endswith(".whl"):
            r = httpx.get(f"{url}.metadata")
            assert r.status_code == 200
            assert hashlib.sha256(r.content).hexdigest() == meta["sha256"]
            local = next((p for p in project.values() if p.name == f["filename"]), None)
            if local is None:  # uploaded by another test of this module
                continue
            with zipfile.ZipFile(local) as zf:
                inner = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                assert zf.read(inner) == r.content
        else:
            assert meta is False
            assert httpx.get(f"{url}.metadata").status_code == 404


def test_pypi_json_api_t5(server: Server, project: dict[str, Path]) -> None:
    r = httpx.get(f"{server.url}/pypi/Api_Demo/json")
    assert r.status_code == 301
    assert r.headers["location"].endswith("/pypi/api-demo/json")
    doc = httpx.get(f"{server.url}/pypi/api-demo/json").json()
    info = doc["info"]
    assert info["version"] == "2.0"  # the newest not-yanked release
    assert info["requires_dist"] == ["attrs>=1"]
    assert info["requires_python"] == ">=3.8,<4"
    assert info["summary"] == "demo two"
    assert set(doc["releases"]) == {"1.0", "1.1", "2.0"}
    f = doc["urls"][0]
    assert f["digests"]["sha256"] == sha(project["w20"])
    assert f["packagetype"] == "bdist_wheel" and f["python_version"] == "py3"
    assert httpx.get(f["url"]).status_code == 200
    one = httpx.get(f"{server.url}/pypi/api-demo/1.0/json").json()
    assert "releases" not in one
    assert one["info"]["yanked"] is True and one["info"]["yanked_reason"] == "broken build"
    assert one["info"]["requires_dist"] is None
    assert {u["packagetype"] for u in one["urls"]} == {"bdist_wheel", "sdist"}
    assert httpx.get(f"{server.url}/pypi/api-demo/9.9/json").status_code == 404
    assert httpx.get(f"{server.url}/pypi/nothing-here/json").status_code == 404
    assert httpx.get(f"{server.url}/index/local/pypi/api-demo/json").json()["info"]["version"] == "2.0"


def test_unyank(server: Server, project: dict[str, Path], tmp_path: Path) -> None:
    new = make_wheel(tmp_path, "api-unyank", "1.0")
    assert upload(f"{server.url}/legacy/", new, auth=("admin", server.admin_password)).status_code == 200
    server.cli("yank", "local", "api-unyank", "1.0", "--reason", "oops")
    assert 'data-yanked="oops"' in httpx.get(f"{server.url}/simple/api-unyank/").text
    server.cli("unyank", "local", "api-unyank", "1.0")
    assert "data-yanked" not in httpx.get(f"{server.url}/simple/api-unyank/").text
    bad = server.cli("yank", "local", "api-unyank", "7.0", check=False)
    assert bad.returncode == 1 and "error: Nothing to yank" in bad.stderr


def test_garbage_paths_are_client_errors(server: Server) -> None:
    for path in ("/simple/%ED%A0%80/", "/simple/a%00b/", "/files/sha256/" + "0" * 64 + "/x%ED%A0%80.whl",
                 "/pypi/%C3%87Y%0E/json", "/api/v1/indexes/main/projects/%ED%A0%80",
                 "/api/v1/search?q=a%00b", "/api/v1/audit?action=%00%F1"):
        r = httpx.get(f"{server.url}{path}")
        assert 400 <= r.status_code < 500, (path, r.status_code)


@pytest.mark.parametrize("accept", [JSON, "text/html"])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "gzip, deflate, zstd"])
def test_fast_path_answers_like_the_route(server: Server, project: dict[str, Path], accept: str, encoding: str) -> None:
    """A cached page is answered before routing; it must be the route's answer to the byte."""
    headers = {"Accept": accept, "Accept-Encoding": encoding}
    url = f"{server.url}/simple/api-demo/"
    httpx.get(url, headers=headers)  # fill the cache
    with httpx.Client() as client:
        fast = client.send(client.build_request("GET", url, headers=headers), stream=True)
        slow = client.send(client.build_request("GET", url + "?via=route", headers=headers), stream=True)
        fast_body, slow_body = fast.read(), slow.read()
    drop = {"date", "x-request-id"}  # a new id for each answer
    assert fast.headers["x-request-id"] != slow.headers["x-request-id"]
    assert {k: v for k, v in fast.headers.items() if k not in drop} == {k: v for k, v in slow.headers.items() if k not in drop}
    assert fast_body == slow_body
    for r in (fast, slow):
        etag = r.headers["etag"]
        assert httpx.get(r.url, headers={**headers, "If-None-Match": etag}).status_code == 304
    head = httpx.head(url, headers=headers)
    assert head.status_code == 200 and head.headers["content-length"] == fast.headers["content-length"]


def test_fast_path_serves_private_pages_only_to_their_readers(server: Server, tmp_path: Path) -> None:
    """A private page in the cache is answered early only for credentials this process has
    verified, with the same bytes and headers as the route; others get the route's 401/404."""
    from tests.support.dists import make_wheel
    from tests.support.upload import upload

    api, admin = f"{server.url}/api/v1", ("admin", server.admin_password)
    httpx.post(f"{api}/indexes", json={"name": "fp-private", "kind": "hosted", "private": True}, auth=admin).raise_for_status()
    httpx.post(f"{api}/users", json={"name": "fp-reader", "password": "fp-password-1"}, auth=admin).raise_for_status()
    httpx.post(f"{api}/users", json={"name": "fp-outsider", "password": "fp-password-1"}, auth=admin).raise_for_status()
    httpx.post(f"{api}/indexes/fp-private/acl/grant", json={"principal": "fp-reader", "permissions": ["read"]},
               auth=admin).raise_for_status()
    assert upload(f"{server.url}/index/fp-private/", make_wheel(tmp_path, "fp-secret", "1.0"), auth=admin).status_code == 200
    token = httpx.post(f"{api}/tokens", json={}, auth=("fp-reader", "fp-password-1")).json()["token"]
    url = f"{server.url}/index/fp-private/simple/fp-secret/"
    for auth in (("fp-reader", "fp-password-1"), ("__token__", token)):
        first = httpx.get(url, headers={"Accept": JSON}, auth=auth)  # verifies the credentials, fills the cache
        fast = httpx.get(url, headers={"Accept": JSON}, auth=auth)
        slow = httpx.get(url + "?via=route", headers={"Accept": JSON}, auth=auth)
        assert first.status_code == fast.status_code == slow.status_code == 200
        assert fast.content == slow.content and fast.headers["cache-control"].endswith("private")
        drop = {"date", "x-request-id"}
        assert {k: v for k, v in fast.headers.items() if k not in drop} == {k: v for k, v in slow.headers.items() if k not in drop}
    assert httpx.get(url, headers={"Accept": JSON}).status_code == 401
    assert httpx.get(url, headers={"Accept": JSON}, auth=("fp-outsider", "fp-password-1")).status_code == 404
    assert httpx.get(url, headers={"Accept": JSON}, auth=("fp-reader", "wrong-password")).status_code == 401
