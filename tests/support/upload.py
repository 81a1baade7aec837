"""A raw legacy-API upload with httpx, field for field as twine sends it, so tests can
change any one of them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from wheelcave.core.filenames import parse_dist_filename


def form_for(path: Path, data: bytes | None = None, **overrides: str | None) -> dict[str, str]:
    data = path.read_bytes() if data is None else data
    try:
        dist = parse_dist_filename(path.name)
        name, version, kind, pyversion = dist.project, str(dist.version), dist.kind, dist.python_tag
    except ValueError:
        name, version, kind, pyversion = "unknown", "0", "wheel", "py3"
    fields: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if kind == "wheel" else "sdist",
        "pyversion": pyversion,
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def upload(
    url: str,
    path: Path,
    *,
    auth: tuple[str, str] | None,
    data: bytes | None = None,
    filename: str | None = None,
    headers: dict[str, str] | None = None,
    **overrides: str | None,
) -> httpx.Response:
    content = path.read_bytes() if data is None else data
    files = {"content": (filename or path.name, content, "application/octet-stream")}
    return httpx.post(
        url, data=form_for(path, content, **overrides), files=files, auth=auth,
        headers=headers, timeout=60,
    )
