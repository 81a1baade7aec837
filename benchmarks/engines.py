"""uvicorn against granian under wheelcave (issue 13), beside nginx in the same run.

The same app, data and files under each HTTP server (``wheelcave serve --engine``):
- hot: a 50-file project page under wrk, 1 and 50 connections, one worker and one per core;
  nginx serving the same page as a static file is the reference (goals: 1 connection at least
  90% of nginx, 50 connections with one worker per core at least 50%), and bare apps answering
  the same bytes under each engine show the ceiling of a Python server here;
- warm: ``uv pip install`` and ``pip install`` of the mirror benchmark's set from a server that
  holds it (goal: parity between engines and with the find-links floor);
- upload: 200 small files with twine, and one 500 MB wheel (seconds and server RSS growth).
granian becomes the default only if it wins here and the whole test suite passes under it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import httpx

from benchmarks._harness import PeakRss, Proc, rss_kib, start_reference, start_rsgi_reference, wrk
from benchmarks.compare import PIP_ACCEPT, _files, _page, _start_with, _warm_set
from tests.support.dists import big_wheel
from benchmarks.mirror import _install
from benchmarks.peers import PEERS, Running, Wheelcave, upload_all

CORES = os.cpu_count() or 1
ENGINES = ("uvicorn", "granian")


def _hot(work: Path, runs: int, seconds: int, lines: list[str]) -> None:
    files = work / "hot-files"
    _files(files, "bench-hot", 50)
    nginx = next(p for p in PEERS if p.name == "nginx").start(work / "hot-nginx", files=files)
    results: dict[str, dict[int, float]] = {}
    p99: dict[str, dict[int, float]] = {}
    bare: list[tuple[str, Proc]] = []
    try:
        # The ceiling of a Python server here: each engine answering the same bytes from a bare app.
        page = httpx.get(_page(nginx, "bench-hot"), headers={"Accept": PIP_ACCEPT}, timeout=30)
        body, ctype = page.content, page.headers["content-type"]
        bare.append(("bare ASGI app, uvicorn", start_reference(body, ctype)))
        bare.append(("bare RSGI app, granian", start_rsgi_reference(body, ctype)))
        if CORES > 1:  # the floor of the goal at 50 connections: one worker per core
            bare.append((f"bare ASGI app, uvicorn, {CORES} workers", start_reference(body, ctype, workers=CORES)))
            bare.append((f"bare RSGI app, granian, {CORES} workers", start_rsgi_reference(body, ctype, workers=CORES)))
        servers: list[tuple[str, Running | None, Wheelcave | None]] = [("nginx", nginx, None)]
        servers += [(label, Running(label, [proc], proc.url + "/simple/"), None) for label, proc in bare]
        servers += [(f"{e}, 1 worker", None, Wheelcave(1, e)) for e in ENGINES]
        servers += [(f"{e}, {CORES} workers", None, Wheelcave(CORES, e)) for e in ENGINES] if CORES > 1 else []
        # nginx runs with its access log off: uvicorn the same way, beside its default (log on)
        servers += [("uvicorn, 1 worker, no access log", None, Wheelcave(1, "uvicorn", access_log=False))]
        servers += [(f"uvicorn, {CORES} workers, no access log", None, Wheelcave(CORES, "uvicorn", access_log=False))] if CORES > 1 else []
        for label, running, peer in servers:
            server = running or _start_with(peer, work / f"hot-{label.replace(' ', '-').replace(',', '')}", files)  # type: ignore[arg-type]
            try:
                url = _page(server, "bench-hot")
                assert httpx.get(url, headers={"Accept": PIP_ACCEPT}, timeout=30).status_code == 200, url
                for conns in (1, 50):
                    got = [wrk(url, connections=conns, seconds=seconds, headers={"Accept": PIP_ACCEPT}) for _ in range(runs)]
                    results.setdefault(label, {})[conns] = statistics.median(r.rps for r in got)
                    p99.setdefault(label, {})[conns] = statistics.median(r.p99_ms for r in got)
            finally:
                if server is not nginx and running is None:
                    server.stop()
    finally:
        nginx.stop()
        for _, proc in bare:
            proc.stop()
    lines += ["## Hot page (50 files), req/s (p99 ms); % of nginx", "",
              "| server | 1 conn | 50 conn |", "|---|---|---|"]
    ref = results["nginx"]
    for label, row in results.items():
        cells = [f"{row[c]:,.0f} ({p99[label][c]:.1f}) {100 * row[c] / ref[c]:.0f}%" for c in (1, 50)]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines.append("")


def _warm(work: Path, runs: int, lines: list[str]) -> None:
    files = _warm_set()
    clean = work / "warm-files"
    clean.mkdir()
    for f in files.iterdir():
        if not f.name.startswith("."):
            os.link(f, clean / f.name)
    rows: dict[str, dict[str, float]] = {}
    for tool in ("uv", "pip"):
        floor = [_install(tool, f"file://{clean}", work / f"warm-floor-{tool}-{i}", find_links=True)[0] for i in range(runs)]
        rows.setdefault("find-links floor", {})[tool] = statistics.median(floor)
    for engine in ENGINES:
        server = _start_with(Wheelcave(1, engine), work / f"warm-{engine}", clean)
        try:
            for tool in ("uv", "pip"):
                times = [_install(tool, server.simple, work / f"warm-{engine}-{tool}-{i}")[0] for i in range(runs)]
                rows.setdefault(engine, {})[tool] = statistics.median(times)
        finally:
            server.stop()
    lines += ["## Warm installs (the set held by the server), s", "", "| | uv | pip |", "|---|---|---|"]
    lines += [f"| {label} | {row['uv']:.2f} | {row['pip']:.2f} |" for label, row in rows.items()]
    lines.append("")


def _upload(work: Path, runs: int, lines: list[str]) -> None:
    small = _files(work / "upload-small", "bench-up", 200)
    big = big_wheel(work, 500)
    lines += ["## Uploads", "", "| engine | 200 small files (twine), s | 500 MB, s | 500 MB, RSS growth MiB |",
              "|---|---|---|---|"]
    for engine in ENGINES:
        smalls, bigs, growth = [], [], []
        for i in range(runs):
            server = Wheelcave(1, engine).start(work / f"upload-{engine}-{i}")
            try:
                smalls.append(upload_all(server, small))
                baseline = rss_kib(server.pid)
                with PeakRss(server.pid) as peak:
                    bigs.append(upload_all(server, [big]))
                growth.append((peak.peak - baseline) / 1024)
            finally:
                server.stop()
        lines.append(f"| {engine} | {statistics.median(smalls):.2f} | {statistics.median(bigs):.2f} | "
                     f"{statistics.median(growth):.0f} |")
    lines.append("")


def main(runs: int = 3, seconds: int = 10, parts: tuple[str, ...] = ("hot", "warm", "upload")) -> str:
    lines = [f"# HTTP servers under wheelcave: uvicorn and granian ({CORES} cores, {runs} runs, medians)", ""]
    with tempfile.TemporaryDirectory(prefix="wheelcave-engines-") as tmp:
        work = Path(tmp)
        if "hot" in parts:
            _hot(work, runs, seconds, lines)
        if "warm" in parts:
            _warm(work, runs, lines)
        if "upload" in parts:
            _upload(work, runs, lines)
    return "\n".join(lines)
