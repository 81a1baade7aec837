"""Index kinds benchmark (issue #4): a virtual page over 3 hosted members with 200 files in
all against a hosted page with the same 200 files (target: within 1.5x, req/s, same run)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks._harness import BIN, start_wheelcave, wrk
from benchmarks.foundation import JSON, _fmt_load, tiny_wheel, upload


def main(seconds: int = 10) -> str:
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp:
        data = Path(tmp) / "data"
        server = start_wheelcave(data, env={"PIP_CONFIG_FILE": os.devnull})
        try:
            def cli(*args: str) -> None:
                subprocess.run([str(BIN / "wheelcave"), *args, "--data-dir", str(data)], check=True, capture_output=True)

            for name in ("m1", "m2", "m3"):
                cli("index", "create", name, "--kind", "hosted")
            cli("index", "create", "merged", "--kind", "virtual", "--members", "m1,m2,m3")
            auth = ("admin", (data / "initial-admin-password").read_text().strip())
            import time

            time.sleep(0.6)
            with httpx.Client() as client:
                for i in range(200):
                    data_v = tiny_wheel("vbench", f"1.{i}")
                    member = ("m1", "m2", "m3")[i % 3]
                    client.post(f"{server.url}/index/{member}/", auth=auth, data={
                        ":action": "file_upload", "protocol_version": "1", "name": "vbench", "version": f"1.{i}",
                        "filetype": "bdist_wheel", "pyversion": "py3", "sha256_digest": hashlib.sha256(data_v).hexdigest()},
                        files={"content": (f"vbench-1.{i}-py3-none-any.whl", data_v)}).raise_for_status()
                    data_h = tiny_wheel("hbench", f"1.{i}")
                    upload(client, server.url, auth, f"hbench-1.{i}-py3-none-any.whl", data_h, hashlib.sha256(data_h).hexdigest())
            rows = []
            for conns in (1, 32):
                hosted = wrk(f"{server.url}/index/local/simple/hbench/", connections=conns, seconds=seconds, headers={"Accept": JSON})
                virtual = wrk(f"{server.url}/index/merged/simple/vbench/", connections=conns, seconds=seconds, headers={"Accept": JSON})
                rows.append((conns, hosted, virtual))
        finally:
            server.stop()
    lines = [f"# wheelcave index kinds benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {os.cpu_count()} cores; wrk on the same machine, {seconds} s each; JSON pages of 200 files.", "",
             "| connections | hosted page | virtual page (3 members) | hosted / virtual (target ≤ 1.5) |", "|---|---|---|---|"]
    for conns, hosted, virtual in rows:
        lines.append(f"| {conns} | {_fmt_load(hosted)} | {_fmt_load(virtual)} | {hosted.rps / virtual.rps:.2f} |")
    return "\n".join(lines) + "\n"
