"""Issue 9 acceptance 1: for every principal kind × index kind, pip install, uv install, twine
upload and the API's yank, delete and manage calls succeed or fail exactly as the access lists
say; a file URL of a private index is 401 (anonymous) or 404 (signed in) for outsiders.

Each principal kind gets its own private hosted, mirror and virtual index (``<kind>-h``,
``-m``, ``-v``; the virtual one is ``[h, m]`` and uploads to ``h``), with the grants in
``GRANTS``; ``RIGHTS`` is what those grants mean, written out by hand as the oracle.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import run
from tests.support.dists import make_wheel, wheel_bytes
from tests.support.server import BIN, Server, clean_env, ok
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile

KINDS = ["user", "group", "authenticated", "anonymous", "scoped-token", "expired-token"]
ALL = {"read", "upload", "yank", "delete", "manage"}

# kind -> (principal granted, {index suffix: permissions granted})
GRANTS: dict[str, tuple[str, dict[str, set[str]]]] = {
    "user": ("user:mx-ulla", {"h": {"read", "upload", "yank"}, "m": {"read"}, "v": {"read"}}),
    "group": ("group:mx-gang", {"h": {"read", "upload", "delete"}, "v": {"read"}}),
    "authenticated": ("authenticated", {"h": {"read", "upload"}, "m": {"read"}, "v": {"read"}}),
    "anonymous": ("anonymous", {"h": {"read"}, "v": {"read"}}),
    # tess holds everything; her token is limited to h and v, read and upload
    "scoped-token": ("user:mx-tess", {"h": ALL, "m": ALL, "v": ALL}),
    # exa holds everything; her token has expired
    "expired-token": ("user:mx-exa", {"h": ALL, "m": ALL, "v": ALL}),
}
# What each kind may do, by index suffix (the oracle: what the grants above must mean).
RIGHTS: dict[str, dict[str, set[str]]] = {
    "user": {"h": {"read", "upload", "yank"}, "m": {"read"}, "v": {"read"}},
    "group": {"h": {"read", "upload", "delete"}, "m": set(), "v": {"read"}},
    "authenticated": {"h": {"read", "upload"}, "m": {"read"}, "v": {"read"}},
    "anonymous": {"h": {"read"}, "m": set(), "v": {"read"}},
    "scoped-token": {"h": {"read", "upload"}, "m": set(), "v": {"read"}},
    "expired-token": {"h": set(), "m": set(), "v": set()},
}
PASSWORD = "matrix-password-1"


@dataclass
class Setup:
    server: Server
    auth: dict[str, tuple[str, str] | None]
    admin: tuple[str, str]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    up.add("mx-up", UpFile("mx_up-1.0-py3-none-any.whl", wheel_bytes("mx-up", "1.0")))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Setup]:
    srv = Server(tmp_path_factory.mktemp("matrix") / "data").start()
    admin = ("admin", srv.admin_password)
    api = f"{srv.url}/api/v1"
    tmp = tmp_path_factory.mktemp("matrix-dists")
    for user in ("mx-ulla", "mx-gus", "mx-auth", "mx-tess", "mx-exa", "mx-outsider"):
        ok(httpx.post(f"{api}/users", json={"name": user, "password": PASSWORD}, auth=admin))
    ok(httpx.post(f"{api}/groups", json={"name": "mx-gang"}, auth=admin))
    ok(httpx.post(f"{api}/groups/mx-gang/members", json={"users": ["mx-gus"]}, auth=admin))
    for kind, (principal, grants) in GRANTS.items():
        h, m, v = f"{kind}-h", f"{kind}-m", f"{kind}-v"
        ok(httpx.post(f"{api}/indexes", json={"name": h, "kind": "hosted", "private": True}, auth=admin))
        ok(httpx.post(f"{api}/indexes", json={"name": m, "kind": "mirror", "private": True,
                                               "config": {"upstream": upstream.url}}, auth=admin))
        ok(httpx.post(f"{api}/indexes", json={"name": v, "kind": "virtual", "private": True,
                                               "config": {"members": [h, m], "upload_to": h}}, auth=admin))
        for suffix, perms in grants.items():
            ok(httpx.post(f"{api}/indexes/{kind}-{suffix}/acl/grant",
                           json={"principal": principal, "permissions": sorted(perms)}, auth=admin))
        ok(upload(f"{srv.url}/index/{h}/", make_wheel(tmp, f"acc-{kind}", "1.0"), auth=admin))
    scoped = httpx.post(f"{api}/tokens", json={"indexes": ["scoped-token-h", "scoped-token-v"],
                                                "permissions": ["read", "upload"]}, auth=("mx-tess", PASSWORD))
    ok(scoped)
    expiring = httpx.post(f"{api}/tokens", json={"expires_in": "1s"}, auth=("mx-exa", PASSWORD))
    ok(expiring)
    expired = ("__token__", expiring.json()["token"])
    for _ in range(200):  # poll until the token has expired (its lifetime is one second)
        if httpx.get(f"{api}/whoami", auth=expired).status_code == 401:
            break
        httpx.get(f"{srv.url}/health", timeout=5)
    else:
        pytest.fail("the one-second token never expired")
    auth: dict[str, tuple[str, str] | None] = {
        "user": ("mx-ulla", PASSWORD), "group": ("mx-gus", PASSWORD), "authenticated": ("mx-auth", PASSWORD),
        "anonymous": None, "scoped-token": ("__token__", scoped.json()["token"]), "expired-token": expired,
    }
    yield Setup(srv, auth, admin)
    srv.stop()


def _index_url(srv: Server, index: str, auth: tuple[str, str] | None) -> str:
    userinfo = f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}@" if auth else ""
    return f"http://{userinfo}127.0.0.1:{srv.port}/index/{index}/simple/"


def _may_read(kind: str, suffix: str, project_from: str) -> bool:
    """Reading a project through index ``suffix``: through the virtual one it needs read on it
    and on the member that has the project."""
    rights = RIGHTS[kind]
    if suffix == "v":
        return "read" in rights["v"] and "read" in rights[project_from]
    return "read" in rights[suffix]


@pytest.mark.parametrize("kind", KINDS)
def test_installs_follow_the_access_lists(setup: Setup, kind: str, tmp_path: Path) -> None:
    env = clean_env({"PIP_CACHE_DIR": str(tmp_path / "pip"), "UV_CACHE_DIR": str(tmp_path / "uv")})
    auth = setup.auth[kind]
    cases = [("h", f"acc-{kind}", "h"), ("v", f"acc-{kind}", "h"), ("m", "mx-up", "m"), ("v", "mx-up", "m")]
    for n, (suffix, project, home) in enumerate(cases):
        url = _index_url(setup.server, f"{kind}-{suffix}", auth)
        expected = _may_read(kind, suffix, home)
        target = tmp_path / f"pip-{n}"
        pip = run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
                   "--index-url", url, project], env, check=False)
        assert (pip.returncode == 0) == expected, (kind, suffix, project, pip.stdout[-800:], pip.stderr[-800:])
        assert any(target.glob("*.dist-info")) == expected
        if home == "h":  # uv too (the mirror cases are the same pages and files)
            target = tmp_path / f"uv-{n}"
            uv = run([str(BIN / "uv"), "pip", "install", "--no-deps", "--target", str(target), "--index-url", url,
                      project], env, check=False)
            assert (uv.returncode == 0) == expected, (kind, suffix, uv.stderr[-800:])


@pytest.mark.parametrize("kind", KINDS)
def test_uploads_follow_the_access_lists(setup: Setup, kind: str, tmp_path: Path) -> None:
    env = clean_env()
    auth = setup.auth[kind]
    expected = "upload" in RIGHTS[kind]["h"]
    for n, via in enumerate(("h", "v")):  # the virtual index passes uploads to h
        wheel = make_wheel(tmp_path, f"acc-{kind}", f"2.{n}")
        url = f"{setup.server.url}/index/{kind}-{via}/"
        if auth is None:
            r = upload(url, wheel, auth=None)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
            continue
        twine = run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
                     "--repository-url", url, "-u", auth[0], "-p", auth[1], str(wheel)], env, check=False)
        assert (twine.returncode == 0) == expected, (kind, via, twine.stdout[-800:], twine.stderr[-800:])
    files = httpx.get(f"{setup.server.url}/api/v1/indexes/{kind}-h/projects/acc-{kind}", auth=setup.admin).json()["files"]
    assert sorted(f["version"] for f in files) == (["1.0", "2.0", "2.1"] if expected else ["1.0"])


def _status(kind: str, action: str, suffix: str) -> int:
    """The answer a refused call gets: 401 without (valid) credentials, 404 when the caller may
    not even read the index, 403 when they may read it but not do this."""
    if kind in ("anonymous", "expired-token"):
        return 401
    return 403 if "read" in RIGHTS[kind][suffix] else 404


@pytest.mark.parametrize("kind", KINDS)
def test_api_changes_follow_the_access_lists(setup: Setup, kind: str) -> None:
    api, auth = f"{setup.server.url}/api/v1", setup.auth[kind]
    project = f"acc-{kind}"
    calls = [
        ("yank", "h", "POST", f"/indexes/{kind}-h/projects/{project}/versions/1.0/yank", {"reason": "matrix"}),
        ("yank", "h", "POST", f"/indexes/{kind}-h/projects/{project}/versions/1.0/unyank", None),
        ("manage", "h", "PATCH", f"/indexes/{kind}-h", {"config": {"prerelease_keep": 3}}),
        ("manage", "m", "PATCH", f"/indexes/{kind}-m", {"config": {"ttl": 900}}),
        ("manage", "v", "PATCH", f"/indexes/{kind}-v", {"config": {"cooldown": 0}}),
        ("delete", "h", "DELETE", f"/indexes/{kind}-h/projects/{project}/versions/1.0", None),
    ]
    for action, suffix, method, path, body in calls:
        r = httpx.request(method, api + path, json=body, auth=auth)
        if action in RIGHTS[kind][suffix]:
            assert r.status_code == 200, (kind, path, r.text)
        else:
            assert r.status_code == _status(kind, action, suffix), (kind, path, r.status_code, r.text)
            assert set(r.json()) == {"error", "message", "code", "title"}
    versions = httpx.get(f"{api}/indexes/{kind}-h/projects/{project}", auth=setup.admin).json()["versions"]
    assert ("1.0" in versions) == ("delete" not in RIGHTS[kind]["h"])


@pytest.mark.parametrize("kind", ["anonymous", "outsider"])
def test_private_file_urls_are_not_served_to_outsiders(setup: Setup, kind: str) -> None:
    """Content addressing is no way around an access list."""
    files = httpx.get(f"{setup.server.url}/api/v1/indexes/group-h/projects/acc-group", auth=setup.admin).json()["files"]
    url = files[0]["url"]
    assert httpx.get(url, auth=setup.admin).status_code == 200
    assert httpx.get(url, auth=("mx-gus", PASSWORD)).status_code == 200  # a reader of group-h
    auth = None if kind == "anonymous" else ("mx-outsider", PASSWORD)
    for target in (url, url + ".metadata"):
        r = httpx.get(target, auth=auth)
        assert r.status_code == (401 if auth is None else 404), (target, r.status_code)
        assert r.content != httpx.get(url, auth=setup.admin).content
    # nor are its pages, and an unknown index answers the same (names never leak)
    for index in ("group-h", "no-such-index"):
        r = httpx.get(f"{setup.server.url}/index/{index}/simple/acc-group/", auth=auth)
        assert r.status_code == (401 if auth is None else 404), (index, r.status_code)
