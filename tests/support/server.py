"""A real wheelcave server in a subprocess on 127.0.0.1, on SQLite or on a fresh PostgreSQL
database, and the environment real clients (pip, uv, twine) run in against it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import ClassVar

import httpx
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent


#: Ports handed out by :func:`free_port`: below the kernel's ephemeral range (32768 and up
#: here), so no client connection takes one, and split among pytest-xdist workers, so two
#: workers never hand out the same port (a port asked of the kernel and bound a moment later
#: could be taken by another worker's server meanwhile, and a test then talked to it).
_PORT_FLOOR, _PORT_SPAN = 10_000, 20_000
_port_lock = threading.Lock()
_port_cursor: list[int] = []


def _port_range() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
    slot = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    width = _PORT_SPAN // count
    start = _PORT_FLOOR + (slot % count) * width
    return start, start + width


def free_port() -> int:
    """A port on 127.0.0.1 that this test process has not handed out before (until its share
    wraps around) and that nothing listens on now."""
    start, end = _port_range()
    with _port_lock:
        if not _port_cursor:
            _port_cursor.append(start + os.getpid() % (end - start))
        for _ in range(end - start):
            port = _port_cursor[0]
            _port_cursor[0] = start if port + 1 >= end else port + 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError(f"no free port in {start}-{end}")


class ThreadedServer:
    """An ASGI app served by uvicorn in a thread of the test process, on 127.0.0.1 (httpx's
    ``serve_in_thread``): fake upstreams, a local OIDC issuer."""

    def __init__(self, app: object, port: int, tls: tuple[Path, Path, Path] | None = None) -> None:
        """``tls``: (CA bundle, certificate, key) to serve HTTPS (see tests/support/tls.py)."""
        import uvicorn

        keys = {"ssl_certfile": str(tls[1]), "ssl_keyfile": str(tls[2])} if tls else {}
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off", **keys))  # type: ignore[arg-type]
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def ok(response: httpx.Response) -> httpx.Response:
    """The response, after checking it succeeded (its body is the failure message otherwise)."""
    assert response.status_code < 300, response.text
    return response


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for clients: no site pip configuration, no inherited PIP_/UV_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_", "WHEELCAVE_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


class PostgresDatabase:
    """A throw-away database on the server named by WHEELCAVE_TEST_POSTGRES_URL."""

    def __init__(self, base_url: str) -> None:
        self.base = make_url(base_url)
        self.name = f"wheelcave_test_{uuid.uuid4().hex[:12]}"
        self.url = self.base.set(database=self.name).render_as_string(hide_password=False)

    async def _exec(self, sql: str) -> None:
        import asyncpg

        dsn = self.base.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self) -> str:
        asyncio.run(self._exec(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def drop(self) -> None:
        asyncio.run(self._exec(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


class Server:
    #: The upstream of every server's default ``pypi`` mirror (set by conftest: an empty fake
    #: upstream on 127.0.0.1, so no test reaches the public index by accident).
    default_upstream: str | None = None
    #: Requests answered by every server of this test session, by status class (from their
    #: access logs, counted when each stops): the fault report's "requests served".
    served: ClassVar[dict[str, int]] = {}

    def __init__(
        self, data_dir: Path, database_url: str | None = None, *, workers: int = 1,
        extra_env: dict[str, str] | None = None, tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        """``tls``: (CA bundle, certificate, key) to serve HTTPS (see tests/support/tls.py)."""
        self.extra_env = extra_env or {}
        self.tls = tls
        self.data_dir = data_dir
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self._log_offset = 0

    @property
    def env(self) -> dict[str, str]:
        env = clean_env()
        if self.database_url:
            env["WHEELCAVE_DATABASE_URL"] = self.database_url
        if self.default_upstream:
            env["PIP_INDEX_URL"] = self.default_upstream
        env.update(self.extra_env)
        return env

    def start(self) -> Server:
        self.log = self.log_path.open("ab")
        cmd = [
            str(BIN / "wheelcave"), "serve", "--data-dir", str(self.data_dir),
            "--port", str(self.port), "--access-log", "--workers", str(self.workers),
        ]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[1]), "--tls-key", str(self.tls[2])]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1, verify=ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else True).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def _count_served(self) -> None:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return
        for line in text[getattr(self, "_counted", 0):].splitlines():
            if ' - "' in line and " HTTP/" in line:
                code = line.rsplit('" ', 1)[-1][:1]
                key = f"{code}xx" if code.isdigit() else "other"
                Server.served[key] = Server.served.get(key, 0) + 1
        self._counted = len(text)

    def stop(self) -> None:
        self._count_served()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        self._count_served()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self) -> Server:
        self.stop()
        return self.start()

    @property
    def admin_password(self) -> str:
        return (self.data_dir / "initial-admin-password").read_text().strip()

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "wheelcave"), *args, "--data-dir", str(self.data_dir)],
            env=self.env, input=input, capture_output=True, text=True, check=check,
        )

    def wait_for_index(self, name: str, seconds: float = 10.0, **config: object) -> None:
        """Poll until the running server lists index ``name`` with these settings (it re-reads
        index definitions on its own poll interval); fail after ``seconds``."""
        deadline = time.monotonic() + seconds
        seen: object = None
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.url}/api/v1/indexes", auth=("admin", self.admin_password), timeout=5,
                          verify=ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else True)
            seen = next((i for i in r.json() if i["name"] == name), None) if r.status_code == 200 else r.text
            if isinstance(seen, dict) and all(seen["config"].get(k) == v for k, v in config.items()):
                return
            time.sleep(0.02)
        raise AssertionError(f"index {name!r} with {config} never showed; last seen: {seen}")

    def create_token(self, user: str = "admin") -> str:
        return self.cli("token", "create", "--user", user).stdout.strip()

    def mark_log(self) -> None:
        self._log_offset = self.log_path.stat().st_size

    def requests_since_mark(self) -> list[str]:
        """Request lines ('GET /path') logged since :meth:`mark_log`."""
        with self.log_path.open("rb") as fh:
            fh.seek(self._log_offset)
            text = fh.read().decode(errors="replace")
        lines = []
        for line in text.splitlines():
            if ' - "' in line and " HTTP/" in line:
                lines.append(line.split(' - "', 1)[1].split(" HTTP/")[0])
        return lines
