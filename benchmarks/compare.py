"""Peers side by side (issue #5): wheelcave, nginx + dumb-pypi, pypiserver, devpi, proxpi on the
same machine, files and clients, in one run. See benchmarks/README.md.

Scenarios: ``hot`` (a 50-file project page under load), ``warm`` (installing ~40 distributions a
server holds), ``cold`` (the same through each caching server with an empty cache, and directly),
``scale`` (100,000 files in 10,000 projects), ``upload`` (200 small files, then one 500 MB file).
Every figure is the median of ``runs`` repetitions with its spread (half the range); ratios are
peer / wheelcave. A scenario a peer cannot do says so in its cell.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks._harness import PeakRss, rss_kib, wrk
from benchmarks.foundation import tiny_wheel
from benchmarks.mirror import REQUIREMENTS, _install, _upstream_url
from tests.support.dists import big_wheel
from benchmarks.peers import CACHE, PEERS, WHEELCAVE_PER_CORE, Peer, Running, Wheelcave, _clean_env, upload_all

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
Cell = list[float] | str  # measurements, or why there are none


def _files(folder: Path, project: str, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = folder / f"{project.replace('-', '_')}-1.{i}-py3-none-any.whl"
        path.write_bytes(tiny_wheel(project, f"1.{i}"))
        out.append(path)
    return out


def _page(server: Running, project: str) -> str:
    return f"{server.simple}{project}/"


def _start_with(peer: Peer, work: Path, files: Path, *, nginx_for_proxy: Running | None = None) -> Running:
    """A server holding ``files``: given as its folder, uploaded, or (proxpi) proxied from nginx."""
    if peer.name == "proxpi":
        assert nginx_for_proxy is not None
        return peer.start(work, upstream=nginx_for_proxy.simple)
    server = peer.start(work, files=files if peer.name in {"pypiserver", "nginx"} else None)
    if isinstance(peer, Wheelcave) or peer.name == "devpi":
        upload_all(server, sorted(f for f in files.iterdir() if not f.name.startswith(".")), tool="http")
    return server


# ---------------------------------------------------------------- scenarios


def _failed(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"failed: {type(exc).__name__}: {text[:160]}"


def hot(work: Path, runs: int, seconds: int) -> dict[str, dict[str, Cell]]:
    files = work / "hot-files"
    _files(files, "bench-hot", 50)
    rows: dict[str, dict[str, Cell]] = {}
    nginx = next(p for p in PEERS if p.name == "nginx").start(work / "hot-nginx-upstream", files=files)
    extra = [WHEELCAVE_PER_CORE] if WHEELCAVE_PER_CORE.workers > 1 else []
    try:
        for peer in [*PEERS, *extra]:
            try:
                server = _start_with(peer, work / f"hot-{peer.name}", files, nginx_for_proxy=nginx)
            except Exception as exc:  # noqa: BLE001
                rows.setdefault("hot page, 1 conn, req/s", {})[peer.name] = _failed(exc)
                continue
            try:
                url = _page(server, "bench-hot")
                assert httpx.get(url, headers={"Accept": PIP_ACCEPT}, timeout=30).status_code == 200, url
                for conns in (1, 32, 50) if peer not in extra else (50,):  # more workers: for the p99 under load
                    results = [wrk(url, connections=conns, seconds=seconds, headers={"Accept": PIP_ACCEPT}) for _ in range(runs)]
                    rows.setdefault(f"hot page, {conns} conn, req/s", {})[peer.name] = [r.rps for r in results]
                    rows.setdefault(f"hot page, {conns} conn, p99 ms", {})[peer.name] = [r.p99_ms for r in results]
            finally:
                server.stop()
    finally:
        nginx.stop()
    return rows


def _warm_set() -> Path:
    """The pinned set, downloaded once for this Python and platform."""
    folder = CACHE / f"warm-set-py{sys.version_info.major}{sys.version_info.minor}"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(folder),
                        "--index-url", _upstream_url(), *REQUIREMENTS], check=True, env=_clean_env())
        (folder / ".complete").touch()
    return folder


def warm(work: Path, runs: int) -> dict[str, dict[str, Cell]]:
    files = _warm_set()
    clean = work / "warm-files"
    clean.mkdir()
    for f in files.iterdir():
        if not f.name.startswith("."):
            os.link(f, clean / f.name)
    rows: dict[str, dict[str, Cell]] = {}
    for tool in ("uv", "pip"):
        floor = []
        for i in range(runs):
            floor.append(_install(tool, f"file://{clean}", work / f"warm-floor-{tool}-{i}", find_links=True)[0])
        rows.setdefault(f"warm install ({tool}), s", {})["find-links floor"] = floor
    nginx = next(p for p in PEERS if p.name == "nginx").start(work / "warm-nginx-upstream", files=clean)
    try:
        for peer in PEERS:
            try:
                server = _start_with(peer, work / f"warm-{peer.name}", clean, nginx_for_proxy=nginx)
            except Exception as exc:  # noqa: BLE001
                for tool in ("uv", "pip"):
                    rows[f"warm install ({tool}), s"][peer.name] = _failed(exc)
                continue
            try:
                if peer.name == "proxpi":  # fill its cache first: "a server that already holds them"
                    _install("uv", server.simple, work / "warm-proxpi-fill")
                for tool in ("uv", "pip"):
                    try:
                        times = [_install(tool, server.simple, work / f"warm-{peer.name}-{tool}-{i}")[0] for i in range(runs)]
                        rows[f"warm install ({tool}), s"][peer.name] = times
                    except Exception as exc:  # noqa: BLE001
                        rows[f"warm install ({tool}), s"][peer.name] = _failed(exc)
            finally:
                server.stop()
    finally:
        nginx.stop()
    return rows


#: A cold install through a proxy that takes longer is reported as failed (the whole run must
#: stay under 30 minutes); direct installs take 1-10 s here, the slowest working peer about 30.
COLD_LIMIT = 60.0


def cold(work: Path, runs: int) -> dict[str, dict[str, Cell]]:
    upstream = _upstream_url()
    rows: dict[str, dict[str, Cell]] = {}
    broken: dict[str, str] = {}  # a proxy that failed with uv is not tried again with pip
    for tool in ("uv", "pip"):
        key = f"cold install via proxy ({tool}), s"
        rows[key] = {"direct from upstream": [_install(tool, upstream, work / f"cold-direct-{tool}-{i}")[0] for i in range(runs)]}
        for peer in PEERS:
            if not peer.proxy:
                rows[key][peer.name] = "cannot: no proxy/cache of an upstream"
                continue
            if peer.name in broken:
                rows[key][peer.name] = f"not tried: failed with uv ({broken[peer.name]})"
                continue
            times: list[float] = []
            try:
                for i in range(runs):
                    server = peer.start(work / f"cold-{peer.name}-{tool}-{i}", upstream=upstream)
                    try:
                        index = str(server.extra.get("proxy_simple", server.simple))
                        times.append(_install(tool, index, work / f"cold-{peer.name}-{tool}-{i}-client", limit=COLD_LIMIT)[0])
                    finally:
                        server.stop()
                rows[key][peer.name] = times
            except Exception as exc:  # noqa: BLE001 - one peer's failure is reported, not fatal
                rows[key][peer.name] = _failed(exc)
                broken[peer.name] = type(exc).__name__
    return rows


async def _insert(database: Path, projects: int, per_project: int) -> None:
    import sqlalchemy as sa

    from wheelcave.db import tables as t
    from wheelcave.db.engine import Database

    db = Database(f"sqlite:///{database}")
    now = datetime.now(UTC)
    async with db.write() as conn:
        index_id = (await conn.execute(sa.select(t.indexes.c.id).where(t.indexes.c.name == "local"))).scalar_one()
        for p in range(projects):
            name = f"scale-{p:05d}"
            project_id = (await conn.execute(sa.insert(t.projects).values(
                index_id=index_id, name=name, display_name=name, created_at=now, updated_at=now))).inserted_primary_key[0]
            rows = []
            for v in range(per_project):
                filename = f"scale_{p:05d}-1.{v}-py3-none-any.whl"
                data = tiny_wheel(name, f"1.{v}")
                rows.append({"index_id": index_id, "project_id": project_id, "filename": filename, "version": f"1.{v}",
                             "kind": "wheel", "python_tag": "py3", "sha256": hashlib.sha256(data).hexdigest(),
                             "size": len(data), "yanked": False, "upload_time": now})
            await conn.execute(sa.insert(t.files), rows)
    await db.dispose()


def scale(work: Path, runs: int) -> dict[str, dict[str, Cell]]:
    """100,000 files in 10,000 projects: start-up, idle RSS, root listing and a project page."""
    projects, per_project = 10_000, 10
    folder = CACHE / "scale-set"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for p in range(projects):
            name = f"scale-{p:05d}"
            for v in range(per_project):
                (folder / f"scale_{p:05d}-1.{v}-py3-none-any.whl").write_bytes(tiny_wheel(name, f"1.{v}"))
        (folder / ".complete").touch()
    files = work / "scale-files"
    files.mkdir()
    for f in folder.iterdir():
        if not f.name.startswith("."):
            os.link(f, files / f.name)
    rows: dict[str, dict[str, Cell]] = {}
    for peer in PEERS:
        if peer.name in {"devpi", "proxpi"}:
            why = "not measured: 100,000 uploads take hours" if peer.name == "devpi" else "cannot: proxy only"
            for key in ("scale: start-up, s", "scale: idle RSS, MiB", "scale: /simple/ root, ms", "scale: project page, ms"):
                rows.setdefault(key, {})[peer.name] = why
            continue
        startups, rsss, roots, pages = [], [], [], []
        try:
            _scale_runs(peer, work, runs, files, projects, per_project, startups, rsss, roots, pages)
        except Exception as exc:  # noqa: BLE001
            for key in ("scale: start-up, s", "scale: idle RSS, MiB", "scale: /simple/ root, ms", "scale: project page, ms"):
                rows.setdefault(key, {})[peer.name] = _failed(exc)
            continue
        rows.setdefault("scale: start-up, s", {})[peer.name] = startups or "static files: no start-up work"
        rows.setdefault("scale: idle RSS, MiB", {})[peer.name] = rsss
        rows.setdefault("scale: /simple/ root, ms", {})[peer.name] = roots
        rows.setdefault("scale: project page, ms", {})[peer.name] = pages
    return rows


def _scale_runs(peer: Peer, work: Path, runs: int, files: Path, projects: int, per_project: int,
                startups: list[float], rsss: list[float], roots: list[float], pages: list[float]) -> None:
    template = work / f"scale-{peer.name}-filled"
    if peer.name == "wheelcave":
        first = peer.start(template)  # create the data folder, then fill its database once
        first.stop()
        asyncio.run(_insert(template / "wheelcave-data" / "wheelcave.db", projects, per_project))
        # rows only: the blobs are not needed to list pages (this server has no import command yet)
    for i in range(runs):
        run_dir = work / f"scale-{peer.name}-{i}"
        if peer.name == "wheelcave":
            shutil.copytree(template, run_dir)  # each run starts on its own copy
        else:
            run_dir = work / f"scale-{peer.name}"  # its folder or tree, made once and served by each run
        server = peer.start(run_dir, files=files)
        try:
            if peer.name != "nginx":
                startups.append(float(server.extra["ready_s"]))
            time.sleep(2)
            rsss.append(rss_kib(server.pid) / 1024)
            with httpx.Client(timeout=120) as client:
                t0 = time.perf_counter()
                client.get(server.simple, headers={"Accept": PIP_ACCEPT}).raise_for_status()
                roots.append((time.perf_counter() - t0) * 1000)
                page = _page(server, "scale-04321")
                client.get(page, headers={"Accept": PIP_ACCEPT}).raise_for_status()
                lat: list[float] = []
                deadline = time.perf_counter() + 10
                while len(lat) < 20 and (len(lat) < 3 or time.perf_counter() < deadline):
                    t0 = time.perf_counter()  # 20 requests, or at least 3 within about 10 s
                    client.get(page, headers={"Accept": PIP_ACCEPT})
                    lat.append((time.perf_counter() - t0) * 1000)
                pages.append(statistics.median(lat))
        finally:
            server.stop()


def upload(work: Path, runs: int) -> dict[str, dict[str, Cell]]:
    small = _files(work / "upload-small", "bench-up", 200)
    big = big_wheel(work, 500)
    rows: dict[str, dict[str, Cell]] = {}
    for peer in PEERS:
        if not peer.upload:
            for key in ("upload 200 small files (twine), s", "upload 500 MB, s", "upload 500 MB, server RSS growth MiB"):
                rows.setdefault(key, {})[peer.name] = "cannot: takes no uploads"
            continue
        smalls, bigs, growth = [], [], []
        for i in range(runs):
            server = peer.start(work / f"upload-{peer.name}-{i}")
            try:
                smalls.append(upload_all(server, small))
                baseline = rss_kib(server.pid)
                with PeakRss(server.pid) as peak:
                    bigs.append(upload_all(server, [big]))
                growth.append((peak.peak - baseline) / 1024)
            finally:
                server.stop()
        rows.setdefault("upload 200 small files (twine), s", {})[peer.name] = smalls
        rows.setdefault("upload 500 MB, s", {})[peer.name] = bigs
        rows.setdefault("upload 500 MB, server RSS growth MiB", {})[peer.name] = growth
    return rows


SCENARIOS: dict[str, Callable[..., dict[str, dict[str, Cell]]]] = {
    "hot": hot, "warm": warm, "cold": cold, "scale": scale, "upload": upload,
}


# ---------------------------------------------------------------- report


def _cell(values: Cell, reference: Cell | None) -> str:
    if isinstance(values, str):
        return values
    if not values:
        return "n/a"
    median = statistics.median(values)
    spread = (max(values) - min(values)) / 2
    text = f"{median:,.1f} ±{spread:,.1f}" if median < 100 else f"{median:,.0f} ±{spread:,.0f}"
    if isinstance(reference, list) and reference and statistics.median(reference):
        text += f" ({median / statistics.median(reference):.2f}x)"
    return text


def report(rows: dict[str, dict[str, Cell]], runs: int, seconds: int, elapsed: float,
           durations: dict[str, float] | None = None) -> str:
    servers: list[str] = []
    for cells in rows.values():
        for name in cells:
            if name not in servers:
                servers.append(name)
    servers.sort(key=lambda n: (n != "wheelcave", n))
    lines = [
        f"# wheelcave and its peers, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {sys.version.split()[0]}; loads by wrk on the same machine ({seconds} s each); "
        f"every figure the median of {runs} runs ± half their range; (Nx) = that server / wheelcave. "
        f"The whole run took {elapsed / 60:.1f} min.",
        "",
        "| scenario | " + " | ".join(servers) + " |",
        "|---|" + "---|" * len(servers),
    ]
    for scenario, cells in rows.items():
        reference = cells.get("wheelcave")
        lines.append(f"| {scenario} | " + " | ".join(
            _cell(cells.get(s, "n/a"), reference if s != "wheelcave" else None) for s in servers) + " |")
    if durations:
        lines += ["", "Time per scenario: " + ", ".join(f"{n} {d / 60:.1f} min" for n, d in durations.items()) + "."]
    return "\n".join(lines) + "\n"


def main(names: list[str], runs: int = 3, seconds: int = 10, progress: Callable[[str], None] | None = None) -> str:
    """Run the scenarios; ``progress`` gets the table so far after each one (a crash or a
    time-out later loses nothing measured)."""
    for peer in PEERS:
        peer.install()
    started = time.perf_counter()
    rows: dict[str, dict[str, Cell]] = {}
    durations: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="wheelcave-peers-") as tmp:
        for name in names or list(SCENARIOS):
            work = Path(tmp) / name
            work.mkdir()
            func = SCENARIOS[name]
            begun = time.perf_counter()
            try:
                rows.update(func(work, runs, seconds) if name == "hot" else func(work, runs))
            except Exception as exc:  # noqa: BLE001 - a broken scenario is reported, the others run
                rows[f"{name}: scenario failed"] = {"wheelcave": _failed(exc)}
            durations[name] = time.perf_counter() - begun
            if progress is not None:
                progress(report(rows, runs, seconds, time.perf_counter() - started, durations))
    return report(rows, runs, seconds, time.perf_counter() - started, durations)
