"""Trust-boundary benchmark (issue 9), wheelcave alone, compared within the same run.

1. A flood of wrong passwords from 20 clients (each on its own loopback address, as 20 machines
   would be), for ``seconds``: the server's RSS growth (goal: under 100 MB) and the p99 latency
   of requests with a valid API token meanwhile (goal: under 50 ms), against the same token
   requests without a flood. A second flood rotates through 2,000 addresses and unknown user
   names, the worst case for the argon2 bound (every attempt is a fresh check until its address
   is held back).
2. A page read on a private index with credentials (an API token; a password, remembered after
   its first check) against the same page on a public index read anonymously (goal: at most
   1.2x the cost: anonymous req/s ÷ authenticated req/s ≤ 1.2).
"""

from __future__ import annotations

import base64
import hashlib
import os
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks._harness import PeakRss, Proc, rss_kib, start_wheelcave, wrk
from benchmarks.foundation import JSON, _fmt_load, tiny_wheel

PASSWORD = "bench-password-1"


def _token_latencies(url: str, token: tuple[str, str], stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set() and len(out) < 20_000:
            start = time.perf_counter()
            r = client.get(url, auth=token)
            out.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text


def _flood(url: str, addresses: list[str], users: list[str], stop: threading.Event, counts: dict[int, int]) -> None:
    # plain HTTP: no certificate store to load (it costs ~30 ms a client, 2,000 clients here)
    clients = [httpx.Client(transport=httpx.HTTPTransport(local_address=a, verify=False), verify=False, timeout=60)
               for a in addresses]
    try:
        n = 0
        while not stop.is_set() and n < 200_000:
            client = clients[n % len(clients)]
            code = client.get(url, auth=(users[n % len(users)], f"wrong-{n}")).status_code
            counts[code] = counts.get(code, 0) + 1
            n += 1
    finally:
        for c in clients:
            c.close()


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values, default=0.0)


def _measure(server: Proc, token: tuple[str, str], seconds: int, flood: list[tuple[list[str], list[str]]] | None) -> dict[str, object]:
    url = f"{server.url}/api/v1/whoami"
    stop = threading.Event()
    latencies: list[float] = []
    counts: dict[int, int] = {}
    base = rss_kib(server.proc.pid)
    threads = [threading.Thread(target=_token_latencies, args=(url, token, stop, latencies))]
    for addresses, users in flood or []:
        threads.append(threading.Thread(target=_flood, args=(url, addresses, users, stop, counts)))
    with PeakRss(server.proc.pid) as peak:
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(120)
    return {"p50": statistics.median(latencies), "p99": _p99(latencies), "n": len(latencies),
            "growth_mib": (peak.peak - base) / 1024, "counts": counts}


def main(seconds: int = 10) -> str:
    lines = [f"# wheelcave trust-boundary benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {os.cpu_count()} cores; clients on the same machine; {seconds} s per measurement.", ""]
    with tempfile.TemporaryDirectory(prefix="wheelcave-bench-") as tmp:
        data = Path(tmp) / "data"
        server = start_wheelcave(data, env={"PIP_CONFIG_FILE": os.devnull})
        try:
            admin = ("admin", (data / "initial-admin-password").read_text().strip())
            api = f"{server.url}/api/v1"
            with httpx.Client(timeout=60) as client:
                client.post(f"{api}/users", json={"name": "bench", "password": PASSWORD}, auth=admin).raise_for_status()
                client.post(f"{api}/indexes", json={"name": "priv", "kind": "hosted", "private": True}, auth=admin).raise_for_status()
                client.post(f"{api}/indexes/priv/acl/grant", json={"principal": "bench", "permissions": ["read"]},
                            auth=admin).raise_for_status()
                secret = client.post(f"{api}/tokens", json={}, auth=("bench", PASSWORD)).json()["token"]
                for index in ("local", "priv"):
                    for i in range(50):
                        wheel = tiny_wheel("authbench", f"1.{i}")
                        name = f"authbench-1.{i}-py3-none-any.whl"
                        client.post(f"{server.url}/index/{index}/", auth=admin, files={"content": (name, wheel)}, data={
                            ":action": "file_upload", "protocol_version": "1", "name": "authbench", "version": f"1.{i}",
                            "filetype": "bdist_wheel", "pyversion": "py3",
                            "sha256_digest": hashlib.sha256(wheel).hexdigest()}).raise_for_status()
            token = ("__token__", secret)

            quiet = _measure(server, token, seconds, None)
            twenty = [([f"127.0.3.{i + 1}"], ["bench"]) for i in range(20)]
            flood = _measure(server, token, seconds, twenty)
            rotating = [([f"127.4.{(i * 100 + j) // 250}.{(i * 100 + j) % 250 + 1}" for j in range(100)],
                         [f"nobody-{i}-{j}" for j in range(37)]) for i in range(20)]
            spread = _measure(server, token, seconds, rotating)
            lines += ["## Flood of wrong passwords (goals: RSS growth < 100 MB, valid-token p99 < 50 ms)", "",
                      "| while | token requests | p50 | p99 | server RSS growth | flood answers |", "|---|---|---|---|---|---|"]
            for name, m in (("no flood", quiet), ("20 clients, 20 addresses, one user", flood),
                            ("20 clients, 2,000 addresses, unknown users", spread)):
                answers = ", ".join(f"{k}: {v}" for k, v in sorted(m["counts"].items())) or "-"  # type: ignore[union-attr]
                lines.append(f"| {name} | {m['n']} | {m['p50']:.1f} ms | {m['p99']:.1f} ms | {m['growth_mib']:.0f} MiB | {answers} |")

            def basic(user: str, password: str) -> dict[str, str]:
                return {"Accept": JSON, "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

            rows = []
            for conns in (1, 32):
                anon = wrk(f"{server.url}/index/local/simple/authbench/", connections=conns, seconds=seconds, headers={"Accept": JSON})
                tok = wrk(f"{server.url}/index/priv/simple/authbench/", connections=conns, seconds=seconds, headers=basic(*token))
                pwd = wrk(f"{server.url}/index/priv/simple/authbench/", connections=conns, seconds=seconds,
                          headers=basic("bench", PASSWORD))
                rows.append((conns, anon, tok, pwd))
            lines += ["", "## Page reads: private with credentials vs public anonymous (goal: ratio ≤ 1.2)", "",
                      "JSON page of 50 files, wrk.", "",
                      "| connections | public, anonymous | private, API token | private, password | anon/token | anon/password |",
                      "|---|---|---|---|---|---|"]
            for conns, anon, tok, pwd in rows:
                lines.append(f"| {conns} | {_fmt_load(anon)} | {_fmt_load(tok)} | {_fmt_load(pwd)} | "
                             f"{anon.rps / tok.rps:.2f} | {anon.rps / pwd.rps:.2f} |")
        finally:
            server.stop()
    return "\n".join(lines) + "\n"
