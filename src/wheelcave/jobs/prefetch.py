"""``wheelcave prefetch``: load an index with everything a requirements file needs, for every
Python and platform asked for, so those installs work later with the upstream switched off.

For each target, uv's resolver (``uv pip compile``, from uv's PyPI wheel) resolves the full
dependency closure against the index itself, over HTTP like any client. Then, for every
pinned release, the index's page is read and every file an installer on that target could
pick is downloaded through the index, which caches it: every wheel whose tags the target
supports, and the sdist when no wheel fits. Each download is checked against the page's
sha256.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from packaging import tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

__all__ = ["Target", "TargetReport", "platform_tags", "prefetch", "target_tags"]

JSON = "application/vnd.pypi.simple.v1+json"
_MANYLINUX = [f"manylinux_2_{n}" for n in range(40, 16, -1)]
_LEGACY_LINUX = {"manylinux_2_17": "manylinux2014", "manylinux_2_12": "manylinux2010", "manylinux_2_5": "manylinux1"}


def _linux(arch: str, glibc: int = 40) -> list[str]:
    out = []
    for n in range(glibc, 16, -1):
        out.append(f"manylinux_2_{n}_{arch}")
        if f"manylinux_2_{n}" in _LEGACY_LINUX:
            out.append(f"{_LEGACY_LINUX[f'manylinux_2_{n}']}_{arch}")
    if arch in {"x86_64", "i686"}:
        out += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return out + [f"linux_{arch}"]


def _macos(arch: str) -> list[str]:
    versions = [(major, 0) for major in range(15, 10, -1)] + [(10, minor) for minor in range(15, 8, -1)]
    out = []
    for major, minor in versions:
        if arch == "arm64" and major < 11:
            continue
        out += [f"macosx_{major}_{minor}_{arch}", f"macosx_{major}_{minor}_universal2"]
        if arch == "x86_64":
            out.append(f"macosx_{major}_{minor}_intel")
    return out


def platform_tags(platform: str) -> list[str]:
    """Wheel platform tags a target supports, most specific first, for uv's platform names
    (``linux``, ``macos``, ``windows`` and the triples). ValueError for an unknown one."""
    if platform in {"linux", "x86_64-unknown-linux-gnu"}:
        return _linux("x86_64")
    if platform == "aarch64-unknown-linux-gnu":
        return _linux("aarch64")
    for arch in ("x86_64", "aarch64"):
        if platform == f"{arch}-manylinux2014":
            return _linux(arch, 17)
        if platform.startswith(f"{arch}-manylinux_2_"):
            try:
                return _linux(arch, int(platform.rsplit("_", 1)[1]))
            except ValueError:
                break
        if platform == f"{arch}-unknown-linux-musl":
            return [f"musllinux_1_{n}_{arch}" for n in (2, 1)] + [f"linux_{arch}"]
    if platform in {"macos", "aarch64-apple-darwin"}:
        return _macos("arm64")
    if platform == "x86_64-apple-darwin":
        return _macos("x86_64")
    if platform in {"windows", "x86_64-pc-windows-msvc"}:
        return ["win_amd64"]
    if platform == "aarch64-pc-windows-msvc":
        return ["win_arm64"]
    if platform == "i686-pc-windows-msvc":
        return ["win32"]
    raise ValueError(f"unknown platform {platform!r}: use linux, macos, windows or one of uv's --python-platform triples")


@dataclass(frozen=True)
class Target:
    python: str  # "3.12"
    platform: str  # uv's --python-platform

    def __str__(self) -> str:
        return f"Python {self.python} on {self.platform}"


def target_tags(target: Target) -> set[tags.Tag]:
    try:
        major, minor = (int(x) for x in target.python.split(".")[:2])
    except ValueError:
        raise ValueError(f"bad Python version {target.python!r}: use 3.12 and the like") from None
    platforms = platform_tags(target.platform)
    version = (major, minor)
    interpreter = f"cp{major}{minor}"
    found = set(tags.cpython_tags(version, platforms=platforms))
    found |= set(tags.compatible_tags(version, interpreter, platforms))
    return found


@dataclass
class TargetReport:
    target: Target
    pinned: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    failed: list[str] = field(default_factory=list)  # one line per failure
    #: (filename, sha256) of every file cached for this target.
    chosen: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def resolve(target: Target, requirements: Path, index_url: str, workdir: Path) -> list[tuple[str, str]]:
    """(name, version) of the closure, by ``uv pip compile`` for ``target`` against the index.
    Raises RuntimeError with uv's own message when it cannot resolve."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update({"UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(workdir / "uv-cache"), "UV_PYTHON_DOWNLOADS": "never"})
    cmd = [_uv(), "pip", "compile", str(requirements), "--quiet", "--no-header", "--no-annotate", "--no-strip-extras",
           "--python-version", target.python, "--python-platform", target.platform,
           "--index-url", index_url, "--output-file", str(workdir / "pinned.txt")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise RuntimeError(" ".join(lines[-6:]) or f"uv exited {result.returncode}")
    pinned = []
    for line in (workdir / "pinned.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pinned.append((canonicalize_name(name.split("[", 1)[0]), version.split(";", 1)[0].strip()))
    return pinned


def choose_files(files: Iterable[dict[str, object]], version: str, supported: set[tags.Tag]) -> list[dict[str, object]]:
    """The files of ``version`` an installer on the target could pick: every wheel with a
    supported tag, else the sdist (a target with no wheel builds from source)."""
    try:
        wanted = Version(version)
    except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
        return []
    wheels, sdists = [], []
    for f in files:
        name = str(f.get("filename", ""))
        if name.endswith(".whl"):
            try:
                _, v, _, wheel_tags = parse_wheel_filename(name)
            except InvalidWheelFilename:
                continue
            if v == wanted and wheel_tags & supported:
                wheels.append(f)
        elif name.endswith((".tar.gz", ".zip")):
            stem = name.removesuffix(".tar.gz").removesuffix(".zip")
            try:
                if Version(stem.rsplit("-", 1)[1]) == wanted:
                    sdists.append(f)
            except (IndexError, ValueError):
                continue
    return wheels or sdists[:1]


async def prefetch(
    index_url: str, requirements: Path, targets: list[Target], *, credentials: tuple[str, str] | None = None,
    jobs: int = 4, on_file: Callable[[str], None] = lambda name: None,
) -> list[TargetReport]:
    """Resolve and cache, target by target; a file needed by several targets is fetched once."""
    reports: list[TargetReport] = []
    fetched: dict[str, int] = {}  # url -> bytes
    slots = asyncio.Semaphore(jobs)
    auth = httpx.BasicAuth(*credentials) if credentials else None
    async with httpx.AsyncClient(auth=auth, timeout=httpx.Timeout(60, read=300), follow_redirects=True) as client:
        for target in targets:
            report = TargetReport(target)
            reports.append(report)
            try:
                supported = target_tags(target)
                with tempfile.TemporaryDirectory(prefix="wheelcave-prefetch-") as tmp:
                    pinned = await asyncio.to_thread(resolve, target, requirements, _with_credentials(index_url, credentials), Path(tmp))
            except (ValueError, RuntimeError, subprocess.TimeoutExpired) as exc:
                message = str(exc)
                if credentials is not None:  # uv masks passwords in URLs it prints; this holds if one day it does not
                    message = message.replace(credentials[1], "***")
                report.failed.append(f"resolution failed: {message}")
                continue
            report.pinned = [f"{n}=={v}" for n, v in pinned]

            async def one(name: str, version: str) -> None:
                page_url = f"{index_url}{name}/"
                async with slots:
                    try:
                        page = await client.get(page_url, headers={"Accept": JSON})
                        page.raise_for_status()
                        chosen = choose_files(page.json().get("files", []), version, supported)
                        if not chosen:
                            report.failed.append(f"{name}=={version}: no file for {target}")
                            return
                        for f in chosen:
                            url = str(httpx.URL(page_url).join(str(f["url"])))
                            if url not in fetched:
                                fetched[url] = await _download(client, url, dict(f.get("hashes") or {}))  # type: ignore[arg-type]
                                on_file(str(f["filename"]))
                            report.files += 1
                            report.bytes += fetched[url]
                            report.chosen.append((str(f["filename"]), str(dict(f.get("hashes") or {}).get("sha256", ""))))  # type: ignore[call-overload]
                    except (httpx.HTTPError, ValueError) as exc:
                        report.failed.append(f"{name}=={version}: {type(exc).__name__}: {exc}")

            await asyncio.gather(*(one(n, v) for n, v in pinned))
    return reports


async def _download(client: httpx.AsyncClient, url: str, hashes: dict[str, str]) -> int:
    digest = hashlib.sha256()
    size = 0
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
            size += len(chunk)
    expected = hashes.get("sha256")
    if expected and digest.hexdigest() != expected:
        raise ValueError(f"{url.rsplit('/', 1)[-1]}: sha256 does not match the page")
    return size


def _with_credentials(index_url: str, credentials: tuple[str, str] | None) -> str:
    """uv gets credentials in the URL (it never prints them)."""
    if credentials is None:
        return index_url
    return str(httpx.URL(index_url).copy_with(username=credentials[0], password=credentials[1]))
