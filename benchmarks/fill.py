"""Fill and ship (issue 11): ``wheelcave import`` of N small wheels against ``cp -r`` of the
same folder (and devpi's import, measured at 360 s for 100,000 files on this kind of
machine), a full ``wheelcave export`` against dumb-pypi generating the same tree, and a
partial export after one more upload.

``WHEELCAVE_BENCH_FILES`` sets N (default 100,000; generating them takes about a minute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._harness import BIN
from benchmarks.foundation import tiny_wheel
from benchmarks.peers import tool_venv

DEVPI_IMPORT_100K = 360.0  # seconds, the measurement of devpi-import on this kind of machine


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELCAVE_"))}
    env["WHEELCAVE_DATA_DIR"] = str(data)
    return env


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main(files: int | None = None) -> str:
    count = files or int(os.environ.get("WHEELCAVE_BENCH_FILES", "100000"))
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "src"
        src.mkdir()
        for i in range(count):
            project, version = f"fill{i % (count // 10 or 1)}", f"1.{i // (count // 10 or 1)}"
            (src / f"{project}-{version}-py3-none-any.whl").write_bytes(tiny_wheel(project, version))
        subprocess.run(["sync"], check=True)
        cp = _timed(["cp", "-r", str(src), str(tmp / "copy")])
        data = tmp / "data"
        env = _env(data)
        wheelcave = str(BIN / "wheelcave")
        subprocess.run([wheelcave, "index", "create", "bench", "--kind", "hosted"], env=env, check=True, capture_output=True)
        imported = _timed([wheelcave, "import", "bench", str(src), "-q"], env)
        again = _timed([wheelcave, "import", "bench", str(src), "-q"], env)
        full = _timed([wheelcave, "export", "bench", "-o", str(tmp / "tree")], env)
        extra = tmp / "one"
        extra.mkdir()
        (extra / "fill0-9.0-py3-none-any.whl").write_bytes(tiny_wheel("fill0", "9.0"))
        subprocess.run([wheelcave, "import", "bench", str(extra), "-q"], env=env, check=True)
        partial = _timed([wheelcave, "export", "bench", "-o", str(tmp / "tree")], env)
        startup = min(_timed([wheelcave, "version"], env) for _ in range(3))
        url_mode = _timed([wheelcave, "export", "bench", "-o", str(tmp / "tree-url"), "--files", "url=https://files.example/"], env)
        bin_dir = tool_venv("dumb-pypi", "dumb-pypi")
        listing = tmp / "packages.txt"
        listing.write_text("".join(f"{p.name}\n" for p in sorted(src.iterdir())))
        dumb = _timed([str(bin_dir / "dumb-pypi"), "--package-list", str(listing), "--packages-url", "../../pool/",
                       "--output-dir", str(tmp / "dumb")])
        shutil.rmtree(tmp / "copy", ignore_errors=True)
    scale = count / 100_000
    lines = [
        f"# wheelcave fill and ship, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
        f"Machine: {os.cpu_count()} cores. {count:,} small wheels ({count // 10:,} projects).", "",
        "| step | wheelcave | reference | ratio |", "|---|---|---|---|",
        f"| import (checked, stored, listed) | {imported:.1f} s | cp -r {cp:.1f} s | {imported / cp:.1f}x (target ≤ 3x) |",
        f"| import vs devpi-import | {imported:.1f} s | devpi {DEVPI_IMPORT_100K * scale:.0f} s (360 s per 100,000, scaled) "
        f"| {DEVPI_IMPORT_100K * scale / imported:.1f}x faster (target ≥ 10x) |",
        f"| import again (nothing new) | {again:.1f} s | | |",
        f"| full export (files copied) | {full:.1f} s | dumb-pypi {dumb:.1f} s | {full / dumb:.2f}x (target < 1) |",
        f"| full export, files left where they are (url=, as dumb-pypi) | {url_mode:.1f} s | dumb-pypi {dumb:.1f} s "
        f"| {url_mode / dumb:.2f}x |",
        f"| partial export after one upload | {partial:.2f} s (of which {startup:.2f} s starting the CLI) | | target < 1 s |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else None))
