"""The deployment files in deploy/ (issue 14), each run or checked here: the nginx site in front
of two replicas on one PostgreSQL and one S3-compatible store (moto's server on 127.0.0.1) as
compose.yaml arranges them (TLS, HTTP/2, a large upload streamed through, the request id
carried, the public URL), the systemd unit through systemd-analyze, and the settings the container files
name (no registry for their base images is reachable here: building them is a documented
command)."""

from __future__ import annotations

import hashlib
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_venv, run
from tests.support.dists import make_wheel
from tests.support.nginx import Nginx
from tests.support.s3 import S3Server
from tests.support.server import BIN, PostgresDatabase, Server, free_port
from tests.support.tls import make_certificate

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _site(port: int, replicas: list[int], cert: Path, key: Path) -> str:
    """deploy/nginx/wheelcave.conf with the lines marked CHANGE set for this test."""
    text = (DEPLOY / "nginx" / "wheelcave.conf").read_text()
    lines = [line for line in text.splitlines() if not re.match(r"\s*server 127\.0\.0\.1:808\d;", line)]
    text = "\n".join(lines).replace("keepalive 32;", "".join(f"server 127.0.0.1:{p};\n    " for p in replicas) + "keepalive 32;")
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    text = text.replace("/etc/ssl/wheelcave/fullchain.pem", str(cert)).replace("/etc/ssl/wheelcave/privkey.pem", str(key))
    assert f"127.0.0.1:{port}" in text and str(cert) in text and "CHANGE" in text
    return text


def test_the_nginx_site_in_front_of_two_replicas(tmp_path: Path, client_env: dict[str, str]) -> None:
    from tests.conftest import PG_URL

    (tmp_path / "tls").mkdir()
    ca, cert, key = make_certificate(tmp_path / "tls")
    port = free_port()
    public = f"https://127.0.0.1:{port}/"
    database = PostgresDatabase(PG_URL) if PG_URL else None
    s3 = S3Server().start()
    s3.client().create_bucket(Bucket="wheelcave")
    shared = {**s3.env, "WHEELCAVE_STORAGE_URL": "s3://wheelcave/blobs", "WHEELCAVE_SERVER_PUBLIC_URL": public,
              "WHEELCAVE_SERVER_SESSION_SECRET": "one secret for both replicas of this test"}
    if database is not None:
        database.create()
        replicas = [Server(tmp_path / f"data-{n}", database.url, extra_env=shared) for n in "ab"]
    else:  # without PostgreSQL one SQLite server stands for both replicas
        replicas = [Server(tmp_path / "data-a", extra_env=shared)]
    nginx: Nginx | None = None
    try:
        for srv in replicas:
            srv.start()
        ports = [srv.port for srv in replicas] * (2 if len(replicas) == 1 else 1)
        nginx = Nginx(tmp_path / "nginx", _site(port, ports, cert, key))
        verify = ssl.create_default_context(cafile=str(ca))
        nginx.start(f"{public}health", verify=verify)
        with httpx.Client(http2=True, verify=verify, timeout=60) as client:
            page = client.get(f"{public}simple/")
            assert page.status_code == 200 and page.http_version == "HTTP/2"
            assert re.fullmatch(r"[0-9a-f]{32}", page.headers["x-request-id"])  # nginx's $request_id, kept
        # 30 MB (nginx's default limit is 1 MB), with twine over TLS, then pip installs it.
        wheel = make_wheel(tmp_path, "dp-big", "1.0", extra_files={"dp_big/blob.bin": b"\x5a" * (30 * 2**20)})
        trusting = {**client_env, "SSL_CERT_FILE": str(ca), "REQUESTS_CA_BUNDLE": str(ca)}  # the test CA
        run([str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
             "--repository-url", f"{public}legacy/", "-u", "admin", "-p", replicas[0].admin_password, str(wheel)],
            trusting)
        python = new_venv(tmp_path / "venv", client_env)
        run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir", "--cert", str(ca),
             "--index-url", f"{public}simple/", "dp-big"], trusting)
        with httpx.Client(http2=True, verify=verify, timeout=60) as client:
            info = client.get(f"{public}pypi/dp-big/json").json()
            assert info["urls"][0]["url"].startswith(public)  # absolute links name the public address
            got = client.get(info["urls"][0]["url"])
            assert got.status_code == 200 and got.content == wheel.read_bytes()
            for _ in range(6):  # round robin: every replica answers some
                assert client.get(f"{public}simple/dp-big/", headers=JSON).status_code == 200
        if len(replicas) == 2:
            for srv in replicas:
                assert "/simple/dp-big/" in srv.log_path.read_text(), srv.data_dir
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="wheelcave", Prefix="blobs/sha256/")["Contents"]]
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}" in keys  # the bytes are in the shared bucket
    finally:
        if nginx is not None:
            nginx.stop()
        for srv in replicas:
            srv.stop()
        s3.stop()
        if database is not None:
            database.drop()


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "wheelcave.service"
    text = (DEPLOY / "systemd" / "wheelcave.service").read_text()
    assert "ExecStart=/opt/wheelcave/bin/wheelcave serve" in text
    unit.write_text(text.replace("/opt/wheelcave/bin/wheelcave", str(BIN / "wheelcave")))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "wheelcave.service" not in done.stderr, done.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("ExecStart=/", "ExecStart=relative/"))
    assert subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True).returncode != 0
    # What the unit runs is a real command line of this version.
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    args = line.split()[1:]
    assert subprocess.run([str(BIN / "wheelcave"), *args, "--help"], capture_output=True).returncode == 0


def test_the_container_files_name_real_paths_and_settings() -> None:
    from wheelcave.config import _KEYS, load_settings

    known = {f"WHEELCAVE_{s.upper()}_{k.upper()}" for s, k in _KEYS} | {"WHEELCAVE_DATA_DIR"}
    for name in ("Dockerfile", "compose.yaml"):
        text = (DEPLOY / name).read_text()
        named = set(re.findall(r"\bWHEELCAVE_[A-Z_]+\b", text))
        assert named and named <= known, named - known
    docker = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) /build/", docker, flags=re.M):
        for part in source.split():
            assert (ROOT / part).exists(), part
    assert re.search(r'CMD \["serve"\]', docker) and "/ready" in docker
    env = {"WHEELCAVE_SERVER_HOST": "0.0.0.0", "WHEELCAVE_SERVER_PORT": "8080",
           "WHEELCAVE_SERVER_LOG_FORMAT": "json", "WHEELCAVE_SERVER_PUBLIC_URL": "https://pypi.example.com/"}
    compose = (DEPLOY / "compose.yaml").read_text()
    url = re.search(r"WHEELCAVE_STORAGE_URL: (\S+)", compose)
    assert url and "AWS_ENDPOINT_URL: http://s3:9000" in compose and "\n  s3:\n" in compose
    env["WHEELCAVE_STORAGE_URL"] = url.group(1)
    settings = load_settings("/nonexistent-wheelcave-data", environ=env)  # the values they set are valid
    assert settings.host == "0.0.0.0" and settings.log_format == "json" and settings.storage_url == "s3://wheelcave/blobs"
