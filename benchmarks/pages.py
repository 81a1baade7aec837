"""The web pages (issue 12): server time of a project page with 1,000 files (the first answer
and the next ones), of the home page and of searches, with 100,000 projects imported, one wheel
each with a summary, plus the 1,000-file project (``WHEELCAVE_BENCH_PROJECTS`` scales it; the
goals name 10,000 projects for the home page and 100,000 for search, so the home page is measured
at ten times its goal's size). Median of 20 requests each, over one kept-alive connection on
loopback, next to ``/health`` (the floor: one request through the same stack)."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks._harness import BIN, start_wheelcave
from benchmarks.foundation import tiny_wheel

_ADJECTIVES = ["fast", "simple", "async", "typed", "small", "modern", "robust", "pure", "lazy", "safe", "tiny",
               "portable", "secure", "minimal", "parallel", "streaming", "declarative", "friendly"]
_NOUNS = ["parser", "client", "framework", "toolkit", "library", "wrapper", "server", "validator", "scheduler",
          "renderer", "cache", "queue", "logger", "formatter", "linter", "binding", "adapter", "driver", "plugin"]
_TOPICS = ["JSON", "HTTP", "SQL", "YAML", "images", "audio", "dates", "money", "graphs", "maps", "PDF files",
           "email", "markdown", "CSV", "time zones", "units", "colours", "fonts", "archives", "tests", "shells",
           "clouds", "sensors", "robots", "genomes"]


def summary_for(i: int) -> str:
    return (f"A {_ADJECTIVES[i % len(_ADJECTIVES)]} {_NOUNS[(i // 7) % len(_NOUNS)]} "
            f"for {_TOPICS[(i // 31) % len(_TOPICS)]}")


def _wheel(name: str, version: str, summary: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    pkg = name.replace("-", "_")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{pkg}/__init__.py", "")
        zf.writestr(f"{pkg}-{version}.dist-info/METADATA",
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n")
        zf.writestr(f"{pkg}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{pkg}-{version}.dist-info/RECORD", "")
    return buf.getvalue()


def _median_ms(client: httpx.Client, url: str, runs: int = 20) -> tuple[float, float]:
    """(first answer, median of the next ``runs``) in ms."""
    start = time.perf_counter()
    client.get(url).raise_for_status()
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(times)


def main(projects: int | None = None) -> str:
    projects = projects or int(os.environ.get("WHEELCAVE_BENCH_PROJECTS", "100000"))
    count = projects + 1000
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "src"
        src.mkdir()
        for i in range(projects):
            (src / f"page{i}-1.0-py3-none-any.whl").write_bytes(_wheel(f"page{i}", "1.0", summary_for(i)))
        for i in range(1000):  # one project of 1,000 files
            (src / f"bigpage-1.{i}-py3-none-any.whl").write_bytes(tiny_wheel("bigpage", f"1.{i}"))
        data = tmp / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELCAVE_"))}
        subprocess.run([str(BIN / "wheelcave"), "import", "local", str(src), "-q", "--data-dir", str(data)],
                       env=env, check=True)
        server = start_wheelcave(data, env={"PIP_CONFIG_FILE": os.devnull})
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                # Warm the process (templates compiled, the README renderer imported) on another
                # project: "first" below is a page not yet cached, not a process's first request.
                client.get("/index/local/project/page1/").raise_for_status()
                rows = [("/health (floor)", *_median_ms(client, "/health")),
                        ("project page, 1,000 files", *_median_ms(client, "/index/local/project/bigpage/")),
                        (f"home page, {projects:,} projects", *_median_ms(client, "/")),
                        (f"search over {projects:,} projects: page12 (a name prefix)",
                         *_median_ms(client, "/search?q=page12")),
                        ("search: page31337 (one name)", *_median_ms(client, "/search?q=page31337")),
                        ("search: async parser json (summary words)", *_median_ms(client, "/search?q=async+parser+json")),
                        ("search: client (a word in 1 of 19 summaries)", *_median_ms(client, "/search?q=client")),
                        ("search: a (a prefix of most words)", *_median_ms(client, "/search?q=a")),
                        ("API search: client", *_median_ms(client, "/api/v1/search?q=client")),
                        ("index page (2,000 projects shown)", *_median_ms(client, "/index/local/"))]
        finally:
            server.stop()
    lines = [f"# wheelcave pages, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {os.cpu_count()} cores; {count:,} files in {projects:,} projects.", "",
             "| page | first answer | then (median of 20) | goal |", "|---|---|---|---|"]
    goals = {"project page, 1,000 files": "< 50 ms first, < 5 ms then", "home page": "< 20 ms (10,000 projects)",
             "search": "< 50 ms", "API search": "< 50 ms"}
    for name, first, then in rows:
        goal = next((g for k, g in goals.items() if name.startswith(k)), "")
        lines.append(f"| {name} | {first:.1f} ms | {then:.1f} ms | {goal} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else None))
