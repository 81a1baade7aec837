"""What durability costs (issue 10): 200 small uploads (the legacy API, one at a time, as twine
sends them) with SQLite's ``synchronous = full`` (the default: an acknowledged upload survives a
power loss) against ``normal`` (the last commits may be lost to one), blobs fsynced in both."""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks._harness import start_wheelcave
from benchmarks.foundation import tiny_wheel


def _uploads(mode: str, count: int) -> float:
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp:
        data = Path(tmp) / "data"
        server = start_wheelcave(data, env={"PIP_CONFIG_FILE": os.devnull, "WHEELCAVE_DATABASE_SQLITE_SYNCHRONOUS": mode})
        try:
            auth = ("admin", (data / "initial-admin-password").read_text().strip())
            with httpx.Client(timeout=60) as client:
                token = client.post(f"{server.url}/api/v1/tokens", json={}, auth=auth).json()["token"]
                wheels = [(f"durable-1.{i}-py3-none-any.whl", tiny_wheel("durable", f"1.{i}")) for i in range(count)]
                start = time.perf_counter()
                for name, wheel in wheels:
                    client.post(f"{server.url}/legacy/", auth=("__token__", token), files={"content": (name, wheel)}, data={
                        ":action": "file_upload", "protocol_version": "1", "name": "durable", "version": name.split("-")[1],
                        "filetype": "bdist_wheel", "pyversion": "py3",
                        "sha256_digest": hashlib.sha256(wheel).hexdigest()}).raise_for_status()
                return time.perf_counter() - start
        finally:
            server.stop()


def main(runs: int = 3, count: int = 200) -> str:
    results = {mode: [_uploads(mode, count) for _ in range(runs)] for mode in ("normal", "full")}
    full, normal = statistics.median(results["full"]), statistics.median(results["normal"])
    return "\n".join([
        f"# wheelcave durability benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
        f"Machine: {os.cpu_count()} cores; {count} small uploads one at a time, median of {runs} runs; blobs fsynced in both.", "",
        "| SQLite synchronous | 200 uploads | per upload |", "|---|---|---|",
        f"| normal | {normal:.2f} s | {normal / count * 1000:.1f} ms |",
        f"| full (default) | {full:.2f} s | {full / count * 1000:.1f} ms |",
        "", f"Cost of full: {full / normal:.2f}x.", "",
    ])
