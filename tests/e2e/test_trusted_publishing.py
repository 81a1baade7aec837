"""Issue 9 acceptance 3: ``uv publish --trusted-publishing always`` in a simulated GitHub
Actions job uploads to an index that trusts the issuer and repository, and is refused for
another repository; twine with a minted token works too; forged, expired, replayed and
foreign tokens are refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import run
from tests.support.dists import make_wheel
from tests.support.oidc import LocalIssuer
from tests.support.server import BIN, Server, clean_env
from tests.support.tls import make_certificate

REPO_CLAIMS = {"repository": "acme/app", "repository_owner": "acme", "environment": "release",
               "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v1", "sub": "repo:acme/app:environment:release"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    iss = LocalIssuer().start()
    yield iss
    iss.stop()


@pytest.fixture(scope="module")
def tp_server(issuer: LocalIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Over HTTPS: uv always asks https://<upload host>/_/oidc/audience (so do real CI runs)."""
    tmp = tmp_path_factory.mktemp("tp")
    srv = Server(tmp / "data", extra_env={"WHEELCAVE_AUTH_OIDC_ISSUERS": issuer.url}, tls=make_certificate(tmp)).start()
    srv.cli("publisher", "add", "local", "--issuer", issuer.url, "--claim", "repository=acme/app",
            "--claim", "workflow=release.yml", "--claim", "environment=release", "--project", "tp-app")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def web(tp_server: Server) -> Iterator[httpx.Client]:
    assert tp_server.tls is not None
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tp_server.tls[0])), timeout=30) as client:
        yield client


def _env(srv: Server, **extra: str) -> dict[str, str]:
    """Clients trust the test CA (uv and twine read SSL_CERT_FILE / REQUESTS_CA_BUNDLE)."""
    assert srv.tls is not None
    return clean_env({"SSL_CERT_FILE": str(srv.tls[0]), "REQUESTS_CA_BUNDLE": str(srv.tls[0]), **extra})


def _files(web: httpx.Client, srv: Server, project: str) -> list[str]:
    r = web.get(f"{srv.url}/api/v1/indexes/local/projects/{project}", auth=("admin", srv.admin_password))
    return sorted(f["filename"] for f in r.json()["files"]) if r.status_code == 200 else []


def test_uv_trusted_publishing_in_github_actions(tp_server: Server, issuer: LocalIssuer, web: httpx.Client, tmp_path: Path) -> None:
    srv = tp_server
    audience = web.get(f"{srv.url}/_/oidc/audience").json()["audience"]
    assert audience == "wheelcave"
    env = _env(srv, UV_CACHE_DIR=str(tmp_path / "uv"), **issuer.actions_env)
    wheel = make_wheel(tmp_path, "tp-app", "1.0")
    cmd = [str(BIN / "uv"), "publish", "--trusted-publishing", "always", "--publish-url", f"{srv.url}/legacy/"]
    issuer.claims = dict(REPO_CLAIMS)
    r = run([*cmd, str(wheel)], env, check=False)
    assert r.returncode == 0, r.stderr
    assert _files(web, srv, "tp-app") == [wheel.name]
    assert issuer.issued[-1]["aud"] == audience  # uv asked the CI for a token for us
    assert "Failed to invalidate" not in r.stderr  # uv burnt the minted token after use, and it is gone
    tokens = web.get(f"{srv.url}/api/v1/tokens", auth=("admin", srv.admin_password)).json()
    assert not [t for t in tokens if t["user"] is None]

    # another repository: refused, and uv shows why
    issuer.claims = {**REPO_CLAIMS, "repository": "acme/other", "job_workflow_ref": "acme/other/.github/workflows/release.yml@x"}
    wheel2 = make_wheel(tmp_path, "tp-app", "1.1")
    r = run([*cmd, str(wheel2)], env, check=False)
    assert r.returncode != 0
    assert "No trusted publisher matches" in " ".join(r.stderr.split()), r.stderr  # uv wraps to the terminal's width
    # the right repository but another workflow file: refused as well
    issuer.claims = {**REPO_CLAIMS, "job_workflow_ref": "acme/app/.github/workflows/nightly.yml@refs/heads/main"}
    r = run([*cmd, str(wheel2)], env, check=False)
    assert r.returncode != 0
    assert _files(web, srv, "tp-app") == [wheel.name]


def _mint(web: httpx.Client, srv: Server, token: str) -> httpx.Response:
    return web.post(f"{srv.url}/_/oidc/mint-token", json={"token": token})


def test_twine_with_a_minted_token_and_its_limits(tp_server: Server, issuer: LocalIssuer, web: httpx.Client, tmp_path: Path) -> None:
    srv = tp_server
    issuer.claims = dict(REPO_CLAIMS)
    r = _mint(web, srv, issuer.token("wheelcave"))
    assert r.status_code == 200, r.text
    minted = r.json()["token"]
    wheel = make_wheel(tmp_path, "tp-app", "2.0")
    run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
         f"{srv.url}/legacy/", "-u", "__token__", "-p", minted, str(wheel)], _env(srv))
    assert wheel.name in _files(web, srv, "tp-app")
    token = ("__token__", minted)
    # only that project, only uploads: not another project, no yank, no API changes
    other = make_wheel(tmp_path, "tp-other", "1.0")
    r = run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
             f"{srv.url}/legacy/", "-u", "__token__", "-p", minted, str(other)], _env(srv), check=False)
    assert r.returncode != 0 and _files(web, srv, "tp-other") == []
    api = f"{srv.url}/api/v1"
    assert web.post(f"{api}/indexes/local/projects/tp-app/versions/2.0/yank", json={}, auth=token).status_code == 403
    assert web.post(f"{api}/tokens", json={}, auth=token).status_code == 403
    assert web.patch(f"{api}/indexes/local", json={"config": {"immutable": False}}, auth=token).status_code == 403
    who = web.get(f"{api}/whoami", auth=token).json()
    assert who["name"].startswith("publisher:") and who["permissions"] == ["read", "upload"] and who["expires_at"]
    entries = web.get(f"{api}/audit", params={"action": "publisher.mint"}, auth=("admin", srv.admin_password)).json()
    assert entries and entries[0]["actor"].startswith("publisher:") and minted not in str(entries)


def test_bad_oidc_tokens_are_refused(tp_server: Server, issuer: LocalIssuer, web: httpx.Client) -> None:
    srv = tp_server
    issuer.claims = dict(REPO_CLAIMS)
    good = issuer.token("wheelcave")
    assert _mint(web, srv, good).status_code == 200
    cases = {
        "replayed": good,
        "wrong audience": issuer.token("someone-else"),
        "expired": issuer.token("wheelcave", lifetime=-120),
        "forged signature": issuer.token("wheelcave", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "foreign issuer": issuer.token("wheelcave", iss="https://ci.example.test"),
        "not a JWT": "not.a.jwt",
        "empty": "",
    }
    for what, token in cases.items():
        r = _mint(web, srv, token)
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        body = r.json()
        assert body["message"] == "Token request failed" and body["errors"][0]["description"], (what, body)
    for body in (b"{", b"[]", b'{"token": 5}', b"x" * 70_000):
        r = web.post(f"{srv.url}/_/oidc/mint-token", content=body)
        assert r.status_code in (400, 413), (body[:10], r.status_code)


def test_publishers_are_for_administrators(tp_server: Server, web: httpx.Client) -> None:
    api = f"{tp_server.url}/api/v1"
    admin = ("admin", tp_server.admin_password)
    web.post(f"{api}/users", json={"name": "tp-user", "password": "tp-password-1"}, auth=admin)
    body = {"issuer": "https://ci.example.test", "claims": {"repository": "a/b"}}
    assert web.post(f"{api}/indexes/local/publishers", json=body, auth=("tp-user", "tp-password-1")).status_code == 403
    assert web.get(f"{api}/publishers", auth=("tp-user", "tp-password-1")).status_code == 403
    r = web.post(f"{api}/indexes/local/publishers", json={**body, "claims": {}}, auth=admin)
    assert r.status_code == 400
    r = web.post(f"{api}/indexes/pypi/publishers", json=body, auth=admin)
    assert r.status_code == 400 and "hosted" in r.json()["message"]
    listed = web.get(f"{api}/publishers", auth=admin).json()
    assert [p["claims"]["repository"] for p in listed] == ["acme/app"]
