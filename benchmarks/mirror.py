"""Mirror benchmark (issue #3): cold and warm installs through the mirror against the same
install straight from the upstream, and the server's memory while a 2 GB file passes through.

The install scenarios need the live public index (its URL read from pip's configuration at
run time, as the server does); ``--no-network`` skips them. Each install goes into a fresh
virtual environment with a fresh client cache; each cold run gets a fresh wheelcave.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks._harness import BIN, PeakRss, Proc, free_port, rss_kib, start_wheelcave, wait_ready

#: About 40 distributions once resolved (pinned so runs compare).
REQUIREMENTS = [
    "requests==2.32.3", "flask==3.0.3", "pydantic==2.9.2", "fastapi==0.115.0", "sqlalchemy==2.0.35",
    "rich==13.8.1", "pyyaml==6.0.2", "httpx==0.27.2", "attrs==24.2.0", "boto3==1.35.30",
    "python-dateutil==2.9.0.post0", "jsonschema==4.23.0",
]


def _client_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "UV_NO_CONFIG": "1",
                "UV_CACHE_DIR": str(tmp / "uv-cache"), "PIP_NO_CACHE_DIR": "1"})
    return env


def _upstream_url() -> str:
    code = "from wheelcave.upstream.discovery import pip_index_url; print(pip_index_url())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def _install(tool: str, index: str, tmp: Path, *, find_links: bool = False, limit: float = 300) -> tuple[float, int]:
    """Install REQUIREMENTS into a fresh venv with a fresh client cache; (seconds, dists installed).

    With ``find_links``, ``index`` is a local folder URL used with ``--no-index --find-links``.
    An install still running after ``limit`` seconds is stopped and raises TimeoutError.
    """
    venv = tmp / "venv"
    env = _client_env(tmp)
    subprocess.run([str(BIN / "uv"), "venv", "-q", "--python", sys.executable, str(venv)], env=env, check=True)
    source = ["--no-index", "--find-links", index] if find_links else ["--index-url", index]
    if tool == "uv":
        cmd = [str(BIN / "uv"), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *source]
    else:
        cmd = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", *source]
    start = time.perf_counter()
    try:
        result = subprocess.run([*cmd, *REQUIREMENTS], env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{tool} install from {index} did not finish within {limit:g} s") from None
    if result.returncode:
        raise RuntimeError(f"{tool} install from {index} failed: {(result.stdout + result.stderr)[-1500:]}")
    elapsed = time.perf_counter() - start
    freeze = subprocess.run([str(BIN / "uv"), "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "freeze"],
                            env=env, capture_output=True, text=True, check=True).stdout
    return elapsed, len(freeze.split())


def installs(runs: int) -> tuple[dict[str, dict[str, list[float]]], int]:
    upstream = _upstream_url()
    results: dict[str, dict[str, list[float]]] = {}
    count = 0
    for tool in ("uv", "pip"):
        r = results[tool] = {"direct": [], "mirror cold": [], "mirror warm": []}
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp_name:
                tmp = Path(tmp_name)
                elapsed, count = _install(tool, upstream, tmp / "direct")
                r["direct"].append(elapsed)
                server = start_wheelcave(tmp / "data", env={"PIP_CONFIG_FILE": os.devnull})
                try:
                    r["mirror cold"].append(_install(tool, f"{server.url}/simple/", tmp / "cold")[0])
                    r["mirror warm"].append(_install(tool, f"{server.url}/simple/", tmp / "warm")[0])
                finally:
                    server.stop()
    return results, count


def _big_upstream(root: Path, size_gb: float) -> tuple[Proc, str, str]:
    """A static index (python -m http.server) holding one ``size_gb`` wheel."""
    files = root / "files"
    files.mkdir(parents=True)
    path = files / "huge_pkg-1.0-py3-none-any.whl"
    block = os.urandom(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr("huge_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: huge-pkg\nVersion: 1.0\n")
        zf.writestr("huge_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        with zf.open("huge_pkg/data.bin", "w", force_zip64=True) as fh:
            for _ in range(int(size_gb * 1024)):
                fh.write(block)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    page = root / "simple" / "huge-pkg"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../files/{path.name}#sha256={digest.hexdigest()}">{path.name}</a></body></html>'
    )
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/simple/huge-pkg/", proc)
    return Proc(proc, url), digest.hexdigest(), path.name


def big_file(size_gb: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp_name:
        tmp = Path(tmp_name)
        upstream, sha, filename = _big_upstream(tmp / "up", size_gb)
        server = start_wheelcave(tmp / "data", env={"PIP_INDEX_URL": f"{upstream.url}/simple/"})
        try:
            page = httpx.get(f"{server.url}/simple/huge-pkg/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
            url = httpx.URL(f"{server.url}/simple/huge-pkg/").join(page["files"][0]["url"])
            baseline = rss_kib(server.proc.pid)
            digest = hashlib.sha256()
            with PeakRss(server.proc.pid) as peak, httpx.stream("GET", url, timeout=600) as r:
                start = time.perf_counter()
                for chunk in r.iter_raw(1 << 20):
                    digest.update(chunk)
                elapsed = time.perf_counter() - start
            assert digest.hexdigest() == sha, "the bytes through the mirror differ"
            with PeakRss(server.proc.pid) as peak_cached:
                start = time.perf_counter()
                with httpx.stream("GET", url, timeout=600) as r:
                    for _ in r.iter_raw(1 << 20):
                        pass
                cached = time.perf_counter() - start
            return {"gb": size_gb, "seconds": elapsed, "cached_seconds": cached, "baseline_mb": baseline / 1024,
                    "growth_mb": (peak.peak - baseline) / 1024, "cached_growth_mb": (peak_cached.peak - baseline) / 1024}
        finally:
            server.stop()
            upstream.stop()


def huge_page(files: int = 100_000) -> dict[str, float]:
    """/health latency while a first fetch of one upstream page of ``files`` files (an HTML
    page of ~20 MB) is parsed, stored and rendered, against /health on the idle server (issue
    #10, defect 3: such a page used to stop every request for seconds)."""
    import threading

    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp_name:
        tmp = Path(tmp_name)
        page = tmp / "up" / "simple" / "huge"
        page.mkdir(parents=True)
        links = "".join(
            f'<a href="../../files/huge-{i // 10}.{i % 10}-py3-none-any.whl#sha256={hashlib.sha256(str(i).encode()).hexdigest()}"'
            f' data-requires-python="&gt;=3.8">huge-{i // 10}.{i % 10}-py3-none-any.whl</a>\n' for i in range(files))
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>{links}</body></html>")
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp / "up")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        upstream = Proc(proc, f"http://127.0.0.1:{port}")
        wait_ready(f"{upstream.url}/simple/huge/", proc)
        server = start_wheelcave(tmp / "data", env={"PIP_INDEX_URL": f"{upstream.url}/simple/"})
        try:
            with httpx.Client() as client:
                idle = []
                for _ in range(200):
                    start = time.perf_counter()
                    client.get(f"{server.url}/health")
                    idle.append(time.perf_counter() - start)
            during: list[float] = []
            done = threading.Event()

            def poll() -> None:
                with httpx.Client() as client:
                    while not done.is_set():
                        start = time.perf_counter()
                        client.get(f"{server.url}/health")
                        during.append(time.perf_counter() - start)

            poller = threading.Thread(target=poll)
            poller.start()
            start = time.perf_counter()
            r = httpx.get(f"{server.url}/simple/huge/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=120)
            first = time.perf_counter() - start
            done.set()
            poller.join()
            assert r.status_code == 200 and len(r.json()["files"]) == files, r.status_code
            during.sort()
            return {"files": files, "first_fetch": first, "idle_median_ms": statistics.median(idle) * 1000,
                    "median_ms": statistics.median(during) * 1000, "p99_ms": during[int(len(during) * 0.99)] * 1000,
                    "worst_ms": during[-1] * 1000, "answered": len(during)}
        finally:
            server.stop()
            upstream.stop()


def report(inst: tuple[dict[str, dict[str, list[float]]], int] | None, big: dict[str, float], runs: int,
           huge: dict[str, float] | None = None) -> str:
    lines = [f"# wheelcave mirror benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "", f"Machine: {os.cpu_count()} cores.", ""]
    if inst is not None:
        results, count = inst
        lines += [
            f"## Installs of {count} distributions ({len(REQUIREMENTS)} pinned requirements), median of {runs}",
            "",
            "| client | direct from upstream | through mirror, cold | ratio (target ≤ 1.15) | through mirror, warm | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for tool, r in results.items():
            d, c, w = (statistics.median(r[k]) for k in ("direct", "mirror cold", "mirror warm"))
            spread = lambda k: f" (±{(max(r[k]) - min(r[k])) / 2:.1f})" if len(r[k]) > 1 else ""  # noqa: E731
            lines.append(f"| {tool} | {d:.1f} s{spread('direct')} | {c:.1f} s{spread('mirror cold')} | {c / d:.2f} | "
                         f"{w:.1f} s{spread('mirror warm')} | {w / d:.2f} |")
        lines.append("")
    lines += [
        f"## A {big['gb']:g} GB file through the mirror",
        "",
        f"First download (streamed while cached): {big['seconds']:.1f} s; again from the cache: {big['cached_seconds']:.1f} s. "
        f"Server RSS {big['baseline_mb']:.0f} MiB before; peak growth {big['growth_mb']:.1f} MiB while fetching, "
        f"{big['cached_growth_mb']:.1f} MiB while serving from the cache (constant memory).",
        "",
    ]
    if huge is not None:
        lines += [
            f"## /health during a first fetch of a {huge['files']:,.0f}-file upstream page",
            "",
            f"The page took {huge['first_fetch']:.1f} s; meanwhile {huge['answered']:.0f} /health requests were answered: "
            f"median {huge['median_ms']:.1f} ms, p99 {huge['p99_ms']:.0f} ms, worst {huge['worst_ms']:.0f} ms "
            f"(idle server: median {huge['idle_median_ms']:.1f} ms; worst / page time "
            f"{huge['worst_ms'] / 1000 / huge['first_fetch']:.2f}).",
            "",
        ]
    return "\n".join(lines)


def main(seconds: int = 10, *, network: bool = True, runs: int = 3, big_gb: float = 2.0) -> str:
    del seconds
    inst = installs(runs) if network else None
    big = big_file(big_gb)
    return report(inst, big, runs, huge_page())


