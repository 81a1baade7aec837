"""Shared pieces: start servers on 127.0.0.1, run wrk, sample a process's memory."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=max(1.0, min(60.0, deadline - time.monotonic())))
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_wheelcave(data_dir: Path, *, env: dict[str, str] | None = None, public_url: bool = False) -> Proc:
    """A wheelcave server on a free port; ``public_url``: with ``[server] public_url`` set to it."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELCAVE_"))}
    clean.update(env or {})
    if public_url:
        clean["WHEELCAVE_SERVER_PUBLIC_URL"] = f"http://127.0.0.1:{port}/"
    log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "wheelcave"), "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=clean, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", proc)
    return Proc(proc, url)


def start_relay(upstream: str) -> Proc:
    """The floor of a mirror: the bare relay of :mod:`benchmarks.relay` (uvicorn, one process)."""
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.relay", upstream, str(port)], cwd=root)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/f/", proc)
    return Proc(proc, url)


def _bare_app_folder(body: bytes, port: int, kind: str) -> Path:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"wheelcave-bench-{kind}-{port}"
    folder.mkdir(exist_ok=True)
    (folder / "body.bin").write_bytes(body)
    return folder


def start_reference(body: bytes, content_type: str, *, workers: int = 1) -> Proc:
    """The floor: uvicorn (same options, ``workers`` processes) answering fixed bytes from a bare
    ASGI app."""
    port = free_port()
    folder = _bare_app_folder(body, port, "asgi")
    (folder / "asgi_ref.py").write_text(
        f"BODY = open({str(folder / 'body.bin')!r}, 'rb').read()\n"
        f"HEADERS = [(b'content-type', {content_type.encode()!r}), (b'content-length', str(len(BODY)).encode())]\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': HEADERS})\n"
        "    await send({'type': 'http.response.body', 'body': BODY})\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning", "--no-access-log", "asgi_ref:app"],
                            cwd=folder)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return Proc(proc, url)


def start_rsgi_reference(body: bytes, content_type: str, *, workers: int = 1) -> Proc:
    """The floor of granian: ``workers`` processes answering fixed bytes from a bare RSGI app
    (granian's own interface, cheaper than ASGI)."""
    port = free_port()
    folder = _bare_app_folder(body, port, "rsgi")
    (folder / "rsgi_ref.py").write_text(
        f"BODY = open({str(folder / 'body.bin')!r}, 'rb').read()\n"
        f"HEADERS = [('content-type', {content_type!r}), ('content-length', str(len(BODY)))]\n"
        "async def app(scope, proto):\n"
        "    proto.response_bytes(200, HEADERS, BODY)\n"
    )
    proc = subprocess.Popen([str(BIN / "granian"), "--interface", "rsgi", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning", "--no-access-log", "rsgi_ref:app"],
                            cwd=folder)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return Proc(proc, url)


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, *, connections: int, seconds: int, headers: dict[str, str]) -> LoadResult:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load scenarios: apt-get install wrk")
    threads = 1 if connections == 1 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return LoadResult(rps, p50, p99, errors + (int(non2xx.group(1)) if non2xx else 0))


def _with_children(pid: int) -> list[int]:
    """A process and its direct children (a server's workers)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return pids


def rss_kib(pid: int) -> int:
    total = 0
    for p in _with_children(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its direct children so far, from /proc: the
    figure a cold run through a fresh server should be judged by, as going direct moves with the
    upstream from run to run and the server's own work does not."""
    ticks = 0
    for p in _with_children(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """Samples a process's RSS every 20 ms from a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
