"""Issue 9: the defects found, replayed, and acceptance points 2, 4, 5 and 6.

Each defect test failed on the main branch before this work: a plain user could mint a token
with manage on any index, password changes were remembered for 60 s, wrong passwords were
unlimited, credentials in upstream URLs were shown to anyone, an anonymous upload learned
whether an index existed, and HTML answers had no security headers.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import run
from tests.support.dists import make_wheel
from tests.support.server import BIN, Server, clean_env, ok
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream

PASSWORD = "trust-password-1"


def _state(server: Server, admin: tuple[str, str]) -> dict[str, object]:
    """Everything that decides who may do what, as an administrator sees it."""
    api = f"{server.url}/api/v1"
    indexes = ok(httpx.get(f"{api}/indexes", auth=admin)).json()
    return {
        "indexes": indexes,
        "acl": {i["name"]: ok(httpx.get(f"{api}/indexes/{i['name']}/acl", auth=admin)).json() for i in indexes},
        "users": ok(httpx.get(f"{api}/users", auth=admin)).json(),
        "groups": ok(httpx.get(f"{api}/groups", auth=admin)).json(),
        "publishers": ok(httpx.get(f"{api}/publishers", auth=admin)).json(),
        "owners": ok(httpx.get(f"{api}/indexes/local/projects/tr-bobs/owners", auth=admin)).json(),
    }


def test_escalation_replayed_is_refused(server: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    """Acceptance 2: no sequence of API calls by a non-admin yields a right the administrator
    did not grant (defect 1 first, then every other path to a right)."""
    api = f"{server.url}/api/v1"
    for name in ("tr-alice", "tr-bob"):
        ok(httpx.post(f"{api}/users", json={"name": name, "password": PASSWORD}, auth=admin))
    alice, bob = ("tr-alice", PASSWORD), ("tr-bob", PASSWORD)
    ok(upload(f"{server.url}/legacy/", make_wheel(tmp_path, "tr-bobs", "1.0"), auth=bob))
    ok(httpx.post(f"{api}/groups", json={"name": "tr-admins"}, auth=admin))
    before = _state(server, admin)

    # defect 1, as found: a token for herself with every permission on local
    r = httpx.post(f"{api}/tokens", json={"index": "local", "permissions": ["upload", "yank", "delete", "manage"]}, auth=alice)
    assert r.status_code == 400 and "does not hold" in r.json()["message"]
    # her own unlimited token carries exactly her rights: the calls below fail with it too
    own = ("__token__", ok(httpx.post(f"{api}/tokens", json={"description": "mine"}, auth=alice)).json()["token"])
    attempts = [
        ("POST", "/tokens", {"permissions": ["manage"]}),
        ("POST", "/tokens", {"user": "admin"}),
        ("POST", "/tokens", {"indexes": ["local", "pypi"], "permissions": ["yank"]}),
        ("POST", "/indexes/local/acl/grant", {"principal": "tr-alice", "permissions": ["manage"]}),
        ("POST", "/indexes/local/acl/grant", {"principal": "authenticated", "permissions": ["delete"]}),
        ("POST", "/indexes/local/acl/revoke", {"principal": "anonymous", "permissions": ["read"]}),
        ("POST", "/groups/tr-admins/members", {"users": ["tr-alice"]}),
        ("POST", "/groups", {"name": "tr-mine"}),
        ("PATCH", "/users/tr-alice", {"is_admin": True}),
        ("PATCH", "/users/tr-bob", {"password": "taken-over-1"}),
        ("POST", "/users", {"name": "tr-evil", "password": PASSWORD, "is_admin": True}),
        ("DELETE", "/users/tr-bob", None),
        ("PATCH", "/indexes/local", {"config": {"immutable": False, "allow_overwrite": True}}),
        ("PATCH", "/indexes/pypi", {"config": {"upstream": "http://127.0.0.1:9/simple/"}}),
        ("PATCH", "/indexes/main", {"config": {"members": ["pypi", "local"]}}),
        ("POST", "/indexes", {"name": "tr-new", "kind": "hosted"}),
        ("DELETE", "/indexes/local", None),
        ("POST", "/indexes/local/publishers", {"issuer": "https://ci.example.test", "claims": {"repository": "a/b"}}),
        ("POST", "/indexes/local/projects/tr-bobs/owners", {"principal": "tr-alice"}),
        ("POST", "/indexes/local/projects/tr-bobs/versions/1.0/yank", {"reason": "mine now"}),
        ("DELETE", "/indexes/local/projects/tr-bobs/versions/1.0", None),
        ("DELETE", "/indexes/local/projects/tr-bobs", None),
        ("POST", "/indexes/pypi/fetch", {"project": "tr-anything"}),
        ("GET", "/audit", None),
    ]
    for who in (alice, own):
        for method, path, body in attempts:
            r = httpx.request(method, api + path, json=body, auth=who)
            assert r.status_code in (400, 403, 404), (who[0], method, path, r.status_code, r.text)
    # publishing over bob's project (she is not an owner) is refused too
    r = upload(f"{server.url}/legacy/", make_wheel(tmp_path, "tr-bobs", "1.1"), auth=alice)
    assert r.status_code == 403 and "owner" in r.text
    assert _state(server, admin) == before
    assert ok(httpx.get(f"{api}/whoami", auth=alice)).json()["is_admin"] is False


def test_token_from_before_holds_no_more_than_its_owner(fresh_server: Server, tmp_path: Path) -> None:
    """A token minted under the old rules (scope: manage on local) is cut to what its owner
    holds at the moment of use; and taking a grant away takes it from her tokens at once."""
    srv, api = fresh_server, f"{fresh_server.url}/api/v1"
    admin = ("admin", srv.admin_password)
    ok(httpx.post(f"{api}/users", json={"name": "old-tok", "password": PASSWORD}, auth=admin))
    secret = "wc_" + "x" * 43
    db = sqlite3.connect(srv.data_dir / "wheelcave.db")
    with db:
        user_id = db.execute("SELECT id FROM users WHERE name = 'old-tok'").fetchone()[0]
        db.execute("INSERT INTO tokens (user_id, token_hash, prefix, created_at, scope) VALUES (?, ?, ?, ?, ?)",
                   (user_id, __import__("hashlib").sha256(secret.encode()).hexdigest(), secret[:10], "2026-01-01 00:00:00",
                    json.dumps({"indexes": ["local"], "projects": None, "permissions": ["manage", "delete", "upload"]})))
    db.close()
    token = ("__token__", secret)
    assert httpx.patch(f"{api}/indexes/local", json={"config": {"immutable": False}}, auth=token).status_code == 403
    for version in ("1.0", "1.1"):
        ok(upload(f"{srv.url}/legacy/", make_wheel(tmp_path, "old-tok-proj", version), auth=admin))
    assert httpx.delete(f"{api}/indexes/local/projects/old-tok-proj", auth=token).status_code == 403
    # granted delete: the token may now; revoked again: it may not, at once
    ok(httpx.post(f"{api}/indexes/local/acl/grant", json={"principal": "old-tok", "permissions": ["delete"]}, auth=admin))
    assert httpx.delete(f"{api}/indexes/local/projects/old-tok-proj/versions/1.1", auth=token).status_code == 200
    ok(httpx.post(f"{api}/indexes/local/acl/revoke", json={"principal": "old-tok", "permissions": ["delete"]}, auth=admin))
    assert httpx.delete(f"{api}/indexes/local/projects/old-tok-proj", auth=token).status_code == 403


def _client(address: str) -> httpx.Client:
    """A client whose requests come from another loopback address (127.0.0.0/8 is all ours)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def _fresh_connections(url: str, auth: tuple[str, str], count: int, address: str = "127.0.0.1") -> set[int]:
    """The answers to ``count`` requests, each on a new connection (so both workers of a server
    answer some), from ``address``."""
    codes = set()
    for _ in range(count):
        with _client(address) as client:
            codes.add(client.get(url, auth=auth).status_code)
    return codes


REFUSED = {401, 429}  # 429 once the failures from one address pass the limit


def test_password_change_and_revocation_reach_every_worker(tmp_path: Path) -> None:
    """Acceptance 5: refused by every worker of a --workers 2 server within one second."""
    srv = Server(tmp_path / "data", workers=2).start()
    try:
        api = f"{srv.url}/api/v1"
        admin = ("admin", srv.admin_password)
        ok(httpx.post(f"{api}/users", json={"name": "rev-user", "password": PASSWORD}, auth=admin))
        token = ("__token__", ok(httpx.post(f"{api}/tokens", json={}, auth=("rev-user", PASSWORD))).json()["token"])
        token_id = ok(httpx.get(f"{api}/tokens", auth=("rev-user", PASSWORD))).json()[0]["id"]
        # both workers verify and remember both credentials
        assert _fresh_connections(f"{api}/whoami", ("rev-user", PASSWORD), 24, "127.0.0.5") == {200}
        assert _fresh_connections(f"{api}/whoami", token, 24, "127.0.0.6") == {200}

        srv.cli("user", "passwd", "rev-user", "--password-stdin", input="a-new-password-2\n")
        changed = time.monotonic()
        srv.cli("token", "revoke", str(token_id))
        revoked = time.monotonic()
        # the requirement itself: one second after each change, no worker accepts the old secret
        time.sleep(max(0.0, changed + 1.0 - time.monotonic()))
        assert _fresh_connections(f"{api}/whoami", ("rev-user", PASSWORD), 40, "127.0.0.5") <= REFUSED
        time.sleep(max(0.0, revoked + 1.0 - time.monotonic()))
        assert _fresh_connections(f"{api}/whoami", token, 40, "127.0.0.6") <= REFUSED
        assert _fresh_connections(f"{api}/whoami", ("rev-user", "a-new-password-2"), 12) == {200}
        # and a removed user, through the API (another worker may answer the next request)
        ok(httpx.delete(f"{api}/users/rev-user", auth=admin))
        removed = time.monotonic()
        time.sleep(max(0.0, removed + 1.0 - time.monotonic()))
        assert _fresh_connections(f"{api}/whoami", ("rev-user", "a-new-password-2"), 40, "127.0.0.7") <= REFUSED
    finally:
        srv.stop()


def test_bad_password_flood_is_limited(fresh_server: Server) -> None:
    """Defect 3: failures are limited per address (429 + Retry-After), logged and counted;
    the right password from another address keeps working."""
    srv, api = fresh_server, f"{fresh_server.url}/api/v1"
    admin = ("admin", srv.admin_password)
    ok(httpx.post(f"{api}/users", json={"name": "flood-me", "password": PASSWORD}, auth=admin))
    srv.mark_log()
    with _client("127.0.0.2") as attacker:
        codes = [attacker.get(f"{api}/whoami", auth=("flood-me", f"wrong-{i}")).status_code for i in range(25)]
        assert codes[:20] == [401] * 20 and codes[20:] == [429] * 5, codes
        r = attacker.get(f"{api}/whoami", auth=("flood-me", PASSWORD))
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 61
        assert "Too many failed sign-ins" in r.json()["message"]
    with _client("127.0.0.3") as colleague:
        assert colleague.get(f"{api}/whoami", auth=("flood-me", PASSWORD)).json()["name"] == "flood-me"
    # many addresses against one name: that name is refused to them, not to its owner's machine
    def attempt(n: int) -> int:
        with _client(f"127.0.1.{n}") as c:
            return max(c.get(f"{api}/whoami", auth=("flood-me", f"bad-{n}-{i}")).status_code for i in range(3))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(1, 25)))
    assert 429 in results
    with _client("127.0.0.4") as colleague:
        assert colleague.get(f"{api}/whoami", auth=("flood-me", PASSWORD)).status_code == 200
    metrics = httpx.get(f"{srv.url}/metrics").text
    failures = next(line for line in metrics.splitlines() if line.startswith('wheelcave_auth_failures_total{reason="password"}'))
    assert float(failures.split()[-1]) >= 40
    assert 'wheelcave_auth_throttled_total{limit="address"}' in metrics
    log = srv.log_path.read_text()
    assert "auth.failed reason=password user=flood-me address=127.0.0.2" in log
    assert "wrong-1" not in log and PASSWORD not in log


@pytest.fixture
def leaky_upstream() -> Iterator[str]:
    """An upstream URL carrying every form of credential, at an address where nothing answers."""
    up = FakeUpstream().start()
    port = up.port
    up.stop()
    yield f"http://SECRETUSER:SECRETPASS@127.0.0.1:{port}/simple/?key=QSECRET"


def test_no_credential_appears_anywhere(fresh_server: Server, leaky_upstream: str, tmp_path: Path) -> None:
    """Defect 4 and acceptance 6: no password, token or credential-bearing URL in logs, error
    bodies, the audit log, /metrics or any API answer to a non-administrator; upstream
    settings are for administrators only (masked for them too)."""
    srv, api = fresh_server, f"{fresh_server.url}/api/v1"
    admin = ("admin", srv.admin_password)
    secrets = ["SECRETUSER", "SECRETPASS", "QSECRET", "TOKENONLY", PASSWORD, "WRONG-PASSWORD-9", srv.admin_password]
    seen: list[str] = []

    def keep(r: httpx.Response) -> httpx.Response:
        seen.append(f"{r.status_code} {dict(r.headers)} {r.text}")
        return r

    keep(ok(httpx.post(f"{api}/users", json={"name": "leak-u", "password": PASSWORD}, auth=admin)))
    # (the one answer that shows a token is the one that creates it, to its owner)
    token = ok(httpx.post(f"{api}/tokens", json={}, auth=("leak-u", PASSWORD))).json()["token"]
    secrets.append(token)
    keep(ok(httpx.post(f"{api}/indexes", json={"name": "leaky", "kind": "mirror", "config": {"upstream": leaky_upstream, "timeout": 2}}, auth=admin)))
    keep(ok(httpx.post(f"{api}/indexes", json={"name": "tok-up", "kind": "mirror",
                                                 "config": {"upstream": "http://TOKENONLY@127.0.0.1:9/simple/", "timeout": 2}}, auth=admin)))
    keep(ok(httpx.patch(f"{api}/indexes/leaky", json={"config": {"upstream": leaky_upstream.replace("key=", "other=")}}, auth=admin)))
    for who in (None, ("leak-u", PASSWORD), ("__token__", token), admin):
        keep(httpx.get(f"{srv.url}/index/leaky/", auth=who))  # the web pages too
        keep(httpx.get(f"{srv.url}/index/tok-up/", auth=who))
    for who in (None, ("leak-u", PASSWORD), ("__token__", token)):
        keep(ok(httpx.get(f"{api}/indexes", auth=who)))
        shown = keep(ok(httpx.get(f"{api}/indexes/leaky", auth=who))).json()
        assert "upstream" not in shown["config"]
    shown = keep(ok(httpx.get(f"{api}/indexes/leaky", auth=admin))).json()
    assert shown["config"]["upstream"].startswith("http://***@127.0.0.1:")
    for index in ("leaky", "tok-up"):
        r = keep(httpx.get(f"{srv.url}/index/{index}/simple/anything/"))
        assert r.status_code in (502, 504)
        keep(httpx.get(f"{srv.url}/index/{index}/simple/anything/", headers={"Accept": "application/json"}))
    keep(httpx.get(f"{api}/whoami", auth=("leak-u", "WRONG-PASSWORD-9")))
    keep(httpx.get(f"{api}/whoami", auth=("__token__", token + "x")))
    keep(httpx.get(f"{api}/whoami", auth=("__token__", token)))
    keep(httpx.get(f"{api}/tokens", auth=("leak-u", PASSWORD)))
    keep(httpx.get(f"{api}/audit", auth=admin, params={"limit": 1000}))
    keep(httpx.get(f"{srv.url}/metrics"))
    keep(httpx.get(f"{srv.url}/"))
    for args in (("index", "list"), ("index", "show", "leaky"), ("index", "show", "tok-up"), ("audit", "--limit", "1000"),
                 ("token", "list")):
        out = srv.cli(*args)
        seen.append(out.stdout + out.stderr)
    seen.append(srv.log_path.read_text())
    text = "\n".join(seen)
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked"


def test_anonymous_upload_learns_nothing_when_reads_need_login(tmp_path: Path) -> None:
    """Defect 5: with anonymous_read = false, an unauthenticated POST answers the same 401 for
    a hosted index, a mirror and an index that does not exist."""
    srv = Server(tmp_path / "data", extra_env={"WHEELCAVE_AUTH_ANONYMOUS_READ": "false"}).start()
    try:
        wheel = make_wheel(tmp_path, "anon-post", "1.0")
        answers = {(r.status_code, r.text, r.headers.get("www-authenticate"))
                   for index in ("local", "pypi", "main", "no-such-index")
                   for r in [upload(f"{srv.url}/index/{index}/", wheel, auth=None)]}
        assert len(answers) == 1 and next(iter(answers))[0] == 401
        # and wrong credentials: the same for every index, before anything about it is looked up
        answers = {(r.status_code, r.text) for index in ("local", "pypi", "no-such-index")
                   for r in [upload(f"{srv.url}/index/{index}/", wheel, auth=("admin", "not-the-password"))]}
        assert len(answers) == 1 and next(iter(answers))[0] == 401
    finally:
        srv.stop()


def test_html_answers_carry_security_headers(server: Server) -> None:
    """Defect 6; the API docs are served from this server alone (no third-party origin)."""
    for path, accept in (("/", "text/html"), ("/simple/", "text/html"), ("/api/v1/docs", "text/html")):
        r = httpx.get(server.url + path, headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert "http" not in csp  # no other origin
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"]
    page = httpx.get(f"{server.url}/api/v1/docs").text
    assert "<script>" not in page and "//" not in page.replace("<!DOCTYPE html>", "")
    for asset in ("docs/assets/swagger-ui-bundle.js", "docs/assets/swagger-ui.css", "docs/init.js"):
        assert httpx.get(f"{server.url}/api/v1/{asset}").status_code == 200
    assert httpx.get(f"{server.url}/api/v1/docs/assets/..%2f..%2fetc%2fpasswd").status_code == 404


# ------------------------------------------------------------ acceptance 4: clients with login required


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("login")
    srv = Server(tmp / "data", extra_env={"WHEELCAVE_AUTH_ANONYMOUS_READ": "false"}).start()
    admin = ("admin", srv.admin_password)
    ok(httpx.post(f"{srv.url}/api/v1/users", json={"name": "li-user", "password": PASSWORD}, auth=admin))
    ok(upload(f"{srv.url}/legacy/", make_wheel(tmp, "li-pkg", "1.0"), auth=admin))
    yield srv
    srv.stop()


def _pip(srv: Server, index_url: str, env: dict[str, str], target: Path, *extra: str) -> object:
    return run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), "--index-url", index_url,
                *extra, "li-pkg"], env, check=False)


def test_pip_with_credentials_in_url_netrc_and_keyring(login_server: Server, tmp_path: Path) -> None:
    srv = login_server
    plain = f"http://127.0.0.1:{srv.port}/simple/"
    env = clean_env({"PIP_CACHE_DIR": str(tmp_path / "cache")})
    # none: 401 with WWW-Authenticate (pip prompts on it where it may; here it may not, and says
    # why at -vvv: "401 Client Error: This index needs credentials to read."), and our reason
    r = _pip(srv, plain, env, tmp_path / "none", "-vvv")
    assert r.returncode != 0  # type: ignore[attr-defined]
    assert "401 Client Error: This index needs credentials to read." in r.stdout + r.stderr  # type: ignore[attr-defined]
    answer = httpx.get(f"{plain}li-pkg/")
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
    assert answer.text == "This index needs credentials to read.\n"
    # in the URL
    r = _pip(srv, f"http://li-user:{PASSWORD}@127.0.0.1:{srv.port}/simple/", env, tmp_path / "url")
    assert r.returncode == 0, r.stderr  # type: ignore[attr-defined]
    # netrc
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login li-user password {PASSWORD}\n")
    netrc.chmod(0o600)
    r = _pip(srv, plain, {**env, "NETRC": str(netrc)}, tmp_path / "netrc-t")
    assert r.returncode == 0, r.stderr  # type: ignore[attr-defined]
    # keyring: a backend of the test's own (keyring's documented plug-in point), pip imports it
    (tmp_path / "kr").mkdir()
    (tmp_path / "kr" / "wc_test_keyring.py").write_text(
        "import keyring.backend\nfrom keyring.credentials import SimpleCredential\n"
        "class Backend(keyring.backend.KeyringBackend):\n    priority = 10\n"
        f"    def get_password(self, service, username):\n        return {PASSWORD!r} if username == 'li-user' else None\n"
        "    def get_credential(self, service, username):\n"
        f"        return SimpleCredential('li-user', {PASSWORD!r}) if '127.0.0.1' in service else None\n"
        "    def set_password(self, service, username, password):\n        raise NotImplementedError\n"
        "    def delete_password(self, service, username):\n        raise NotImplementedError\n"
    )
    kr_env = {**env, "PYTHON_KEYRING_BACKEND": "wc_test_keyring.Backend", "PYTHONPATH": str(tmp_path / "kr")}
    r = _pip(srv, plain, kr_env, tmp_path / "keyring", "--keyring-provider", "import")
    assert r.returncode == 0, r.stdout + r.stderr  # type: ignore[attr-defined]
    assert any((tmp_path / "keyring").glob("li_pkg-1.0.dist-info"))


def test_uv_with_index_credential_variables(login_server: Server, tmp_path: Path) -> None:
    srv = login_server
    env = clean_env({"UV_CACHE_DIR": str(tmp_path / "cache")})
    index = f"internal=http://127.0.0.1:{srv.port}/simple/"
    cmd = [str(BIN / "uv"), "pip", "install", "--no-deps", "--target", str(tmp_path / "t"), "--default-index", index, "li-pkg"]
    r = run(cmd, env, check=False)
    assert r.returncode != 0 and "401" in r.stderr, r.stderr
    r = run(cmd, {**env, "UV_INDEX_INTERNAL_USERNAME": "li-user", "UV_INDEX_INTERNAL_PASSWORD": PASSWORD}, check=False)
    assert r.returncode == 0, r.stderr
    assert any((tmp_path / "t").glob("li_pkg-1.0.dist-info"))


def test_basic_header_decoding_worst_forms(server: Server) -> None:
    """Malformed credentials: a clear 401, never a crash."""
    api = f"{server.url}/api/v1/whoami"
    for header in ("Basic", "Basic !!!", "Bearer abc", "Basic " + base64.b64encode(b"no-colon").decode(),
                   "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Basic " + "A" * 20000):
        r = httpx.get(api, headers={"Authorization": header})
        assert r.status_code in (401, 431), (header[:20], r.status_code)
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Basic") and r.json()["error"] == "unauthorized"
