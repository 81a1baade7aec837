"""Debian's nginx, started by a test on 127.0.0.1 with a configuration of its own (no system
files touched; everything it writes goes under the test's folder)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    def __init__(self, workdir: Path, http_block: str) -> None:
        """``http_block``: directives for nginx's http context (server blocks, includes)."""
        if not Path(NGINX).exists():
            pytest.skip("nginx is not installed (apt-get install nginx-light)")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        temps = "\n".join(f"    {name}_temp_path {workdir}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.config = workdir / "nginx-main.conf"
        self.config.write_text(f"""daemon off;
user root;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
{temps}
{http_block}
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, probe: str, verify: ssl.SSLContext | bool = True) -> Nginx:
        """Start and wait (polling ``probe``, a URL) until it answers."""
        check = subprocess.run([NGINX, "-t", "-c", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-c", str(self.config)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            try:
                httpx.get(probe, timeout=1, verify=verify)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


def nginx_port() -> int:
    return free_port()
