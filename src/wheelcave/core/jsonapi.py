"""The PyPI-style JSON API document (``/pypi/<project>/json``), built from a project page.

``info`` comes from the latest release's real core metadata: the newest version that is
not a pre-release and not wholly yanked, else the newest version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


from wheelcave.core.pages import FileEntry, ProjectPage, format_upload_time
from wheelcave.core.versions import version_key

__all__ = ["latest_version", "project_document", "versions_of"]


def versions_of(page: ProjectPage) -> dict[str, list[FileEntry]]:
    out: dict[str, list[FileEntry]] = {}
    for f in page.files:
        out.setdefault(f.version, []).append(f)
    return dict(sorted(out.items(), key=lambda kv: version_key(kv[0])))


def latest_version(releases: Mapping[str, Sequence[FileEntry]]) -> str:
    def stable(v: str) -> bool:
        k = version_key(v)
        return k[0] == 1 and not k[1].is_prerelease  # type: ignore[union-attr]

    candidates = [v for v, fs in releases.items() if stable(v) and not all(f.yanked for f in fs)]
    if not candidates:
        candidates = [v for v, fs in releases.items() if not all(f.yanked for f in fs)] or list(releases)
    return max(candidates, key=version_key)


def _file_doc(f: FileEntry, url_prefix: str) -> dict[str, Any]:
    upload_time = f.upload_time
    digests = {"sha256": f.sha256, **(f.extra_digests or {})}
    return {
        "comment_text": "",
        "digests": {
            "md5": digests.get("md5"), "sha256": f.sha256, "blake2b_256": digests.get("blake2b_256"),
        },
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": digests.get("md5"),
        "packagetype": "sdist" if f.python_tag == "source" else "bdist_wheel",
        "python_version": f.python_tag,
        "requires_python": f.requires_python,
        "size": f.size,
        "upload_time": upload_time.strftime("%Y-%m-%dT%H:%M:%S") if upload_time else None,
        "upload_time_iso_8601": format_upload_time(upload_time) if upload_time else None,
        "url": url_prefix + f.url,
        "yanked": f.yanked,
        "yanked_reason": f.yanked_reason if f.yanked else None,
        "core-metadata": {"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
    }


def _list(meta: Mapping[str, object], key: str) -> list[str] | None:
    value = meta.get(key)
    return list(value) if isinstance(value, list) and value else None  # type: ignore[arg-type]


def _info(page: ProjectPage, version: str, files: Sequence[FileEntry], base_url: str) -> dict[str, Any]:
    # A wheel's metadata first: an sdist's PKG-INFO may say less (and, before metadata 2.2, be unreliable).
    ordered = sorted(files, key=lambda f: not f.filename.endswith(".whl"))
    meta: Mapping[str, object] = next((f.core_metadata for f in ordered if f.core_metadata), None) or {}
    text = lambda key: meta.get(key) if isinstance(meta.get(key), str) else None  # noqa: E731
    urls = meta.get("project_urls")
    keywords = meta.get("keywords")
    yanked = all(f.yanked for f in files)
    return {
        "author": text("author"),
        "author_email": text("author_email"),
        "bugtrack_url": None,
        "classifiers": _list(meta, "classifiers") or [],
        "description": text("description"),
        "description_content_type": text("description_content_type"),
        "docs_url": None,
        "download_url": text("download_url"),
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
        "dynamic": _list(meta, "dynamic"),
        "home_page": text("home_page"),
        "keywords": ",".join(keywords) if isinstance(keywords, list) else text("keywords"),
        "license": text("license"),
        "license_expression": text("license_expression"),
        "license_files": _list(meta, "license_files"),
        "maintainer": text("maintainer"),
        "maintainer_email": text("maintainer_email"),
        "name": text("name") or page.display_name or page.name,
        "package_url": f"{base_url}{page.name}/",
        "platform": None,
        "project_url": f"{base_url}{page.name}/",
        "project_urls": dict(urls) if isinstance(urls, dict) and urls else None,
        "provides_extra": _list(meta, "provides_extra"),
        "release_url": f"{base_url}{page.name}/{version}/",
        "requires_dist": _list(meta, "requires_dist"),
        "requires_python": text("requires_python") or next((f.requires_python for f in files if f.requires_python), None),
        "summary": text("summary"),
        "version": version,
        "yanked": yanked,
        "yanked_reason": next((f.yanked_reason for f in files if f.yanked_reason), None) if yanked else None,
    }


def project_document(
    page: ProjectPage, *, version: str | None, url_prefix: str, base_url: str, serial: int
) -> dict[str, Any] | None:
    """The JSON API document; with ``version``, the per-release form (no ``releases``).

    Returns None if ``version`` is not a release of the project, or the page lists no file
    (a cooldown can hide every one).
    """
    releases = versions_of(page)
    if not releases:
        return None
    if version is not None:
        wanted = version_key(version)
        match = next((v for v in releases if version_key(v) == wanted), None)
        if match is None:
            return None
        files = releases[match]
        return {
            "info": _info(page, match, files, base_url),
            "last_serial": serial,
            "urls": [_file_doc(f, url_prefix) for f in files],
            "vulnerabilities": [],
        }
    latest = latest_version(releases)
    return {
        "info": _info(page, latest, releases[latest], base_url),
        "last_serial": serial,
        "releases": {v: [_file_doc(f, url_prefix) for f in fs] for v, fs in releases.items()},
        "urls": [_file_doc(f, url_prefix) for f in releases[latest]],
        "vulnerabilities": [],
    }
