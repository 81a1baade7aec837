"""The web pages (issue 12): server time of a project page with 1,000 files (the first answer
and the next ones), of the home page and of a search, with 10,000 projects and 100,000 files
imported (``WHEELCAVE_BENCH_FILES`` scales it). Median of 20 requests each, over one kept-alive
connection on loopback, next to ``/health`` (the floor: one request through the same stack)."""

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


def main(files: int | None = None) -> str:
    count = files or int(os.environ.get("WHEELCAVE_BENCH_FILES", "100000"))
    projects = max(1, count // 10)
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "src"
        src.mkdir()
        for i in range(count - 1000):
            project, version = f"page{i % projects}", f"1.{i // projects}"
            (src / f"{project}-{version}-py3-none-any.whl").write_bytes(tiny_wheel(project, version))
        for i in range(1000):  # one project of 1,000 files
            (src / f"bigpage-1.{i}-py3-none-any.whl").write_bytes(tiny_wheel("bigpage", f"1.{i}"))
        data = tmp / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELCAVE_"))}
        subprocess.run([str(BIN / "wheelcave"), "import", "local", str(src), "-q", "--data-dir", str(data)],
                       env=env, check=True)
        server = start_wheelcave(data, env={"PIP_CONFIG_FILE": os.devnull})
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                rows = [("/health (floor)", *_median_ms(client, "/health")),
                        ("project page, 1,000 files", *_median_ms(client, "/index/local/project/bigpage/")),
                        (f"home page, {projects:,} projects", *_median_ms(client, "/")),
                        (f"search over {projects:,} projects", *_median_ms(client, "/search?q=page12")),
                        ("index page (2,000 projects shown)", *_median_ms(client, "/index/local/"))]
        finally:
            server.stop()
    lines = [f"# wheelcave pages, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {os.cpu_count()} cores; {count:,} files in {projects:,} projects.", "",
             "| page | first answer | then (median of 20) | goal |", "|---|---|---|---|"]
    goals = {"project page, 1,000 files": "< 50 ms first, < 5 ms then", "home page": "< 20 ms", "search": "< 50 ms"}
    for name, first, then in rows:
        goal = next((g for k, g in goals.items() if name.startswith(k)), "")
        lines.append(f"| {name} | {first:.1f} ms | {then:.1f} ms | {goal} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else None))
