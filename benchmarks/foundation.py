"""Foundation benchmark (issue #2): hot simple page, freshness after upload, a 5,000-file
project, and server memory during a 500 MB upload.

Run: ``scripts/bench foundation`` (or ``.venv/bin/python -m benchmarks run foundation``).
Every load targets 127.0.0.1, bounded in time (wrk ``-d``) and count. The hot-page figures
come with a reference in the same run: uvicorn answering the same bytes from a bare ASGI app,
i.e. the ceiling for any Python server on this machine; the ratio is what wheelcave's
routing, negotiation and cache cost on top.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import statistics
import subprocess
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks._harness import BIN, PeakRss, Proc, rss_kib, start_reference, start_wheelcave, wrk
from tests.support.dists import big_wheel

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"


def tiny_wheel(name: str, version: str) -> bytes:
    pkg = name.replace("-", "_")
    dist_info = f"{pkg}-{version}.dist-info"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{pkg}/__init__.py", "")
        zf.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist_info}/RECORD", "")
    return buf.getvalue()


def upload(client: httpx.Client, url: str, auth: tuple[str, str], filename: str, content: bytes | io.BufferedReader, sha256: str) -> None:
    name, version = filename.split("-")[:2]
    fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
              "filetype": "bdist_wheel", "pyversion": "py3", "sha256_digest": sha256}
    r = client.post(f"{url}/legacy/", data=fields, files={"content": (filename, content)}, auth=auth, timeout=600)
    r.raise_for_status()


def hot_page(server: Proc, auth: tuple[str, str], seconds: int) -> list[dict[str, object]]:
    with httpx.Client() as client:
        for i in range(50):
            filename = f"bench_hot-1.{i}-py3-none-any.whl"
            data = tiny_wheel("bench-hot", f"1.{i}")
            upload(client, server.url, auth, filename, data, hashlib.sha256(data).hexdigest())
        page_url = f"{server.url}/simple/bench-hot/"
        bodies = {fmt: client.get(page_url, headers={"Accept": fmt}).content for fmt in (HTML, JSON)}
    rows: list[dict[str, object]] = []
    for fmt, label in ((HTML, "HTML"), (JSON, "JSON")):
        ref = start_reference(bodies[fmt], fmt)
        try:
            for conns in (1, 32):
                ours = wrk(page_url, connections=conns, seconds=seconds, headers={"Accept": fmt})
                floor = wrk(ref.url + "/", connections=conns, seconds=seconds, headers={"Accept": fmt})
                rows.append({"format": label, "connections": conns, "wheelcave": ours, "reference": floor})
        finally:
            ref.stop()
    return rows


def freshness(server: Proc, auth: tuple[str, str]) -> float:
    """Seconds from an upload's 200 to the page listing the file (same server)."""
    with httpx.Client() as client:
        url = f"{server.url}/simple/bench-hot/"
        client.get(url, headers={"Accept": JSON})
        data = tiny_wheel("bench-hot", "9.0")
        upload(client, server.url, auth, "bench_hot-9.0-py3-none-any.whl", data, hashlib.sha256(data).hexdigest())
        done = time.perf_counter()
        while "bench_hot-9.0" not in client.get(url, headers={"Accept": JSON}).text:
            if time.perf_counter() - done > 10:
                return float("inf")
        return time.perf_counter() - done


async def _insert_many(database: Path, count: int) -> None:
    """Rows for a project with ``count`` files, inserted directly (the page needs no blobs)."""
    from wheelcave.db import tables as t
    from wheelcave.db.engine import Database

    db = Database(f"sqlite:///{database}")
    now = datetime.now(UTC)
    async with db.write() as conn:
        index_id = (await conn.execute(sa.select(t.indexes.c.id).where(t.indexes.c.name == "local"))).scalar_one()
        result = await conn.execute(sa.insert(t.projects).values(
            index_id=index_id, name="bench-many", display_name="bench-many", created_at=now, updated_at=now))
        project_id = result.inserted_primary_key[0]  # type: ignore[index]
        rows = []
        for i in range(count):
            version = f"{i // 100}.{i % 100}"
            filename = f"bench_many-{version}-py3-none-any.whl"
            sha = hashlib.sha256(filename.encode()).hexdigest()
            rows.append({
                "index_id": index_id, "project_id": project_id, "filename": filename, "version": version,
                "kind": "wheel", "python_tag": "py3", "sha256": sha, "md5": None, "blake2b_256": None,
                "size": 1234, "requires_python": ">=3.8", "yanked": False, "yanked_reason": None,
                "upload_time": now, "uploader": "bench", "metadata_sha256": sha, "core_metadata": None,
            })
        await conn.execute(sa.insert(t.files), rows)
        await conn.execute(sa.update(t.indexes).where(t.indexes.c.id == index_id)
                           .values(generation=t.indexes.c.generation + 1))
    await db.dispose()


def many_files(server: Proc, data_dir: Path, count: int = 5000) -> dict[str, float]:
    asyncio.run(_insert_many(data_dir / "wheelcave.db", count))
    time.sleep(0.6)  # let the server's registry see the new generation
    url = f"{server.url}/simple/bench-many/"
    out: dict[str, float] = {}
    with httpx.Client() as client:
        for fmt, label in ((JSON, "json"), (HTML, "html")):
            start = time.perf_counter()
            r = client.get(url, headers={"Accept": fmt})
            out[f"first_{label}_ms"] = (time.perf_counter() - start) * 1000
            assert r.status_code == 200 and r.text.count("bench_many-") >= count
            warm = []
            for _ in range(50):
                start = time.perf_counter()
                client.get(url, headers={"Accept": fmt})
                warm.append((time.perf_counter() - start) * 1000)
            out[f"warm_{label}_ms"] = statistics.median(warm)
        out["size_kib"] = len(r.content) / 1024
    return out


def big_upload(server: Proc, auth: tuple[str, str], workdir: Path, size_mb: int = 500) -> dict[str, float]:
    path = big_wheel(workdir, size_mb)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    baseline = rss_kib(server.proc.pid)
    with PeakRss(server.proc.pid) as peak, httpx.Client() as client, path.open("rb") as fh:
        start = time.perf_counter()
        upload(client, server.url, auth, path.name, fh, digest.hexdigest())
        elapsed = time.perf_counter() - start
    size = path.stat().st_size
    path.unlink()
    return {"size_mb": size / 2**20, "seconds": elapsed, "mb_per_s": size / 2**20 / elapsed,
            "baseline_rss_mb": baseline / 1024, "peak_rss_growth_mb": (peak.peak - baseline) / 1024}


def password_check_rss(server: Proc, auth: tuple[str, str]) -> float:
    """Peak RSS growth of one password-authenticated request (argon2id verification)."""
    baseline = rss_kib(server.proc.pid)
    with PeakRss(server.proc.pid) as peak, httpx.Client() as client:
        client.post(f"{server.url}/legacy/", data={}, auth=auth)
        time.sleep(0.1)
    return (peak.peak - baseline) / 1024


def _fmt_load(r: object) -> str:
    return f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms" + (f", {r.errors} errors" if r.errors else "")  # type: ignore[attr-defined]


def report(hot: list[dict[str, object]], fresh: float, many: dict[str, float], big: dict[str, float], seconds: int) -> str:
    lines = [
        f"# wheelcave foundation benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores; loads by wrk on the same machine, {seconds} s each.",
        "",
        "## Hot project page (50 files)",
        "",
        "| format | connections | wheelcave | reference (bare uvicorn, same bytes) | ratio |",
        "|---|---|---|---|---|",
    ]
    for row in hot:
        ours, ref = row["wheelcave"], row["reference"]
        ratio = ours.rps / ref.rps if ref.rps else 0  # type: ignore[attr-defined]
        lines.append(f"| {row['format']} | {row['connections']} | {_fmt_load(ours)} | {_fmt_load(ref)} | {ratio:.2f} |")
    lines += [
        "",
        "## Freshness",
        "",
        f"An upload shows on the (cached) page {fresh * 1000:.1f} ms after its 200 (target: under 1 s).",
        "",
        "## Project with 5,000 files",
        "",
        f"First render: JSON {many['first_json_ms']:.1f} ms, HTML {many['first_html_ms']:.1f} ms (target: under 150 ms); "
        f"then from the cache: JSON {many['warm_json_ms']:.2f} ms, HTML {many['warm_html_ms']:.2f} ms (median of 50); "
        f"page size {many['size_kib']:.0f} KiB.",
        "",
        "## 500 MB upload",
        "",
        f"{big['size_mb']:.0f} MiB in {big['seconds']:.1f} s ({big['mb_per_s']:.0f} MiB/s), on a freshly started server; "
        f"server RSS {big['baseline_rss_mb']:.0f} MiB before, peak growth {big['peak_rss_growth_mb']:.1f} MiB "
        f"(sampled every 20 ms, token auth; target: under 64 MiB). One password check (argon2id) "
        f"adds {big['argon2_rss_mb']:.0f} MiB for its duration; successful checks are remembered "
        "for a minute.",
        "",
    ]
    return "\n".join(lines)


def main(seconds: int = 10) -> str:
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp:
        work = Path(tmp)
        data = work / "data"
        server = start_wheelcave(data)
        try:
            auth = ("admin", (data / "initial-admin-password").read_text().strip())
            # Uploads authenticate with an API token, as CI does: a password check is argon2id
            # with 64 MiB of memory (argon2-cffi's default), which would hide what the upload
            # itself costs. That one-off cost is measured separately below.
            token = subprocess.run(
                [str(BIN / "wheelcave"), "token", "create", "--user", "admin", "--data-dir", str(data)],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            big = big_upload(server, ("__token__", token), work)  # first, on a fresh server
            big["argon2_rss_mb"] = password_check_rss(server, auth)
            hot = hot_page(server, auth, seconds)
            fresh = freshness(server, auth)
            many = many_files(server, data)
        finally:
            server.stop()
    return report(hot, fresh, many, big, seconds)
