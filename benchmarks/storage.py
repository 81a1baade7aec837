"""Upload and download throughput: the filesystem blob store against the object store (issue 14),
in one run on this machine.

The object store is moto's S3-compatible server on 127.0.0.1 (no S3 service is reachable here):
moto is a Python server that keeps every object in its memory, so its own cost is part of the
object-store figures; a real S3 or MinIO moves the bytes in native code, and over a network
adds its latency. What the comparison shows is what wheelcave adds around the store: the spool,
the multipart upload, the ranged streaming, the server's memory.

Scenarios, each against a fresh server per store: one 300 MB wheel uploaded (seconds, MB/s,
server RSS growth) and downloaded (MB/s); 200 small wheels uploaded one after another and
downloaded (files/s); and, for the object store, the same large download through a presigned
redirect (the client reads the store itself).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks._harness import PeakRss, Proc, rss_kib, start_wheelcave
from benchmarks.foundation import tiny_wheel, upload
from tests.support.dists import big_wheel
from tests.support.s3 import S3Server

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
BIG_MB = 300
SMALL = 200


def _password(data: Path) -> str:
    return (data / "initial-admin-password").read_text().strip()


def _file_url(client: httpx.Client, server: Proc, project: str) -> str:
    page = client.get(f"{server.url}/simple/{project}/", headers=JSON).json()
    return str(httpx.URL(f"{server.url}/simple/{project}/").join(page["files"][0]["url"]))


def _download(client: httpx.Client, url: str) -> int:
    got = 0
    with client.stream("GET", url, follow_redirects=True) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_bytes(1 << 20):
            got += len(chunk)
    return got


def _measure(work: Path, label: str, env: dict[str, str], big: Path, big_sha: str) -> dict[str, float]:
    data = work / label.replace(" ", "-")
    server = start_wheelcave(data, env=env)
    out: dict[str, float] = {}
    try:
        auth = ("admin", _password(data))
        with httpx.Client(timeout=600) as client:
            upload(client, server.url, auth, "bench_warm-1.0-py3-none-any.whl", tiny_wheel("bench-warm", "1.0"),
                   hashlib.sha256(tiny_wheel("bench-warm", "1.0")).hexdigest())
            baseline = rss_kib(server.proc.pid)
            with PeakRss(server.proc.pid) as peak, big.open("rb") as fh:
                start = time.perf_counter()
                upload(client, server.url, auth, big.name, fh, big_sha)  # type: ignore[arg-type]
                seconds = time.perf_counter() - start
            size_mb = big.stat().st_size / 1e6
            out["big upload MB/s"] = size_mb / seconds
            out["big upload RSS growth MiB"] = (peak.peak - baseline) / 1024
            url = _file_url(client, server, "bench-big")
            start = time.perf_counter()
            assert _download(client, url) == big.stat().st_size
            out["big download MB/s"] = size_mb / (time.perf_counter() - start)
            wheels = [(f"bench_small-1.{i}-py3-none-any.whl", tiny_wheel("bench-small", f"1.{i}")) for i in range(SMALL)]
            start = time.perf_counter()
            for name, body in wheels:
                upload(client, server.url, auth, name, body, hashlib.sha256(body).hexdigest())
            out["small uploads files/s"] = SMALL / (time.perf_counter() - start)
            page = client.get(f"{server.url}/simple/bench-small/", headers=JSON).json()
            urls = [str(httpx.URL(f"{server.url}/simple/bench-small/").join(f["url"])) for f in page["files"]]
            start = time.perf_counter()
            for u in urls:
                client.get(u, follow_redirects=True).raise_for_status()
            out["small downloads files/s"] = len(urls) / (time.perf_counter() - start)
    finally:
        server.stop()
    return out


def main() -> str:
    with tempfile.TemporaryDirectory(prefix="wheelcave-storage-") as tmp:
        work = Path(tmp)
        big = big_wheel(work, BIG_MB)
        digest = hashlib.sha256()
        with big.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        moto = S3Server().start()
        try:
            moto.client().create_bucket(Bucket="bench")
            s3_env = {**moto.env, "WHEELCAVE_SERVER_ACCESS_LOG": "false"}
            results = {
                "filesystem": _measure(work, "filesystem", {"WHEELCAVE_SERVER_ACCESS_LOG": "false"}, big, digest.hexdigest()),
                "object store (moto)": _measure(work, "object store", {**s3_env, "WHEELCAVE_STORAGE_URL": "s3://bench/a"},
                                                big, digest.hexdigest()),
            }
            redirect = _measure(work, "object store redirect", {**s3_env, "WHEELCAVE_STORAGE_URL": "s3://bench/b",
                                                                  "WHEELCAVE_STORAGE_REDIRECT": "300"}, big, digest.hexdigest())
            results["object store, presigned redirects"] = redirect
        finally:
            moto.stop()
    keys = list(results["filesystem"])
    lines = ["# Blob stores: filesystem vs object store", "",
             f"One {BIG_MB} MB wheel up and down, {SMALL} small wheels up and down, one server per store.", "",
             "| | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for label, row in results.items():
        lines.append(f"| {label} | " + " | ".join(f"{row[k]:,.1f}" for k in keys) + " |")
    fs = results["filesystem"]
    obj = results["object store (moto)"]
    lines += ["", "Object store vs filesystem: " + ", ".join(f"{k} {obj[k] / fs[k]:.2f}x" for k in keys if "RSS" not in k)]
    return "\n".join(lines) + "\n"
