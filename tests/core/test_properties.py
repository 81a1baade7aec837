"""Property tests (hypothesis) of the pure core and of Range parsing (issue 10's suite):
names, filenames and versions against packaging; page render → parse round trips, with our
own parser and with pypi-simple (what clients use), for HTML and JSON; Range against a model."""

from __future__ import annotations

import string
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from packaging.version import Version
from pypi_simple import ProjectPage as ClientPage

from wheelcave.core.filenames import parse_dist_filename, spells_project
from wheelcave.core.mirror_listing import filename_projects, findable_under
from wheelcave.core.names import is_valid_project_name, normalize
from wheelcave.core.pages import FileEntry, PageFormat, ProjectPage, files_url, render_project
from wheelcave.core.remote import parse_project_page
from wheelcave.core.versions import version_key
from wheelcave.web.fileresponse import parse_range

ALNUM = string.ascii_letters + string.digits
names = st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(ALNUM), st.text(ALNUM + "._-", max_size=20), st.sampled_from(ALNUM),
)
versions = st.builds(
    lambda parts, pre, post, dev: ".".join(map(str, parts)) + pre + post + dev,
    st.lists(st.integers(0, 999), min_size=1, max_size=4),
    st.sampled_from(["", "a1", "b2", "rc3"]), st.sampled_from(["", ".post1"]), st.sampled_from(["", ".dev4"]),
)
hexes = st.text("0123456789abcdef", min_size=64, max_size=64)
EXAMPLES = settings(max_examples=150, deadline=None)


@EXAMPLES
@given(names)
def test_normalize_is_packagings_and_idempotent(name: str) -> None:
    assert normalize(name) == canonicalize_name(name)
    assert normalize(normalize(name)) == normalize(name)
    assert is_valid_project_name(name)


@EXAMPLES
@given(names, versions, st.sampled_from(["py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "py2.py3-none-any"]))
def test_wheel_filenames_round_trip(name: str, version: str, tags: str) -> None:
    filename = f"{canonicalize_name(name).replace('-', '_')}-{version}-{tags}.whl"
    dist = parse_dist_filename(filename)
    assert dist.project == canonicalize_name(name)
    assert dist.version == Version(version)
    assert dist.kind == "wheel"


@EXAMPLES
@given(names, versions)
def test_sdist_filenames_round_trip(name: str, version: str) -> None:
    dist = parse_dist_filename(f"{name}-{version}.tar.gz")
    assert (canonicalize_name(name), Version(version)) in (dist.splits or ((dist.project, dist.version),))


@EXAMPLES
@given(versions, versions)
def test_version_order_is_packagings(a: str, b: str) -> None:
    assert (version_key(a) < version_key(b)) == (Version(a) < Version(b))
    assert (version_key(a) == version_key(b)) == (Version(a) == Version(b))


entries = st.builds(
    lambda version, sha, size, rp, yanked, reason, meta, when: (version, sha, size, rp, yanked, reason, meta, when),
    versions, hexes, st.integers(0, 2**40) | st.none(), st.sampled_from([None, ">=3.8", ">=3.8,<4", "!=3.0.*"]),
    st.booleans(), st.sampled_from([None, "broken", 'quotes " and <tags> & ampersands']), hexes | st.none(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)) | st.none(),
)


def _page(name: str, raw: list[tuple[object, ...]]) -> ProjectPage:
    files, seen = [], set()
    for version, sha, size, rp, yanked, reason, meta, when in raw:
        filename = f"{canonicalize_name(name).replace('-', '_')}-{version}-py3-none-any.whl"
        if filename in seen:
            continue
        seen.add(filename)
        files.append(FileEntry(filename=filename, url=files_url(str(sha), filename), sha256=str(sha), size=size,  # type: ignore[arg-type]
                               version=str(version), requires_python=rp, yanked=bool(yanked),  # type: ignore[arg-type]
                               yanked_reason=reason if yanked else None, upload_time=when,  # type: ignore[arg-type]
                               metadata_sha256=meta))  # type: ignore[arg-type]
    return ProjectPage(name=canonicalize_name(name), files=files, display_name=name)


@EXAMPLES
@given(names, st.lists(entries, max_size=12), st.sampled_from([PageFormat.JSON, PageFormat.HTML]))
def test_pages_round_trip_through_both_parsers(name: str, raw: list[tuple[object, ...]], fmt: PageFormat) -> None:
    page = _page(name, raw)
    base = f"https://index.test/simple/{page.name}/"
    body = render_project(page, fmt, "../../")
    ours = parse_project_page(body, fmt.content_type, base)
    assert [(f.filename, f.sha256, f.requires_python, f.yanked, f.metadata_sha256) for f in ours.files] == [
        (f.filename, f.sha256, f.requires_python, f.yanked, f.metadata_sha256) for f in page.files]
    if fmt is PageFormat.JSON:
        client = ClientPage.from_json_data(__import__("json").loads(body), base)
    else:
        client = ClientPage.from_html(page.name, body, base)
    assert [(p.filename, p.digests.get("sha256"), p.requires_python, p.is_yanked) for p in client.packages] == [
        (f.filename, f.sha256, f.requires_python, f.yanked) for f in page.files]
    for p, f in zip(client.packages, page.files, strict=True):
        assert p.url == f"https://index.test/{f.url}"
        if f.yanked:
            assert (p.yanked_reason or None) == (f.yanked_reason or None)


def _model(header: str, size: int) -> tuple[int, int] | None | bool:
    """RFC 9110 §14.1.2 for one range, written plainly."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[len("bytes="):].partition("-")
    if not sep or not (first.isdigit() or not first) or not (last.isdigit() or not last) or not (first or last):
        return None
    if not first:
        n = int(last)
        return False if n == 0 else (max(0, size - n), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return False
    return start, min(int(last), size - 1) if last else size - 1


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 3000).map(str) | st.just(""), st.integers(0, 3000).map(str) | st.just("")),
    st.text(max_size=30).map(lambda t: "bytes=" + t),
    st.text(max_size=30),
), st.integers(1, 2000))
def test_range_parsing_matches_the_rfc(header: str, size: int) -> None:
    if any(not c.isascii() for c in header):
        return
    assert parse_range(header, size) == _model(header.strip(), size)


@EXAMPLES
@given(names, versions, st.sampled_from([".tar.gz", ".zip", "-py3-none-any.whl", "-1-cp311-cp311-linux_x86_64.whl"]),
       names)
def test_the_quick_project_test_agrees_with_the_parse(name: str, version: str, tail: str, other: str) -> None:
    """A mirror stores a file without a row only when a lookup by its name finds its page: the
    quick test it uses (spells_project) must say what the full parse says, for every reading."""
    stem = canonicalize_name(name).replace("-", "_") if tail.endswith(".whl") else name
    filename = f"{stem}-{version}{tail}"
    readings = filename_projects(filename)
    assert readings, filename
    for project in {*readings, normalize(other), normalize(name)}:
        assert spells_project(filename, project) == (project in readings), (filename, project)
        assert findable_under(filename, project) == (project in readings), (filename, project)
