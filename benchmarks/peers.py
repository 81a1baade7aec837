"""The servers compared: wheelcave and its peers, each installed in its own virtual environment
outside the repository (``~/.cache/wheelcave-bench/``), started on 127.0.0.1 with a fresh data
folder, stopped by PID.

A peer says what it can do: ``hosted`` (serves files it was given), ``upload`` (takes twine
uploads), ``proxy`` (caches an upstream index). A scenario a peer cannot do is reported as such.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks._harness import BIN, Proc, free_port, wait_ready

CACHE = Path(os.environ.get("WHEELCAVE_BENCH_CACHE", Path.home() / ".cache" / "wheelcave-bench"))
PASSWORD = "bench-password-1"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELCAVE_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def tool_venv(name: str, *requirements: str) -> Path:
    """A venv of its own for one peer, made once and reused; returns its bin folder."""
    venv = CACHE / "venvs" / name
    stamp = venv / ".requirements"
    wanted = "\n".join(requirements)
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(BIN / "uv"), "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=_clean_env())
        subprocess.run([str(BIN / "uv"), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *requirements],
                       check=True, env=_clean_env())
        stamp.write_text(wanted)
    return venv / "bin"


@dataclass
class Running:
    name: str
    procs: list[Proc]
    simple: str                      # the simple index URL, ending with "/"
    upload: str | None = None        # legacy upload URL
    auth: tuple[str, str] | None = None
    data: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.procs[0].proc.pid

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


class Peer:
    name = ""
    hosted = upload = proxy = False

    def install(self) -> None:
        """Make sure the peer can start (venvs, system packages)."""

    def start(self, work: Path, *, upstream: str | None = None, files: Path | None = None) -> Running:
        """Start the server; a failure on the way stops whatever was already started."""
        self._spawned: list[subprocess.Popen[bytes]] = []
        try:
            return self._start(work, upstream=upstream, files=files)
        except BaseException:
            for proc in self._spawned:
                Proc(proc, "").stop()
            raise

    def _spawn(self, cmd: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, **kwargs)  # type: ignore[call-overload]
        self._spawned.append(proc)
        return proc

    def _start(self, work: Path, *, upstream: str | None = None, files: Path | None = None) -> Running:
        raise NotImplementedError


class Wheelcave(Peer):
    name, hosted, upload, proxy = "wheelcave", True, True, True

    def __init__(self, workers: int = 1, engine: str = "uvicorn", *, access_log: bool = True) -> None:
        self.workers = workers
        self.engine = engine
        self.access_log = access_log  # off: as the nginx peer runs (its access_log off)
        if workers > 1:
            self.name = f"wheelcave --workers {workers}"
        if engine != "uvicorn":
            self.name += f" ({engine})"
        if not access_log:
            self.name += ", no access log"

    def _start(self, work: Path, *, upstream: str | None = None, files: Path | None = None) -> Running:
        work.mkdir(parents=True, exist_ok=True)
        data = work / "wheelcave-data"
        port = free_port()
        env = _clean_env(**({"PIP_INDEX_URL": upstream} if upstream else {}),
                         **({} if self.access_log else {"WHEELCAVE_SERVER_ACCESS_LOG": "false"}))
        log = (work / "wheelcave.log").open("wb")
        started = time.perf_counter()
        proc = self._spawn([str(BIN / "wheelcave"), "serve", "--data-dir", str(data), "--port", str(port),
                            "--workers", str(self.workers), "--engine", self.engine],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/simple/", proc)
        ready = time.perf_counter() - started
        token = subprocess.run([str(BIN / "wheelcave"), "token", "create", "--user", "admin", "--data-dir", str(data)],
                               env=env, capture_output=True, text=True, check=True).stdout.strip()
        running = Running(self.name, [Proc(proc, url)], f"{url}/simple/", f"{url}/legacy/", ("__token__", token), data)
        running.extra["ready_s"] = ready
        return running


class PypiServer(Peer):
    name, hosted, upload = "pypiserver", True, True

    def install(self) -> None:
        tool_venv("pypiserver", "pypiserver==2.*", "passlib")

    def _start(self, work: Path, *, upstream: str | None = None, files: Path | None = None) -> Running:
        bin_dir = tool_venv("pypiserver", "pypiserver==2.*", "passlib")
        work.mkdir(parents=True, exist_ok=True)
        packages = work / "pypiserver-packages"
        if not (work / ".filled").exists():  # a folder filled by an earlier start is reused
            packages.mkdir()
            if files:
                for f in files.iterdir():
                    os.link(f, packages / f.name)
            (work / ".filled").touch()
        port = free_port()
        started = time.perf_counter()
        proc = self._spawn(
            [str(bin_dir / "pypi-server"), "run", "-p", str(port), "-i", "127.0.0.1", "-a", ".", "-P", ".",
             "--disable-fallback", str(packages)],
            env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/simple/", proc, timeout=600)  # it lists its folder on the first request
        running = Running(self.name, [Proc(proc, url)], f"{url}/simple/", f"{url}/", ("bench", "bench"), packages)
        running.extra["ready_s"] = time.perf_counter() - started
        return running


class Devpi(Peer):
    name, hosted, upload, proxy = "devpi", True, True, True
    requirements = ("devpi-server==6.*",)

    def install(self) -> None:
        tool_venv("devpi", *self.requirements)

    def _start(self, work: Path, *, upstream: str | None = None, files: Path | None = None) -> Running:
        bin_dir = tool_venv("devpi", *self.requirements)
        work.mkdir(parents=True, exist_ok=True)
        server_dir = work / "devpi"
        env = _clean_env()
        subprocess.run([str(bin_dir / "devpi-init"), "--serverdir", str(server_dir), "--root-passwd", PASSWORD],
                       env=env, check=True, capture_output=True)
        port = free_port()
        args = [str(bin_dir / "devpi-server"), "--serverdir", str(server_dir), "--host", "127.0.0.1", "--port", str(port)]
        if upstream is None:
            args.append("--offline-mode")
        proc = self._spawn(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/+api", proc, timeout=60)
        login = httpx.post(f"{url}/+login", json={"user": "root", "password": PASSWORD},
                           headers={"Accept": "application/json"}).json()["result"]
        auth = base64.b64encode(f"root:{login['password']}".encode()).decode()
        headers = {"X-Devpi-Auth": auth, "Accept": "application/json", "Content-Type": "application/json"}
        httpx.put(f"{url}/root/dev", headers=headers, content=json.dumps({"bases": [], "volatile": False})).raise_for_status()
        if upstream is not None:
            current = httpx.get(f"{url}/root/pypi", headers=headers, timeout=120).json()["result"].get("mirror_url", "")
            if current.rstrip("/") != upstream.rstrip("/"):
                httpx.patch(f"{url}/root/pypi", headers=headers,
                            content=json.dumps(["mirror_url=" + upstream])).raise_for_status()
        running = Running(self.name, [Proc(proc, url)], f"{url}/root/dev/+simple/", f"{url}/root/dev/",
                          ("root", PASSWORD), server_dir)
        running.extra["proxy_simple"] = f"{url}/root/pypi/+simple/"
        return running


class Proxpi(Peer):
    name, proxy = "proxpi", True
    requirements = ("proxpi", "gunicorn")

    def install(self) -> None:
        tool_venv("proxpi", *self.requirements)

    def _start(self, work: Path, *, upstream: str | None = None, files: Path | None = None) -> Running:
        bin_dir = tool_venv("proxpi", *self.requirements)
        work.mkdir(parents=True, exist_ok=True)
        assert upstream, "proxpi only proxies"
        port = free_port()
        env = _clean_env(PROXPI_INDEX_URL=upstream, PROXPI_CACHE_DIR=str(work / "proxpi-cache"),
                         PROXPI_EXTRA_INDEX_URLS="")
        proc = self._spawn([str(bin_dir / "gunicorn"), "-b", f"127.0.0.1:{port}", "proxpi.server:app"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/", proc, timeout=60)  # not /index/: that lists the whole upstream
        return Running(self.name, [Proc(proc, url)], f"{url}/index/")


class Nginx(Peer):
    """nginx (Debian's) serving a static tree made by dumb-pypi: the floor for reads."""

    name, hosted = "nginx", True

    def install(self) -> None:
        if shutil.which("nginx") is None:  # Debian's package; needs root
            if subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], capture_output=True).returncode:
                subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
                subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=True, capture_output=True)
        tool_venv("dumb-pypi", "dumb-pypi")

    def _start(self, work: Path, *, upstream: str | None = None, files: Path | None = None) -> Running:
        assert files is not None, "nginx serves a static tree"
        bin_dir = tool_venv("dumb-pypi", "dumb-pypi")
        work.mkdir(parents=True, exist_ok=True)
        (work / "nginx-tmp").mkdir(exist_ok=True)
        root = work / "nginx-root"
        if not (work / ".filled").exists():  # a tree made by an earlier start is reused
            (root / "pool").mkdir(parents=True)
            names = []
            for f in files.iterdir():
                os.link(f, root / "pool" / f.name)
                names.append(f.name)
            listing = work / "package-list.txt"
            listing.write_text("\n".join(names) + "\n")
            subprocess.run([str(bin_dir / "dumb-pypi"), "--package-list", str(listing), "--packages-url", "../../pool/",
                            "--output-dir", str(root)], check=True, capture_output=True, env=_clean_env())
            (work / ".filled").touch()
        port = free_port()
        conf = work / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""  # workers must read the 0700 temp folders
        conf.write_text(f"""
{user}
worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    types {{ text/html html; application/octet-stream whl gz; }}
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index index.html;
    }}
}}
""")
        proc = self._spawn(["nginx", "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/simple/", proc)
        return Running(self.name, [Proc(proc, url)], f"{url}/simple/", data=root)


PEERS: list[Peer] = [Wheelcave(), Nginx(), PypiServer(), Devpi(), Proxpi()]
#: Measured in the hot-page scenario only: one worker per core, as nginx runs here.
WHEELCAVE_PER_CORE = Wheelcave(workers=os.cpu_count() or 1)


def _post(client: httpx.Client, url: str, path: Path) -> None:
    """One legacy-API upload with the fields every index needs (name and version from the
    filename; the server reads the rest from the archive)."""
    from wheelcave.core.filenames import parse_dist_filename

    dist = parse_dist_filename(path.name)
    data = path.read_bytes()
    fields = {":action": "file_upload", "protocol_version": "1", "metadata_version": "2.1",
              "name": dist.project, "version": str(dist.version),
              "filetype": "bdist_wheel" if dist.kind == "wheel" else "sdist", "pyversion": dist.python_tag,
              "sha256_digest": hashlib.sha256(data).hexdigest(), "md5_digest": hashlib.md5(data).hexdigest()}
    response = client.post(url, data=fields, files={"content": (path.name, data, "application/octet-stream")})
    if response.status_code >= 300:
        raise RuntimeError(f"upload of {path.name} to {url}: {response.status_code} {response.text[:300]}")


def upload_all(server: Running, files: list[Path], *, tool: str = "twine") -> float:
    """Upload ``files`` with twine (one process) or uv publish; returns the wall time.

    Seeding real distributions uses ``tool="http"``: twine 7 refuses some published wheels on
    its own (License-Expression under Metadata-Version 2.3) before sending anything, and uv
    publish skipped files on devpi without saying why.
    """
    assert server.upload and server.auth
    if tool == "http":
        start = time.perf_counter()
        with httpx.Client(auth=server.auth, timeout=300) as client:
            for path in files:
                _post(client, server.upload, path)
        return time.perf_counter() - start
    if tool == "twine":
        cmd = [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
               "--repository-url", server.upload, "-u", server.auth[0], "-p", server.auth[1]]
    else:
        cmd = [str(BIN / "uv"), "publish", "--publish-url", server.upload, "-u", server.auth[0], "-p", server.auth[1]]
    start = time.perf_counter()
    result = subprocess.run([*cmd, *map(str, files)], capture_output=True, text=True, env=_clean_env())
    if result.returncode:
        raise RuntimeError(f"{tool} upload to {server.name} failed: {(result.stdout + result.stderr)[-1500:]}")
    return time.perf_counter() - start
