"""Replicas on one PostgreSQL (issue 14), in one run:

- how long an upload on replica A takes to show on replica B's cached page, over many uploads,
  with LISTEN/NOTIFY and with polling alone (goal: p99 under 100 ms with notifications);
- hot-page throughput through nginx with two replicas behind it against one (goal: 1.3x on
  these 2 cores), 50 connections.

Needs PostgreSQL (``WHEELCAVE_BENCH_POSTGRES_URL``, default the local test server), Debian's
nginx and wrk.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from benchmarks._harness import Proc, free_port, start_wheelcave, wrk
from benchmarks.foundation import tiny_wheel, upload

PG = os.environ.get("WHEELCAVE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
UPLOADS = 60


def _pg(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(make_url(PG).set(drivername="postgresql").render_as_string(False))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _pair(work: Path, db_url: str, env: dict[str, str]) -> tuple[Proc, Proc]:
    work.mkdir(parents=True, exist_ok=True)
    shared = {"WHEELCAVE_DATABASE_URL": db_url, "WHEELCAVE_STORAGE_PATH": str(work / "blobs"), **env}
    return start_wheelcave(work / "a", env=shared), start_wheelcave(work / "b", env=shared)


def _password(work: Path) -> str:
    for name in ("a", "b"):
        path = work / name / "initial-admin-password"
        if path.exists():
            return path.read_text().strip()
    raise RuntimeError("no admin password written")


def _visibility(work: Path, db_url: str, env: dict[str, str]) -> list[float]:
    a, b = _pair(work, db_url, env)
    try:
        auth = ("admin", _password(work))
        delays = []
        with httpx.Client(timeout=30) as client:
            for i in range(UPLOADS):
                data = tiny_wheel("bench-vis", f"1.{i}")
                client.get(f"{b.url}/simple/bench-vis/", headers=JSON)  # B has the page cached
                upload(client, a.url, auth, f"bench_vis-1.{i}-py3-none-any.whl", data, hashlib.sha256(data).hexdigest())
                done = time.perf_counter()
                while True:
                    page = client.get(f"{b.url}/simple/bench-vis/", headers=JSON)
                    if page.status_code == 200 and f"1.{i}" in page.json()["versions"]:
                        break
                delays.append((time.perf_counter() - done) * 1000)
        return delays
    finally:
        a.stop()
        b.stop()


def _nginx(work: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    upstream = "".join(f"server 127.0.0.1:{p};\n" for p in ports)
    conf = work / "nginx.conf"
    temps = "".join(f"{n}_temp_path {work}/{n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"""daemon off; worker_processes auto; pid {work}/nginx.pid; error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{ access_log off; {temps}
  upstream wheelcave {{ {upstream} keepalive 64; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://wheelcave; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, url


def _hot(work: Path, db_url: str, seconds: int) -> dict[int, float]:
    a, b = _pair(work, db_url, {"WHEELCAVE_SERVER_ACCESS_LOG": "false"})
    try:
        auth = ("admin", _password(work))
        with httpx.Client(timeout=30) as client:
            for i in range(50):
                data = tiny_wheel("bench-hot", f"1.{i}")
                upload(client, a.url, auth, f"bench_hot-1.{i}-py3-none-any.whl", data, hashlib.sha256(data).hexdigest())
        out = {}
        for count, servers in ((1, [a]), (2, [a, b])):
            (work / f"nginx-{count}").mkdir()
            proc, url = _nginx(work / f"nginx-{count}", [int(p.url.rsplit(":", 1)[1]) for p in servers])
            try:
                page = f"{url}/simple/bench-hot/"
                assert httpx.get(page, headers=JSON).status_code == 200
                out[count] = statistics.median(wrk(page, connections=50, seconds=seconds, headers=JSON).rps for _ in range(2))
            finally:
                proc.terminate()
                proc.wait()
        return out
    finally:
        a.stop()
        b.stop()


def main(seconds: int = 10) -> str:
    lines = ["# Replicas on one PostgreSQL", ""]
    with tempfile.TemporaryDirectory(prefix="wheelcave-replicas-") as tmp:
        work = Path(tmp)
        results = {}
        for label, env in (("LISTEN/NOTIFY (polling every 10 s as the fallback)", {}),
                           ("polling alone, every 0.5 s", {"WHEELCAVE_DATABASE_LISTEN": "false"})):
            name = f"wheelcave_bench_{uuid.uuid4().hex[:8]}"
            _pg(f'CREATE DATABASE "{name}"')
            try:
                url = make_url(PG).set(database=name).render_as_string(False)
                results[label] = _visibility(work / name, url, env)
            finally:
                _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        lines += [f"## An upload on A, shown on B's cached page ({UPLOADS} uploads), ms", "",
                  "| | median | p99 | max |", "|---|---|---|---|"]
        for label, d in results.items():
            q = statistics.quantiles(d, n=100, method="inclusive")
            lines.append(f"| {label} | {statistics.median(d):.1f} | {q[98]:.1f} | {max(d):.1f} |")
        name = f"wheelcave_bench_{uuid.uuid4().hex[:8]}"
        _pg(f'CREATE DATABASE "{name}"')
        try:
            hot = _hot(work / "hot", make_url(PG).set(database=name).render_as_string(False), seconds)
        finally:
            _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        lines += ["", "## Hot page through nginx, 50 connections, req/s", "",
                  "| replicas | req/s | vs one |", "|---|---|---|"]
        lines += [f"| {n} | {rps:,.0f} | {rps / hot[1]:.2f}x |" for n, rps in hot.items()]
    return "\n".join(lines) + "\n"
