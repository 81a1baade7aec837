"""Issue 11: ``wheelcave prefetch`` for two Pythons and two platforms through a mirror of a
local upstream; then, with the upstream stopped, ``pip download --only-binary=:all:
--platform ... --python-version ...`` succeeds from wheelcave for each target. Files no target
needs (another platform's wheels, an old release) are never fetched."""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import run
from tests.support.dists import metadata_text, wheel_bytes
from tests.support.server import BIN, Server
from tests.support.upstream import FakeUpstream, UpFile

TARGETS = [("3.10", "linux", "manylinux_2_17_x86_64"), ("3.10", "windows", "win_amd64"),
           ("3.12", "linux", "manylinux_2_17_x86_64"), ("3.12", "windows", "win_amd64")]


def wheel(name: str, version: str, tag: str = "py3-none-any", **meta: object) -> UpFile:
    filename = f"{name.replace('-', '_')}-{version}-{tag}.whl"
    return UpFile(filename, wheel_bytes(name, version, tag=tag, **meta),
                  metadata=metadata_text(name, version, **meta).encode())


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    up.add("pf-app", wheel("pf-app", "1.0", requires_dist=["pf-native>=1", "pf-winonly; sys_platform == 'win32'"]))
    native = [wheel("pf-native", "1.0", f"cp{py}-cp{py}-{plat}") for py in ("310", "312")
              for plat in ("manylinux_2_17_x86_64", "win_amd64", "macosx_11_0_arm64")]
    up.add("pf-native", wheel("pf-native", "0.9", "cp310-cp310-manylinux_2_17_x86_64"), *native)
    up.add("pf-winonly", wheel("pf-winonly", "2.0"))
    up.start()
    yield up
    up.stop()


def test_prefetch_then_install_with_the_upstream_off(fresh_server: Server, upstream: FakeUpstream, tmp_path: Path,
                                                     client_env: dict[str, str]) -> None:
    fresh_server.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url)
    fresh_server.wait_for_index("up")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pf-app\n")
    result = fresh_server.cli("prefetch", "up", "-r", str(requirements), "--python", "3.10", "--python", "3.12",
                              "--platform", "linux", "--platform", "windows", "--server", fresh_server.url, "--json")
    reports = {r["target"]: r for r in json.loads(result.stdout)}
    assert set(reports) == {f"Python {py} on {plat}" for py, plat, _ in TARGETS}
    for name, report in reports.items():
        assert report["failed"] == [], name
        expected = {"pf-app==1.0", "pf-native==1.0"} | ({"pf-winonly==2.0"} if "windows" in name else set())
        assert set(report["pinned"]) == expected, name
    assert "Python 3.12 on windows: 3 releases, 3 files" in result.stderr

    fetched = [r for r in upstream.requests if r.startswith("GET /files/") and not r.endswith(".metadata")]
    assert not [r for r in fetched if "macosx" in r or "0.9" in r]  # no target needs them
    # A bundle of what one target needs (resolved and fetched the same way).
    bundle = tmp_path / "win312.tar"
    fresh_server.cli("bundle", "create", "-r", str(requirements), "--index", "up", "--python", "3.12", "--platform", "windows",
                     "--server", fresh_server.url, "-o", str(bundle))
    with tarfile.open(bundle) as tar:
        assert sorted(n for n in tar.getnames() if n.endswith(".whl")) == [
            "pf_app-1.0-py3-none-any.whl", "pf_native-1.0-cp312-cp312-win_amd64.whl", "pf_winonly-2.0-py3-none-any.whl"]
    upstream.stop()  # from here on, only what wheelcave cached
    for python, _, platform in TARGETS:
        dest = tmp_path / f"dl-{python}-{platform}"
        run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "--only-binary=:all:", "--platform", platform,
             "--python-version", python, "--index-url", f"{fresh_server.url}/index/up/simple/", "-d", str(dest), "pf-app"],
            client_env)
        names = sorted(p.name for p in dest.iterdir())
        tag = f"cp{python.replace('.', '')}"
        assert f"pf_native-1.0-{tag}-{tag}-{platform}.whl" in names, names
    # pip evaluates markers against the running interpreter even with --platform, so the
    # Windows-only dependency is checked with uv, which resolves for the target platform.
    python = tmp_path / "py"
    compiled = run([str(BIN / "uv"), "pip", "compile", str(requirements), "--python-version", "3.12", "--python-platform",
                    "windows", "--index-url", f"{fresh_server.url}/index/up/simple/", "--no-header", "--no-annotate",
                    "--cache-dir", str(python / "uv-cache")], client_env).stdout
    assert "pf-winonly==2.0" in compiled
    page = httpx.get(f"{fresh_server.url}/index/up/simple/pf-winonly/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    url = httpx.URL(f"{fresh_server.url}/index/up/simple/pf-winonly/").join(page.json()["files"][0]["url"])
    assert httpx.get(url).status_code == 200  # cached: the upstream is off


def test_prefetch_refuses_bad_targets_and_reports_failures(fresh_server: Server, upstream: FakeUpstream, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pf-app\n")
    bad_platform = fresh_server.cli("prefetch", "up", "-r", str(requirements), "--platform", "amiga", check=False)
    assert bad_platform.returncode == 1 and "unknown platform 'amiga'" in bad_platform.stderr
    missing = fresh_server.cli("prefetch", "up", "-r", str(tmp_path / "nope.txt"), check=False)
    assert missing.returncode == 1 and "no such file" in missing.stderr
    # An index that cannot resolve (no such index here): the target fails with uv's reason, exit 1.
    unresolved = fresh_server.cli("prefetch", "nope", "-r", str(requirements), "--server", fresh_server.url, check=False)
    assert unresolved.returncode == 1 and "resolution failed" in unresolved.stderr

