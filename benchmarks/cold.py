"""Cold resolutions through a fresh mirror (issue 13), against going straight to the upstream,
in one run: ``uv pip compile`` of a jupyterlab-sized closure, then cold ``uv pip install`` and
``pip install`` of the mirror benchmark's requirements. Each measurement gets a fresh client
cache and (through wheelcave) a fresh server; the upstream is the live public index, its URL read
from pip's configuration at run time. Also: the bytes wheelcave fetched from the upstream for the
compile (whole files and the parts of wheels read with Range), against the size of the wheels the
resolution pinned (for this machine's Python and platform).

Beside them, the floor: the same resolutions through a bare Python relay (:mod:`benchmarks.relay`,
uvicorn passing pages and bytes through, storing and checking nothing). Where the relay meets a
goal and wheelcave does not, the difference is wheelcave's own work (parsing, storing, hashing,
reading metadata), not Python's HTTP.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

from benchmarks._harness import BIN, cpu_seconds, start_relay, start_wheelcave
from benchmarks.mirror import _client_env, _install, _upstream_url

COMPILE = ["jupyterlab==4.2.5"]
_BYTES = re.compile(r'wheelcave_mirror_file_bytes_total\{index="pypi",source="(upstream|range)"\} ([0-9.e+]+)')


def _compile(index: str, tmp: Path) -> tuple[float, list[str]]:
    (tmp / "req.in").parent.mkdir(parents=True, exist_ok=True)
    (tmp / "req.in").write_text("\n".join(COMPILE) + "\n")
    env = _client_env(tmp)
    start = time.perf_counter()
    result = subprocess.run([str(BIN / "uv"), "pip", "compile", "--no-header", "--index-url", index, str(tmp / "req.in")],
                            env=env, capture_output=True, text=True, timeout=600)
    if result.returncode:
        raise RuntimeError(f"uv pip compile from {index} failed: {result.stderr[-1500:]}")
    pins = [line.split("==") for line in result.stdout.splitlines() if "==" in line and not line.startswith(" ")]
    return time.perf_counter() - start, [f"{n.strip()}=={v.split()[0]}" for n, v in pins]


def _wheel_bytes(base: str, pins: list[str]) -> int:
    """The size of the wheel of each pin this interpreter would install (the first supported)."""
    supported = list(sys_tags())
    rank = {t: i for i, t in enumerate(supported)}
    total = 0
    with httpx.Client(timeout=60) as client:
        for pin in pins:
            name, version = pin.split("==")
            page = client.get(f"{base}{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
            best: tuple[int, int] | None = None
            for f in page["files"]:
                if not f["filename"].endswith(".whl"):
                    continue
                _, v, _, tags = parse_wheel_filename(f["filename"])
                if str(v) != version:
                    continue
                score = min((rank[t] for t in tags if t in rank), default=None)
                if score is not None and (best is None or score < best[0]):
                    best = (score, int(f.get("size") or 0))
            total += best[1] if best else 0
    return total


def _through_relay(upstream: str, resolve: Callable[[str], float], into: dict[str, list[float]] | None = None) -> float:
    """Seconds ``resolve`` takes through a fresh bare relay of the upstream (its CPU into ``into``)."""
    relay = start_relay(upstream)
    try:
        before = cpu_seconds(relay.proc.pid)
        seconds = resolve(f"{relay.url}/simple/")
        if into is not None:
            into.setdefault("relay_cpu", []).append(cpu_seconds(relay.proc.pid) - before)
        return seconds
    finally:
        relay.stop()


def main(runs: int = 1) -> str:
    upstream = _upstream_url()
    labels = ("uv pip compile (jupyterlab)", "uv pip install", "pip install", "pip install, public_url set")
    rows: dict[str, dict[str, list[float]]] = {label: {"direct": [], "cold": [], "cpu": [], "relay": []} for label in labels}
    fetched = resolved = 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as name:
            tmp = Path(name)
            rows["uv pip compile (jupyterlab)"]["direct"].append(_compile(upstream, tmp / "c-direct")[0])
            server = start_wheelcave(tmp / "data-c", env={"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": upstream})
            try:
                before = cpu_seconds(server.proc.pid)
                elapsed, pins = _compile(f"{server.url}/simple/", tmp / "c-cold")
                rows["uv pip compile (jupyterlab)"]["cold"].append(elapsed)
                rows["uv pip compile (jupyterlab)"]["cpu"].append(cpu_seconds(server.proc.pid) - before)
                fetched = sum(int(float(v)) for _, v in _BYTES.findall(httpx.get(f"{server.url}/metrics").text))
                resolved = _wheel_bytes(f"{server.url}/simple/", pins)
            finally:
                server.stop()
            rows["uv pip compile (jupyterlab)"]["relay"].append(_through_relay(
                upstream, lambda url, tmp=tmp: _compile(url, tmp / "c-relay")[0], rows["uv pip compile (jupyterlab)"]))
            for tool in ("uv", "pip"):
                label = "uv pip install" if tool == "uv" else "pip install"
                direct = _install(tool, upstream, tmp / f"{tool}-direct")[0]
                rows[label]["direct"].append(direct)
                rows[label]["relay"].append(_through_relay(
                    upstream, lambda url, t=tool, tmp=tmp: _install(t, url, tmp / f"{t}-relay")[0], rows[label]))
                # pip also through a server that knows its URL (absolute file links, which pip
                # resolves faster than relative ones): the same direct run is its reference.
                for name, absolute in ((label, False), ("pip install, public_url set", True)) if tool == "pip" else ((label, False),):
                    if absolute:
                        rows[name]["direct"].append(direct)
                    server = start_wheelcave(tmp / f"data-{name}".replace(" ", "-").replace(",", ""),
                                             env={"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": upstream},
                                             public_url=absolute)
                    try:
                        before = cpu_seconds(server.proc.pid)
                        rows[name]["cold"].append(_install(tool, f"{server.url}/simple/", tmp / f"{name}-cold".replace(" ", "-"))[0])
                        rows[name]["cpu"].append(cpu_seconds(server.proc.pid) - before)
                    finally:
                        server.stop()
    goals = {"uv pip compile (jupyterlab)": "≤ 1.2", "uv pip install": "≤ 1.15", "pip install": "≤ 1.0",
             "pip install, public_url set": "≤ 1.0"}
    lines = [f"# wheelcave cold mirror, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; median of {runs} run(s); "
             "the upstream is the live public index.", "",
             "| resolution | direct | through a fresh wheelcave | ratio | goal | the server's CPU | the bare relay (floor) |",
             "|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        d, c, cpu = statistics.median(r["direct"]), statistics.median(r["cold"]), statistics.median(r["cpu"])
        floor = "(as above)"
        if r["relay"]:
            relay = statistics.median(r["relay"])
            floor = f"{relay:.1f} s, {relay / d:.2f}; CPU {statistics.median(r['relay_cpu']):.2f} s"
        lines.append(f"| {label} | {d:.1f} s | {c:.1f} s | {c / d:.2f} | {goals[label]} | {cpu:.2f} s | {floor} |")
    share = 100 * fetched / resolved if resolved else float("nan")
    lines += ["", ("The server's CPU (its process, median): the steadier figure to compare code by, as going "
                   "direct moves with the upstream from run to run."),
              "", f"The compile: wheelcave fetched {fetched / 2**20:.1f} MiB of files from the upstream (whole files "
              f"and Range reads) for a resolution whose pinned wheels weigh {resolved / 2**20:.1f} MiB: "
              f"{share:.1f} % (goal < 10 %)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
