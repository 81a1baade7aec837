"""Issue 12, first step: the web pages (home, search, project, index) over HTTP against a real
server: what they show, what they never show (scripts from a README; another reader's private
index), and the status codes a refused reader gets."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.dists import make_sdist, make_wheel
from tests.support.server import Server, ok
from tests.support.upload import upload

HOSTILE = """# Title

Plain *markdown*. <script>alert(1)</script> [click](javascript:alert(2))
<img src="x" onerror="alert(3)"> <a href="#" onclick="alert(4)">a</a>
<iframe src="https://example.invalid/"></iframe> <style>body{display:none}</style>
"""

RST = """Title
=====

Some **reStructuredText** with a `link <https://example.invalid/doc>`_ and `another <javascript:alert(5)>`_.
"""
#: readme_renderer refuses raw HTML in reStructuredText: the description is shown as text.
RST_RAW = """Title
=====

.. raw:: html

   <script>alert(6)</script>
"""


@pytest.fixture(scope="module")
def site(server: Server, admin: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Server:
    tmp = tmp_path_factory.mktemp("ui")
    for path in (
        make_wheel(tmp, "ui-md", "1.0", summary="markdown demo", description=HOSTILE, requires_dist=["ui-rst>=1", "attrs; extra == 'x'"]),
        make_wheel(tmp, "ui-md", "2.0", summary="markdown demo two", description=HOSTILE),
        make_sdist(tmp, "ui-md", "2.0"),
        make_wheel(tmp, "ui-rst", "1.0", summary="needle in the summary", description=RST, description_content_type="text/x-rst"),
        make_wheel(tmp, "ui-raw", "1.0", description=RST_RAW, description_content_type="text/x-rst"),
    ):
        assert upload(f"{server.url}/legacy/", path, auth=admin).status_code == 200
    server.cli("yank", "local", "ui-md", "1.0", "--reason", "broken build")
    api = f"{server.url}/api/v1"
    ok(httpx.post(f"{api}/indexes", json={"name": "ui-priv", "kind": "hosted", "private": True}, auth=admin))
    assert upload(f"{server.url}/index/ui-priv/", make_wheel(tmp, "ui-secret", "1.0", summary="needle secret"), auth=admin).status_code == 200
    ok(httpx.post(f"{api}/users", json={"name": "ui-outsider", "password": "a long password 1"}, auth=admin))
    server.wait_for_index("local")
    return server


def test_project_page_shows_the_release(site: Server) -> None:
    r = httpx.get(f"{site.url}/project/ui-md/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<h1>ui-md 2.0" in r.text  # the newest release that is not yanked
    assert "markdown demo two" in r.text
    assert "pip install --index-url" in r.text and "ui-md==2.0" in r.text and "uv pip install" in r.text
    assert "ui_md-2.0.tar.gz" in r.text and "ui_md-2.0-py3-none-any.whl" in r.text
    assert re.search(r'1\.0</a> <span class="yanked"[^>]*>yanked: broken build', r.text)
    old = httpx.get(f"{site.url}/project/ui-md/1.0/")
    assert old.status_code == 200 and "yanked: broken build" in old.text
    assert 'href="/project/ui-rst/"' in old.text  # dependencies link to their pages
    per_index = httpx.get(f"{site.url}/index/local/project/ui-md/2.0/")
    assert per_index.status_code == 200 and "/index/local/simple/" in per_index.text
    moved = httpx.get(f"{site.url}/project/UI_MD/")
    assert moved.status_code == 301 and moved.headers["location"] == "/project/ui-md/"
    assert httpx.get(f"{site.url}/project/ui-md/9.9/").status_code == 404
    assert httpx.get(f"{site.url}/project/ui-nothing/").status_code == 404


def test_readmes_render_without_anything_active(site: Server) -> None:
    md = httpx.get(f"{site.url}/project/ui-md/").text
    readme = md[md.index('<div class="readme">'):md.index("<h2>Files</h2>")]
    assert "<h1>Title</h1>" in readme and "<em>markdown</em>" in readme
    for bad in ("<script", "javascript:", "onerror", "onclick", "<iframe", "<style"):
        assert bad not in readme.lower(), bad
    rst = httpx.get(f"{site.url}/project/ui-rst/").text
    readme = rst[rst.index('<div class="readme">'):rst.index("<h2>Files</h2>")]
    assert "<strong>reStructuredText</strong>" in readme and 'href="https://example.invalid/doc"' in readme
    assert "javascript:" not in readme
    raw = httpx.get(f"{site.url}/project/ui-raw/").text
    readme = raw[raw.index('<div class="readme">'):raw.index("<h2>Files</h2>")]
    assert "<script" not in readme and "&lt;script&gt;alert(6)" in readme  # shown as text, inert
    csp = httpx.get(f"{site.url}/project/ui-md/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'self'" in csp
    assert not re.search(r"<script(?![^>]*\bsrc=)", md)  # the page itself has no inline script
    assert not re.search(r"\son[a-z]+=", md)  # nor inline event handlers


def test_home_search_and_index_pages(site: Server, admin: tuple[str, str]) -> None:
    home = httpx.get(f"{site.url}/")
    assert home.status_code == 200
    assert "/index/local/simple/" in home.text and "ui-priv" not in home.text
    assert "index-url = " in home.text and "[[index]]" in home.text and "[distutils]" in home.text
    assert "ui-md" in home.text  # recent uploads
    found = httpx.get(f"{site.url}/search", params={"q": "needle"}).text
    assert "ui-rst" in found and "needle in the summary" in found and "ui-secret" not in found
    assert "ui-md" in httpx.get(f"{site.url}/search", params={"q": "UI-MD"}).text
    assert httpx.get(f"{site.url}/search", params={"q": "<script>x"}).text.count("<script>x") == 0
    index = httpx.get(f"{site.url}/index/local/")
    assert index.status_code == 200 and "/index/local/project/ui-md/" in index.text
    mirror = httpx.get(f"{site.url}/index/pypi/").text
    upstream = str(Server.default_upstream).split("//")[1].split("/")[0]  # host:port of the test upstream
    assert upstream not in mirror  # the upstream is for administrators
    assert upstream in httpx.get(f"{site.url}/index/pypi/", auth=admin).text


def test_private_index_pages_are_refused(site: Server, admin: tuple[str, str]) -> None:
    """Who may not: anonymous readers are asked for credentials (401), a signed-in user without
    a grant is told there is nothing (404), the administrator sees it."""
    for path in ("/index/ui-priv/", "/index/ui-priv/project/ui-secret/", "/index/ui-priv/project/ui-secret/1.0/"):
        anonymous = httpx.get(f"{site.url}{path}")
        assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers, path
        outsider = httpx.get(f"{site.url}{path}", auth=("ui-outsider", "a long password 1"))
        assert outsider.status_code == 404 and "ui-secret" not in outsider.text, path
        assert httpx.get(f"{site.url}{path}", auth=admin).status_code == 200, path
    assert "ui-secret" in httpx.get(f"{site.url}/search", params={"q": "needle"}, auth=admin).text
    assert "ui-secret" not in httpx.get(f"{site.url}/search", params={"q": "needle"}, auth=("ui-outsider", "a long password 1")).text
    bad = httpx.get(f"{site.url}/", auth=("ui-outsider", "wrong password"))
    assert bad.status_code == 401


def test_json_api_links_lead_to_pages(site: Server) -> None:
    info = httpx.get(f"{site.url}/pypi/ui-md/json").json()["info"]
    for key in ("package_url", "project_url", "release_url"):
        assert httpx.get(info[key]).status_code == 200, (key, info[key])


def test_static_assets_only_by_name(site: Server) -> None:
    css = httpx.get(f"{site.url}/_static/wheelcave.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert httpx.get(f"{site.url}/_static/wheelcave.js").headers["content-type"].startswith("text/javascript")
    for name in ("pages.py", "..%2Fpages.py", "%2e%2e/readme.py", "nope.css"):
        assert httpx.get(f"{site.url}/_static/{name}").status_code in (400, 404), name


def _csrf(client: httpx.Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code in (200, 401, 404), page.status_code
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _sign_in(site: Server, user: str, password: str, next_: str = "/") -> httpx.Client:
    client = httpx.Client(base_url=site.url)
    token = _csrf(client, "/login")
    r = client.post("/login", data={"csrf": token, "username": user, "password": password, "next": next_})
    assert r.status_code == 303, r.text
    return client


def test_sign_in_and_out(site: Server, admin: tuple[str, str]) -> None:
    client = httpx.Client(base_url=site.url)
    token = _csrf(client, "/login")
    wrong = client.post("/login", data={"csrf": token, "username": "admin", "password": "wrong", "next": "/"})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    assert "wheelcave_session" not in client.cookies
    no_csrf = client.post("/login", data={"username": admin[0], "password": admin[1]})
    assert no_csrf.status_code == 403
    for evil in ("//evil.example/", "https://evil.example/", "/\\\\evil.example"):
        r = client.post("/login", data={"csrf": token, "username": admin[0], "password": admin[1], "next": evil})
        assert r.status_code == 303 and r.headers["location"] == "/", evil  # never off this site
    cookie = next(c for c in client.cookies.jar if c.name == "wheelcave_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite", "").lower() == "lax"
    assert "signed in as admin" in client.get("/").text
    assert client.get("/index/ui-priv/").status_code == 200
    # The cookie is for pages only: the APIs and uploads ignore it.
    assert client.get("/api/v1/whoami").json()["name"] is None
    assert client.get("/api/v1/tokens").status_code == 401
    assert client.get("/index/ui-priv/simple/ui-secret/").status_code == 401
    forged = httpx.Client(base_url=site.url, cookies={"wheelcave_session": cookie.value[:-4] + "AAAA"})
    assert "anonymous" in forged.get("/").text or "Sign in" in forged.get("/").text
    assert forged.get("/index/ui-priv/").status_code == 401
    client.post("/logout", data={"csrf": _csrf(client, "/")})
    assert "Sign in" in client.get("/").text and client.get("/index/ui-priv/").status_code == 401


def test_tokens_from_the_browser(site: Server, admin: tuple[str, str]) -> None:
    client = _sign_in(site, "ui-outsider", "a long password 1")
    refused = client.post("/account/tokens", data={"description": "no csrf"})
    assert refused.status_code == 403
    made = client.post("/account/tokens", data={"csrf": _csrf(client, "/account/tokens"), "description": "laptop"})
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    secret = re.search(r'<pre id="new-token"[^>]*>([^<]+)</pre>', made.text).group(1)  # type: ignore[union-attr]
    assert httpx.get(f"{site.url}/api/v1/whoami", auth=("__token__", secret)).json()["name"] == "ui-outsider"
    listing = client.get("/account/tokens").text
    assert "laptop" in listing and secret not in listing  # shown once
    token_id = re.search(r'/account/tokens/(\d+)/revoke', listing).group(1)  # type: ignore[union-attr]
    other = _sign_in(site, *admin)
    # the administrator may revoke it; another plain user may not (404), and nobody without the form's token
    assert client.post(f"/account/tokens/{token_id}/revoke", data={}).status_code == 403
    assert httpx.post(f"{site.url}/account/tokens/{token_id}/revoke").status_code in (401, 403)
    assert client.post(f"/account/tokens/{token_id}/revoke", data={"csrf": _csrf(client, "/account/tokens")}).status_code == 303
    assert httpx.get(f"{site.url}/api/v1/whoami", auth=("__token__", secret)).status_code == 401
    assert other.post("/account/tokens/999999/revoke", data={"csrf": _csrf(other, "/account/tokens")}).status_code == 404
    assert httpx.get(f"{site.url}/account/tokens").status_code == 401


def test_yank_from_the_browser_and_the_audit_log(site: Server, admin: tuple[str, str]) -> None:
    outsider = _sign_in(site, "ui-outsider", "a long password 1")
    page = outsider.get("/index/local/project/ui-rst/1.0/")
    assert "Yank 1.0" not in page.text  # no right, no button
    refused = outsider.post("/index/local/project/ui-rst/1.0/yank", data={"csrf": _csrf(outsider, "/"), "reason": "x"})
    assert refused.status_code == 403
    anonymous = httpx.post(f"{site.url}/index/local/project/ui-rst/1.0/yank", data={"reason": "x"})
    assert anonymous.status_code in (401, 403)
    anonymous_before = httpx.get(f"{site.url}/index/local/project/ui-rst/1.0/").text  # kept for anonymous readers
    assert "yanked" not in anonymous_before and "Yank 1.0" not in anonymous_before
    client = _sign_in(site, *admin)
    page = client.get("/index/local/project/ui-rst/1.0/")
    assert "Yank 1.0" in page.text
    assert client.post("/index/local/project/ui-rst/1.0/yank", data={"reason": "no csrf"}).status_code == 403
    done = client.post("/index/local/project/ui-rst/1.0/yank", data={"csrf": _csrf(client, "/"), "reason": "bad docs"})
    assert done.status_code == 303
    assert "yanked: bad docs" in client.get("/index/local/project/ui-rst/1.0/").text
    assert "yanked: bad docs" in httpx.get(f"{site.url}/index/local/project/ui-rst/1.0/").text  # the kept page is gone
    assert httpx.get(f"{site.url}/simple/ui-rst/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()["files"][0]["yanked"] == "bad docs"
    assert client.post("/index/local/project/ui-rst/1.0/unyank", data={"csrf": _csrf(client, "/")}).status_code == 303
    assert "Yank 1.0" in client.get("/index/local/project/ui-rst/1.0/").text
    log = client.get("/admin/audit", params={"project": "ui-rst"})
    assert log.status_code == 200 and "file.yank" in log.text and "file.unyank" in log.text
    assert outsider.get("/admin/audit").status_code == 404
    assert httpx.get(f"{site.url}/admin/audit").status_code == 401


def test_a_new_password_ends_sessions(site: Server, admin: tuple[str, str]) -> None:
    ok(httpx.post(f"{site.url}/api/v1/users", json={"name": "ui-temp", "password": "first password 12"}, auth=admin))
    client = _sign_in(site, "ui-temp", "first password 12")
    assert "signed in as ui-temp" in client.get("/").text
    ok(httpx.patch(f"{site.url}/api/v1/users/ui-temp", json={"password": "second password 34"}, auth=admin))
    assert "signed in as" not in client.get("/").text


def test_upload_from_the_browser(site: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "ui-browser", "1.0", summary="from a browser")
    content = {"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")}
    assert httpx.post(f"{site.url}/upload/local", files=content).status_code == 401
    client = _sign_in(site, "ui-outsider", "a long password 1")
    form = client.get("/upload")
    assert form.status_code == 200 and '<option value="local">' in form.text and "ui-priv" not in form.text
    csrf = _csrf(client, "/upload")
    assert client.post("/upload/local", files=content).status_code == 403  # no CSRF token: nothing stored
    assert httpx.get(f"{site.url}/simple/ui-browser/").status_code == 404
    assert client.post("/upload/ui-priv", data={"csrf": csrf}, files=content).status_code == 404  # may not see it
    done = client.post("/upload/local", data={"csrf": csrf}, files=content)
    assert done.status_code == 303 and done.headers["location"] == "/index/local/project/ui-browser/1.0/"
    assert "from a browser" in client.get(done.headers["location"]).text
    again = client.post("/upload/local", data={"csrf": csrf}, files=content, headers={"Accept": "application/json"})
    assert again.json() == {"ok": True, "filename": wheel.name, "created": False, "url": "/index/local/project/ui-browser/1.0/",
                            "warnings": []}
    broken = {"content": ("ui_broken-1.0-py3-none-any.whl", b"PK not a zip", "application/octet-stream")}
    bad = client.post("/upload/local", headers={"Accept": "application/json", "X-CSRF-Token": csrf}, files=broken)
    assert bad.status_code == 400 and bad.json()["ok"] is False and "zip" in bad.json()["error"]
    other = make_wheel(tmp_path / "x", "ui-browser", "1.0", summary="other bytes") if (tmp_path / "x").mkdir() is None else None
    clash = client.post("/upload/local", data={"csrf": csrf}, headers={"Accept": "application/json"},
                        files={"content": (other.name, other.read_bytes(), "application/octet-stream")})
    assert clash.status_code == 409 and "already exists" in clash.json()["error"]


def test_fetch_from_upstream_needs_manage(site: Server, admin: tuple[str, str]) -> None:
    """Search offers a fetch only to a mirror's administrators; others get no button and a refusal."""
    outsider = _sign_in(site, "ui-outsider", "a long password 1")
    assert "Fetch" not in outsider.get("/search", params={"q": "ui-nowhere"}).text
    refused = outsider.post("/index/pypi/fetch", data={"csrf": _csrf(outsider, "/"), "project": "ui-nowhere"})
    assert refused.status_code == 403
    client = _sign_in(site, *admin)
    assert "Fetch ui-nowhere from the upstream of pypi" in client.get("/search", params={"q": "ui-nowhere"}).text
    assert client.post("/index/pypi/fetch", data={"project": "ui-nowhere"}).status_code == 403  # no CSRF token
    bad = client.post("/index/pypi/fetch", data={"csrf": _csrf(client, "/"), "project": "../etc"})
    assert bad.status_code == 400
    missing = client.post("/index/pypi/fetch", data={"csrf": _csrf(client, "/"), "project": "ui-nowhere"})
    assert missing.status_code == 404  # the test upstream has no such project
    assert client.post("/index/local/fetch", data={"csrf": _csrf(client, "/"), "project": "ui-md"}).status_code == 400


def test_users_groups_and_access_pages(site: Server, admin: tuple[str, str]) -> None:
    """Who may not: anonymous (401), a plain user (404 for the admin pages, 404 for an index's
    access list she may not manage); then the administrator adds a user, a group, a grant."""
    assert httpx.get(f"{site.url}/admin/users").status_code == 401
    outsider = _sign_in(site, "ui-outsider", "a long password 1")
    assert outsider.get("/admin/users").status_code == 404
    token = _csrf(outsider, "/")
    assert outsider.post("/admin/users", data={"csrf": token, "name": "ui-sneaky", "password": "x" * 20, "admin": "on"}).status_code == 404
    assert outsider.post("/admin/users/ui-outsider", data={"csrf": token, "action": "make-admin"}).status_code == 404
    assert outsider.get("/index/local/access").status_code == 403
    assert outsider.post("/index/local/access", data={"csrf": token, "principal": "ui-outsider", "perm-manage": "on",
                                                      "action": "grant"}).status_code == 403
    assert outsider.get("/index/ui-priv/access").status_code == 404
    assert not httpx.get(f"{site.url}/api/v1/whoami", auth=("ui-outsider", "a long password 1")).json()["is_admin"]

    client = _sign_in(site, *admin)
    token = _csrf(client, "/admin/users")
    assert client.post("/admin/users", data={"name": "ui-new"}).status_code == 403  # no CSRF token
    assert client.post("/admin/users", data={"csrf": token, "name": "ui-new", "password": "a long password 2"}).status_code == 303
    assert client.post("/admin/groups", data={"csrf": token, "group": "ui-team", "action": "add"}).status_code == 303
    assert client.post("/admin/groups", data={"csrf": token, "group": "ui-team", "users": "ui-new",
                                              "action": "add-member"}).status_code == 303
    page = client.get("/admin/users").text
    assert "ui-new" in page and "ui-team" in page
    assert client.post("/index/ui-priv/access", data={"csrf": token, "principal": "group:ui-team", "perm-read": "on",
                                                      "action": "grant"}).status_code == 303
    assert "group:ui-team" in client.get("/index/ui-priv/access").text
    assert httpx.get(f"{site.url}/index/ui-priv/simple/ui-secret/", auth=("ui-new", "a long password 2")).status_code == 200
    bad = client.post("/index/ui-priv/access", data={"csrf": token, "principal": "anonymous", "perm-upload": "on", "action": "grant"})
    assert bad.status_code == 400
    assert client.post("/admin/users/admin", data={"csrf": token, "action": "remove"}).status_code == 403  # not yourself
    assert client.post("/admin/users/ui-new", data={"csrf": token, "action": "remove"}).status_code == 303
    assert httpx.get(f"{site.url}/index/ui-priv/simple/ui-secret/", auth=("ui-new", "a long password 2")).status_code == 401


def test_promote_and_delete_from_the_pages(site: Server, admin: tuple[str, str], tmp_path: Path) -> None:
    api = f"{site.url}/api/v1"
    for name in ("ui-stage", "ui-prod"):
        ok(httpx.post(f"{api}/indexes", json={"name": name, "kind": "hosted"}, auth=admin))
    assert upload(f"{site.url}/index/ui-stage/", make_wheel(tmp_path, "ui-promo", "1.0"), auth=admin).status_code == 200
    outsider = _sign_in(site, "ui-outsider", "a long password 1")
    token = _csrf(outsider, "/")
    page = outsider.get("/index/ui-stage/project/ui-promo/1.0/").text
    assert "Delete 1.0" not in page  # the outsider may upload here but not delete others' files
    assert outsider.post("/index/ui-stage/project/ui-promo/1.0/delete", data={"csrf": token}).status_code in (403, 404)
    refused = outsider.post("/index/ui-stage/project/ui-promo/1.0/promote", data={"csrf": token, "target": "ui-priv"})
    assert refused.status_code == 404  # may not see the target
    client = _sign_in(site, *admin)
    token = _csrf(client, "/")
    page = client.get("/index/ui-stage/project/ui-promo/1.0/").text
    assert "Promote 1.0 to" in page and '<option value="ui-prod">' in page and "Delete 1.0" in page
    assert client.post("/index/ui-stage/project/ui-promo/1.0/promote", data={"target": "ui-prod"}).status_code == 403  # CSRF
    done = client.post("/index/ui-stage/project/ui-promo/1.0/promote", data={"csrf": token, "target": "ui-prod"})
    assert done.status_code == 303 and done.headers["location"] == "/index/ui-prod/project/ui-promo/1.0/"
    assert httpx.get(f"{site.url}/index/ui-prod/simple/ui-promo/").status_code == 200
    assert client.post("/index/ui-stage/project/ui-promo/1.0/promote", data={"csrf": token, "target": "pypi"}).status_code == 400
    gone = client.post("/index/ui-stage/project/ui-promo/1.0/delete", data={"csrf": token})
    assert gone.status_code == 303
    assert httpx.get(f"{site.url}/index/ui-stage/simple/ui-promo/").status_code == 404
    assert httpx.get(f"{site.url}/index/ui-prod/simple/ui-promo/").status_code == 200  # the promoted copy stays


def test_sessions_hold_across_workers(tmp_path: Path) -> None:
    """With --workers 2 both workers sign a reader in from the same cookie (one secret, made once
    in the data folder even when both reach for it at once)."""
    srv = Server(tmp_path / "data", workers=2).start()
    try:
        client = _sign_in(srv, "admin", srv.admin_password)
        cookie = client.cookies["wheelcave_session"]
        answers = [httpx.get(f"{srv.url}/", cookies={"wheelcave_session": cookie}).text for _ in range(20)]  # fresh connections
        assert all("signed in as admin" in a for a in answers)
        assert len((srv.data_dir / "session-secret").read_text().strip()) >= 32
    finally:
        srv.stop()


def test_pages_take_http_credentials_too(site: Server, admin: tuple[str, str]) -> None:
    """curl -u works on the pages as on the APIs: right credentials sign the request in, wrong
    ones are a 401 (never an anonymous page)."""
    assert httpx.get(f"{site.url}/admin/users", auth=admin).status_code == 200
    assert httpx.get(f"{site.url}/account/tokens", auth=("ui-outsider", "a long password 1")).status_code == 200
    assert httpx.get(f"{site.url}/admin/users", auth=("admin", "wrong")).status_code == 401
    assert httpx.get(f"{site.url}/account/tokens", auth=("ui-outsider", "wrong")).status_code == 401


def test_every_page_refuses_when_nothing_is_granted(tmp_path: Path) -> None:
    """Grant nothing by default: with anonymous_read = false, every page route answers 401 to a
    caller without credentials (and every form 401 or 403), before anything is looked up."""
    srv = Server(tmp_path / "data", extra_env={"WHEELCAVE_AUTH_ANONYMOUS_READ": "false"}).start()
    try:
        for path in ("/", "/search?q=x", "/project/x/", "/project/x/1.0/", "/index/local/", "/index/local/project/x/",
                     "/index/local/project/x/1.0/", "/index/local/access", "/index/pypi/traffic", "/index/local/webhooks", "/upload", "/account/tokens",
                     "/admin/audit", "/admin/users"):
            assert httpx.get(f"{srv.url}{path}").status_code == 401, path
        for path in ("/logout", "/account/tokens", "/account/tokens/1/revoke", "/index/local/project/x/1.0/yank",
                     "/index/local/project/x/1.0/unyank", "/index/local/project/x/1.0/delete",
                     "/index/local/project/x/1.0/promote", "/index/pypi/fetch", "/admin/users", "/admin/users/admin",
                     "/admin/groups", "/index/local/access", "/upload/local"):
            assert httpx.post(f"{srv.url}{path}", data={"csrf": "x"}).status_code in (401, 403), path
        assert httpx.get(f"{srv.url}/login").status_code == 200  # the way in stays open
        assert httpx.get(f"{srv.url}/_static/wheelcave.css").status_code == 200  # and its style sheet
    finally:
        srv.stop()


def test_page_inputs_in_their_worst_forms(site: Server, admin: tuple[str, str]) -> None:
    """Each page route's worst input: a clear 4xx (or a safe page), never a 500 or a change."""
    anon = httpx.Client(base_url=site.url)
    form = anon.get("/login", params={"next": "//evil.example/" + "x" * 5000})
    assert form.status_code == 200 and 'name="next" value="/"' in form.text  # never off this site
    huge = anon.post("/login", content=b"a=" + b"x" * 200_000, headers={"content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 400
    assert anon.get("/search", params={"q": "x" * 30_000}).status_code in (200, 414, 431)
    assert anon.get("/search", params={"q": "%_\\'\""}).status_code == 200  # LIKE wildcards and quotes are text
    assert anon.get("/search", params={"q": "x\x00"}).status_code == 400  # refused at the door
    assert anon.get("/project/" + "a" * 5000 + "/").status_code == 404
    assert anon.get("/project/-not-a-name-/").status_code in (301, 404)
    assert anon.get("/index/local/project/ui-md/" + "9" * 5000 + "/").status_code == 404
    assert anon.get("/index/" + "x" * 300 + "/").status_code in (401, 404)  # 401: this site has a private index
    assert anon.get("/_static/" + "%00").status_code in (400, 404)

    client = _sign_in(site, *admin)
    token = _csrf(client, "/")
    assert client.post("/logout", data={}).status_code == 403  # no CSRF token: still signed in
    assert "signed in as admin" in client.get("/").text
    bad_description = client.post("/account/tokens", data={"csrf": token, "description": "line\nbreak\x00"})
    assert bad_description.status_code == 400
    for token_id in ("abc", "9" * 5000, "-1"):
        assert client.post(f"/account/tokens/{token_id}/revoke", data={"csrf": token}).status_code == 404, token_id
    long_reason = client.post("/index/local/project/ui-md/9.9/yank", data={"csrf": token, "reason": "r" * 100_000})
    assert long_reason.status_code in (400, 404)
    assert client.post("/index/local/project/-bad-/1.0/yank", data={"csrf": token}).status_code in (400, 404)
    assert client.post("/index/local/project/ui-md/9.9/delete", data={"csrf": token}).status_code == 404
    assert client.post("/index/local/project/ui-md/2.0/promote", data={"csrf": token, "target": "no-such"}).status_code == 404
    assert client.post("/index/local/project/ui-md/2.0/promote", data={"csrf": token, "target": "local"}).status_code == 400
    assert client.get("/admin/audit", params={"actor": "x" * 30_000}).status_code in (200, 414, 431)
    assert client.post("/admin/users", data={"csrf": token, "name": "bad name\n", "password": "p" * 20}).status_code == 400
    assert client.post("/admin/users/no-such-user", data={"csrf": token, "action": "make-admin"}).status_code == 404
    assert client.post("/admin/users/admin", data={"csrf": token, "action": "drop-admin"}).status_code == 403
    assert client.post("/admin/users/ui-outsider", data={"csrf": token, "action": "explode"}).status_code == 404
    assert client.post("/admin/groups", data={"csrf": token, "group": "bad group\x00", "action": "add"}).status_code == 400
    assert client.post("/admin/groups", data={"csrf": token, "group": "ui-none", "action": "explode"}).status_code == 404
    for principal, perms in (("", {"perm-read": "on"}), ("group:nope nope", {"perm-read": "on"}), ("ui-outsider", {})):
        r = client.post("/index/local/access", data={"csrf": token, "principal": principal, "action": "grant", **perms})
        assert r.status_code in (400, 404), principal
    assert client.post("/index/pypi/fetch", data={"csrf": token, "project": "x" * 5000}).status_code == 400
    assert client.post("/upload/local", data={"csrf": token}).status_code == 400  # no file at all
    assert client.post("/upload/no-such", data={"csrf": token},
                       files={"content": ("x-1.0-py3-none-any.whl", b"PK", "application/octet-stream")}).status_code == 404
    assert not httpx.get(f"{site.url}/api/v1/whoami", auth=("ui-outsider", "a long password 1")).json()["is_admin"]
