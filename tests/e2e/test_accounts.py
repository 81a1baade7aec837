"""Accounts and rights end to end: htpasswd import, project ownership, groups, token expiry,
last use and project scope, and a reader's view of a virtual index (issue 9)."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.support.dists import make_wheel
from tests.support.server import Server, ok
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream

PASSWORD = "accounts-password-1"


def _user(server: Server, admin: tuple[str, str], name: str) -> tuple[str, str]:
    ok(httpx.post(f"{server.url}/api/v1/users", json={"name": name, "password": PASSWORD}, auth=admin))
    return (name, PASSWORD)


def test_htpasswd_import(fresh_server: Server, tmp_path: Path) -> None:
    """pypiserver's users move over: bcrypt and SHA-1 entries sign in, and are argon2id after."""
    srv = fresh_server
    bcrypted = bcrypt.hashpw(b"ann-password", bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)
    sha1 = "{SHA}" + base64.b64encode(hashlib.sha1(b"bob-password").digest()).decode()
    bad = tmp_path / "bad.htpasswd"
    bad.write_text(f"ht-ann:{bcrypted}\nht-cy:$apr1$salt$hash\n")
    r = srv.cli("user", "import-htpasswd", str(bad), check=False)
    assert r.returncode == 1 and "line 2 (ht-cy): MD5 (apr1) entries are not supported" in r.stderr
    assert "ht-ann" not in srv.cli("user", "list").stdout  # nothing written
    good = tmp_path / "users.htpasswd"
    good.write_text(f"ht-ann:{bcrypted}\nht-bob:{sha1}\nadmin:{sha1}\n")
    r = srv.cli("user", "import-htpasswd", str(good))
    assert r.stdout.split() == ["created", "ht-ann", "created", "ht-bob"] and "left alone: admin" in r.stderr
    api = f"{srv.url}/api/v1/whoami"
    assert httpx.get(api, auth=("ht-ann", "wrong")).status_code == 401
    assert httpx.get(api, auth=("ht-ann", "ann-password")).json()["name"] == "ht-ann"
    assert httpx.get(api, auth=("ht-bob", "bob-password")).json()["name"] == "ht-bob"
    db = sqlite3.connect(srv.data_dir / "wheelcave.db")
    hashes = dict(db.execute("SELECT name, password_hash FROM users WHERE name LIKE 'ht-%'").fetchall())
    db.close()
    assert all(h.startswith("$argon2id$") for h in hashes.values()), hashes
    # the imported admin entry did not replace the real admin's password
    assert httpx.get(api, auth=("admin", "bob-password")).status_code == 401
    # and they upload like anyone else (twine's way: Basic on the upload)
    assert upload(f"{srv.url}/legacy/", make_wheel(tmp_path, "ht-pkg", "1.0"), auth=("ht-bob", "bob-password")).status_code == 200


def test_project_ownership(server: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    api = f"{server.url}/api/v1"
    ann, bob, cy = (_user(server, admin, n) for n in ("own-ann", "own-bob", "own-cy"))
    assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, "own-proj", "1.0"), auth=ann).status_code == 200
    assert ok(httpx.get(f"{api}/indexes/local/projects/own-proj/owners", auth=bob)).json() == ["user:own-ann"]
    r = upload(f"{server.url}/legacy/", make_wheel(tmp_path, "own-proj", "1.1"), auth=bob)
    assert r.status_code == 403 and "isn't an owner of project 'own-proj'" in r.text
    # the name field cannot smuggle the file past the check
    r = upload(f"{server.url}/legacy/", make_wheel(tmp_path, "own-proj", "1.2"), auth=bob, name="own-bobs-own")
    assert r.status_code in (400, 403)
    # bob may not make himself an owner; ann makes him one
    assert httpx.post(f"{api}/indexes/local/projects/own-proj/owners", json={"principal": "own-bob"}, auth=bob).status_code == 403
    ok(httpx.post(f"{api}/indexes/local/projects/own-proj/owners", json={"principal": "own-bob"}, auth=ann))
    assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, "own-proj", "1.1"), auth=bob).status_code == 200
    # a group owns a project: its members publish, others do not
    server.cli("group", "add", "own-devs")
    server.cli("group", "members", "own-devs", "--add", "own-cy")
    server.cli("owner", "add", "local", "own-proj", "group:own-devs")
    assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, "own-proj", "1.3"), auth=cy).status_code == 200
    server.cli("group", "members", "own-devs", "--remove", "own-cy")
    r = upload(f"{server.url}/legacy/", make_wheel(tmp_path, "own-proj", "1.4"), auth=cy)
    assert r.status_code == 403
    assert server.cli("owner", "list", "local", "own-proj").stdout.split() == ["group:own-devs", "user:own-ann", "user:own-bob"]
    # an index with ownership off takes uploads from any uploader
    ok(httpx.post(f"{api}/indexes", json={"name": "own-scratch", "kind": "hosted", "config": {"project_ownership": False}}, auth=admin))
    assert upload(f"{server.url}/index/own-scratch/", make_wheel(tmp_path, "own-free", "1.0"), auth=ann).status_code == 200
    assert upload(f"{server.url}/index/own-scratch/", make_wheel(tmp_path, "own-free", "1.1"), auth=bob).status_code == 200
    audit = ok(httpx.get(f"{api}/audit", params={"action": "project.owner"}, auth=admin)).json()
    assert {(e["actor"], e["project"], e["address"]) for e in audit} >= {("own-ann", "own-proj", "127.0.0.1")}


def test_token_expiry_last_use_and_project_scope(server: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    api = f"{server.url}/api/v1"
    dee = _user(server, admin, "tok-dee")
    for project in ("tok-one", "tok-two"):
        assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, project, "1.0"), auth=dee).status_code == 200
    created = ok(httpx.post(f"{api}/tokens", json={"projects": ["tok-one"], "permissions": ["upload"], "expires_in": "90d",
                                                    "description": "CI of tok-one"}, auth=dee)).json()
    assert created["projects"] == ["tok-one"] and created["expires_at"] and created["last_used"] is None
    token = ("__token__", created["token"])
    assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, "tok-one", "1.1"), auth=token).status_code == 200
    r = upload(f"{server.url}/legacy/", make_wheel(tmp_path, "tok-two", "1.1"), auth=token)
    assert r.status_code == 403 and "tok-two" in r.text
    listed = {t["id"]: t for t in ok(httpx.get(f"{api}/tokens", auth=dee)).json()}
    assert listed[created["id"]]["last_used"] is not None
    out = server.cli("token", "list", "--user", "tok-dee").stdout
    assert "projects=tok-one" in out and "CI of tok-one" in out
    for bad in ({"expires_in": "soon"}, {"expires_in": "0"}, {"expires_in": "20000d"}, {"permissions": ["root"]},
                {"indexes": ["no-such-index"], "permissions": ["upload"]}, {"index": "local", "indexes": ["local"]}):
        r = httpx.post(f"{api}/tokens", json=bad, auth=dee)
        assert r.status_code == 400, (bad, r.text)
    # a token cannot make tokens that outlive or outreach it
    assert httpx.post(f"{api}/tokens", json={}, auth=token).status_code == 403
    # revoking: by its owner, not by another user
    other = _user(server, admin, "tok-eve")
    assert httpx.delete(f"{api}/tokens/{created['id']}", auth=other).status_code == 404
    assert httpx.delete(f"{api}/tokens/{created['id']}", auth=dee).status_code == 204
    assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, "tok-one", "1.2"), auth=token).status_code == 401


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Server, FakeUpstream]]:
    up = FakeUpstream().start()
    srv = Server(tmp_path / "data").start()
    yield srv, up
    srv.stop()
    up.stop()


def test_hidden_members_still_guard_private_names(guarded: tuple[Server, FakeUpstream], tmp_path: Path) -> None:
    """A reader who may not read a private member of a virtual index sees nothing of it, and
    its names are still never asked of the upstream."""
    srv, up = guarded
    api, admin = f"{srv.url}/api/v1", ("admin", srv.admin_password)
    ok(httpx.post(f"{api}/indexes", json={"name": "g-secret", "kind": "hosted", "private": True}, auth=admin))
    ok(httpx.post(f"{api}/indexes", json={"name": "g-up", "kind": "mirror", "config": {"upstream": up.url}}, auth=admin))
    ok(httpx.post(f"{api}/indexes", json={"name": "g-team", "kind": "virtual",
                                           "config": {"members": ["g-secret", "g-up"], "upload_to": "g-secret"}}, auth=admin))
    ok(upload(f"{srv.url}/index/g-secret/", make_wheel(tmp_path, "g-private-name", "1.0"), auth=admin))
    reader = _user(srv, admin, "g-reader")
    for who in (None, reader):
        r = httpx.get(f"{srv.url}/index/g-team/simple/g-private-name/", auth=who)
        assert r.status_code == 404, r.status_code
        listing = httpx.get(f"{srv.url}/index/g-team/simple/", auth=who).text
        assert "g-private-name" not in listing
        hits = ok(httpx.get(f"{api}/search", params={"q": "g-private", "index": "g-team"}, auth=who)).json()
        assert hits == []
    assert not [r for r in up.requests if "g-private-name" in r]
    # granted read, the same reader sees it through the virtual index
    ok(httpx.post(f"{api}/indexes/g-secret/acl/grant", json={"principal": "g-reader", "permissions": ["read"]}, auth=admin))
    r = httpx.get(f"{srv.url}/index/g-team/simple/g-private-name/", auth=reader)
    assert r.status_code == 200 and "g_private_name-1.0" in r.text and r.headers["cache-control"].endswith("private")
    assert httpx.get(f"{srv.url}/index/g-team/simple/g-private-name/").status_code == 404  # still not for anonymous


def test_the_last_administrator_stays(fresh_server: Server) -> None:
    srv = fresh_server
    for args in (("user", "admin", "admin", "--revoke"), ("user", "remove", "admin")):
        r = srv.cli(*args, check=False)
        assert r.returncode == 1 and "last administrator" in r.stderr
    srv.cli("user", "add", "second", "--admin", "--password-stdin", input="second-password\n")
    srv.cli("user", "admin", "admin", "--revoke")
    api = f"{srv.url}/api/v1"
    assert httpx.get(f"{api}/users", auth=("admin", srv.admin_password)).status_code == 403
    r = httpx.delete(f"{api}/users/second", auth=("second", "second-password"))
    assert r.status_code == 400  # nobody removes themselves
    r = httpx.patch(f"{api}/users/second", json={"is_admin": False}, auth=("second", "second-password"))
    assert r.status_code == 400 and "last administrator" in r.json()["message"]


ACCOUNT_ROUTES = [
    ("GET", "/users", None), ("POST", "/users", {"name": "sw-new", "password": "sweep-password"}),
    ("PATCH", "/users/sw-other", {"password": "sweep-password-2"}), ("DELETE", "/users/sw-other", None),
    ("GET", "/groups", None), ("POST", "/groups", {"name": "sw-group"}), ("DELETE", "/groups/sw-team", None),
    ("POST", "/groups/sw-team/members", {"users": ["sw-plain"]}), ("DELETE", "/groups/sw-team/members/sw-other", None),
    ("GET", "/indexes/local/acl", None), ("POST", "/indexes/local/acl/grant", {"principal": "sw-plain", "permissions": ["manage"]}),
    ("POST", "/indexes/local/acl/revoke", {"principal": "anonymous", "permissions": ["read"]}),
    ("POST", "/indexes/local/projects/sw-owned/owners", {"principal": "sw-plain"}),
    ("DELETE", "/indexes/local/projects/sw-owned/owners/user:sw-other", None),
    ("POST", "/tokens", {"user": "sw-other"}), ("DELETE", "/tokens/1", None),
    ("GET", "/publishers", None), ("POST", "/indexes/local/publishers", {"issuer": "https://ci.test", "claims": {"a": "b"}}),
    ("DELETE", "/publishers/1", None), ("GET", "/audit", None),
]


def test_account_routes_refuse_callers_without_the_right(server: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    """Every accounts route: 401 without credentials, 403/404 for a plain user; nothing changes."""
    api = f"{server.url}/api/v1"
    plain, other = _user(server, admin, "sw-plain"), _user(server, admin, "sw-other")
    ok(httpx.post(f"{api}/groups", json={"name": "sw-team"}, auth=admin))
    assert upload(f"{server.url}/legacy/", make_wheel(tmp_path, "sw-owned", "1.0"), auth=other).status_code == 200
    before = [httpx.get(f"{api}{p}", auth=admin).json() for p in ("/users", "/groups", "/indexes/local/acl", "/publishers")]
    for method, path, body in ACCOUNT_ROUTES:
        r = httpx.request(method, api + path, json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"), (method, path, r.status_code)
        r = httpx.request(method, api + path, json=body, auth=plain)
        assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
    after = [httpx.get(f"{api}{p}", auth=admin).json() for p in ("/users", "/groups", "/indexes/local/acl", "/publishers")]
    assert after == before
    assert httpx.get(f"{api}/indexes/local/projects/sw-owned/owners", auth=admin).json() == ["user:sw-other"]
    assert httpx.get(f"{api}/indexes/local/projects/sw-owned/owners").status_code == 401
