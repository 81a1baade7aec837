"""Build wheels and sdists on the fly.

``make_wheel`` writes a valid wheel (METADATA, WHEEL, RECORD) with zipfile, with knobs to
break it on purpose. ``make_sdist`` writes an sdist that installs with pip and uv without
any package index: its ``pyproject.toml`` names an in-tree PEP 517 backend (``backend-path``)
that needs no build requirements. ``build_with_hatchling`` runs the real ``python -m build``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name


def _underscore(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def metadata_text(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Iterable[str] = (),
    summary: str | None = None,
    extra_headers: str = "",
    description: str = "",
    description_content_type: str = "text/markdown",
) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {summary}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {r}" for r in requires_dist)
    text = "\n".join(lines) + "\n" + extra_headers
    if description:
        text += f"Description-Content-Type: {description_content_type}\n\n" + description
    return text


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_bytes(
    name: str,
    version: str,
    *,
    metadata: str | bytes | None = None,
    dist_info: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    tag: str = "py3-none-any",
    **meta_kwargs: object,
) -> bytes:
    """The bytes of a wheel; ``metadata`` replaces the generated METADATA verbatim."""
    pkg = _underscore(name)
    dist_info = dist_info or f"{pkg}-{version}.dist-info"
    meta = metadata if metadata is not None else metadata_text(name, version, **meta_kwargs)  # type: ignore[arg-type]
    meta_bytes = meta.encode() if isinstance(meta, str) else meta
    files: dict[str, bytes] = {
        f"{pkg}/__init__.py": f"NAME = {name!r}\nVERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": meta_bytes,
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: wheelcave-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    files.update(extra_files or {})
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return buf.getvalue()


def big_wheel(folder: Path, megabytes: int, project: str = "bench-big") -> Path:
    """A valid wheel of ``megabytes`` MiB of incompressible data, stored (not deflated) and
    written a MiB at a time, for large uploads (tests and benchmarks)."""
    pkg = _underscore(project)
    path = folder / f"{pkg}-1.0-py3-none-any.whl"
    chunk = os.urandom(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(f"{pkg}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n")
        zf.writestr(f"{pkg}-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        with zf.open(f"{pkg}/data.bin", "w", force_zip64=True) as fh:
            for _ in range(megabytes):
                fh.write(chunk)
    return path


def make_wheel(directory: Path, name: str, version: str, *, filename: str | None = None, **kwargs: object) -> Path:
    tag = str(kwargs.get("tag", "py3-none-any"))
    path = directory / (filename or f"{_underscore(name)}-{version}-{tag}.whl")
    path.write_bytes(wheel_bytes(name, version, **kwargs))  # type: ignore[arg-type]
    return path


_BACKEND = textwrap.dedent(
    '''
    """A tiny PEP 517 backend: builds a pure wheel from the package folder and PKG-INFO."""
    import base64, hashlib, os, zipfile

    def _meta():
        with open("PKG-INFO", encoding="utf-8") as fh:
            text = fh.read()
        fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        return text, fields["Name"], fields["Version"]

    def get_requires_for_build_wheel(config_settings=None):
        return []

    def get_requires_for_build_sdist(config_settings=None):
        return []

    def build_sdist(sdist_directory, config_settings=None):
        raise NotImplementedError("this sdist is already built")

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        text, name, version = _meta()
        pkg = name.lower().replace("-", "_").replace(".", "_")
        dist_info = f"{pkg}-{version}.dist-info"
        files = {}
        for root, _dirs, names in os.walk(pkg):
            for n in names:
                path = os.path.join(root, n)
                with open(path, "rb") as fh:
                    files[path.replace(os.sep, "/")] = fh.read()
        files[f"{dist_info}/METADATA"] = text.encode()
        files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: tiny\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        record = []
        for path, data in files.items():
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        files[f"{dist_info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
        filename = f"{pkg}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
            for path, data in files.items():
                zf.writestr(path, data)
        return filename
    '''
)

_PYPROJECT = textwrap.dedent(
    """
    [build-system]
    requires = []
    build-backend = "backend"
    backend-path = ["."]
    """
)


def sdist_bytes(
    name: str,
    version: str,
    *,
    pkg_info: str | None = None,
    top: str | None = None,
    extra_members: Mapping[str, bytes] | None = None,
    **meta_kwargs: object,
) -> bytes:
    pkg = _underscore(name)
    top = top or f"{pkg}-{version}"
    info = pkg_info if pkg_info is not None else metadata_text(name, version, **meta_kwargs)  # type: ignore[arg-type]
    members: dict[str, bytes] = {
        f"{top}/PKG-INFO": info.encode(),
        f"{top}/pyproject.toml": _PYPROJECT.encode(),
        f"{top}/backend.py": _BACKEND.encode(),
        f"{top}/{pkg}/__init__.py": f"NAME = {name!r}\nVERSION = {version!r}\n".encode(),
    }
    members.update(extra_members or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, data in members.items():
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def make_sdist(directory: Path, name: str, version: str, *, filename: str | None = None, **kwargs: object) -> Path:
    path = directory / (filename or f"{_underscore(name)}-{version}.tar.gz")
    path.write_bytes(sdist_bytes(name, version, **kwargs))  # type: ignore[arg-type]
    return path


def build_with_hatchling(
    directory: Path, name: str, version: str, *, dependencies: Iterable[str] = (),
    requires_python: str | None = None,
) -> Path:
    """Make a real project and build its wheel with ``python -m build --no-isolation``."""
    project = directory / f"src-{name}-{version}"
    pkg = _underscore(name)
    (project / pkg).mkdir(parents=True)
    (project / pkg / "__init__.py").write_text(f"NAME = {name!r}\n")
    deps = ", ".join(f'"{d}"' for d in dependencies)
    rp = f'requires-python = "{requires_python}"\n' if requires_python else ""
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "{name}"
            version = "{version}"
            description = "{name}, built by the wheelcave tests"
            dependencies = [{deps}]
            """
        )
        + rp
    )
    out = directory / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(out), str(project)],
        check=True, capture_output=True,
    )
    return next(out.glob(f"{pkg}-{version}-*.whl"))
