"""A 2 GB upload to the object store keeps the server's memory flat (issue 14, acceptance 2):
an S3-compatible server on 127.0.0.1 (moto's server mode), the upload streamed in, checked,
and sent to the bucket in parts."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import httpx

from tests.e2e.test_object_storage import _bucket, _store_env
from tests.support.dists import big_wheel, make_wheel
from tests.support.s3 import S3Server
from tests.support.server import Server
from tests.support.upload import upload


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_2gb_upload_to_the_store_keeps_memory_flat(s3: S3Server, tmp_path: Path) -> None:
    """Acceptance 2: the server's RSS grows by less than 64 MB while a 2 GB wheel is received,
    checked and sent to the object store in parts (sampled every 20 ms, from before the upload
    to after its answer)."""
    bucket = _bucket(s3, "wc-big")
    srv = Server(tmp_path / "data", extra_env=_store_env(s3, bucket)).start()
    try:
        wheel = big_wheel(tmp_path, 2000, "os-big")  # 2.1 GB, under the default 2 GiB upload limit
        digest = hashlib.sha256()
        with wheel.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        # Warm up the upload path (the first request imports and allocates what every later one reuses).
        assert upload(f"{srv.url}/legacy/", make_wheel(tmp_path, "os-warm", "1.0"), auth=("admin", srv.admin_password)).status_code == 200
        assert srv.proc is not None
        baseline = _rss_kib(srv.proc.pid)
        peak = [baseline]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.02):
                peak[0] = max(peak[0], _rss_kib(srv.proc.pid))  # type: ignore[union-attr]

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        fields = {":action": "file_upload", "protocol_version": "1", "name": "os-big", "version": "1.0",
                  "filetype": "bdist_wheel", "pyversion": "py3", "sha256_digest": digest.hexdigest()}
        try:
            with wheel.open("rb") as fh:
                answer = httpx.post(f"{srv.url}/legacy/", data=fields, files={"content": (wheel.name, fh)},
                                    auth=("admin", srv.admin_password), timeout=900)
        finally:
            stop.set()
            sampler.join()
        assert answer.status_code == 200, answer.text
        growth_mib = (peak[0] - baseline) / 1024
        print(f"2 GB upload to the object store: RSS {baseline / 1024:.0f} MiB before, peak growth {growth_mib:.1f} MiB")
        assert growth_mib < 64, f"RSS grew by {growth_mib:.1f} MiB"
        size = wheel.stat().st_size
        key = f"wc/sha256/{digest.hexdigest()[:2]}/{digest.hexdigest()[2:4]}/{digest.hexdigest()}"
        assert s3.client().head_object(Bucket=bucket, Key=key)["ContentLength"] == size
        assert not list((srv.data_dir / "blobs" / "tmp").glob("*.part"))  # the spool is empty again
    finally:
        srv.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)
