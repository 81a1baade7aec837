"""Rendering and content negotiation (protocols.md T1.x, T2.x, T3.2)."""

import json
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from wheelcave.core.pages import FileEntry, PageFormat, ProjectPage, choose_format, merge_pages, render_project, render_project_list

SHA = "a" * 64


def page(**kw: object) -> ProjectPage:
    f = FileEntry(
        filename="foo-1.0-py3-none-any.whl", url="files/sha256/x/foo-1.0-py3-none-any.whl",
        sha256=SHA, size=10, version="1.0", requires_python=">=3.8,<4",
        upload_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), metadata_sha256="b" * 64, **kw,  # type: ignore[arg-type]
    )
    return ProjectPage(name="foo", files=[f])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01",
        "application/vnd.pypi.simple.v1+json, */*;q=0.1",
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html;q=0.01",
        "application/vnd.pypi.simple.latest+json",
    ],
)
def test_clients_get_json_t2_1(accept: str) -> None:
    assert choose_format(accept) is PageFormat.JSON


@pytest.mark.parametrize("accept", [None, "", "*/*", "text/html", "text/*", "text/html, */*;q=0.8"])
def test_browsers_get_html_t2_2(accept: str | None) -> None:
    assert choose_format(accept) is PageFormat.TEXT_HTML


def test_not_acceptable_t2_3() -> None:
    assert choose_format("application/json") is None
    assert choose_format("application/vnd.pypi.simple.v1+json;q=0") is None


def test_format_param_wins_t2_4() -> None:
    fmt = choose_format("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+html")
    assert fmt is PageFormat.HTML
    assert choose_format("*/*", "application/json") is None


def test_html_attributes_t1_5_t1_6() -> None:
    html = render_project(page(yanked=True), PageFormat.HTML, "../../").decode()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in html
    assert 'data-yanked=""' in html
    assert f'data-core-metadata="sha256={"b" * 64}"' in html
    assert f'data-dist-info-metadata="sha256={"b" * 64}"' in html
    assert '<meta name="pypi:repository-version" content="1.1">' in html
    assert f'href="../../files/sha256/x/foo-1.0-py3-none-any.whl#sha256={SHA}"' in html

    anchors: list[dict[str, str | None]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                anchors.append(dict(attrs))

    P().feed(html)
    assert anchors[0]["data-yanked"] == ""
    assert anchors[0]["data-requires-python"] == ">=3.8,<4"


def test_yank_reason_escaped() -> None:
    html = render_project(page(yanked=True, yanked_reason='bad "build" <x>'), PageFormat.HTML).decode()
    assert 'data-yanked="bad &quot;build&quot; &lt;x&gt;"' in html
    doc = json.loads(render_project(page(yanked=True, yanked_reason="broken"), PageFormat.JSON))
    assert doc["files"][0]["yanked"] == "broken"
    doc = json.loads(render_project(page(yanked=True), PageFormat.JSON))
    assert doc["files"][0]["yanked"] is True


def test_json_shape_t2_6_t3_2() -> None:
    body = render_project(page(), PageFormat.JSON, "../../")
    doc = json.loads(body)
    assert doc["meta"]["api-version"] == "1.1"
    assert doc["name"] == "foo"
    assert doc["versions"] == ["1.0"]
    f = doc["files"][0]
    assert f["hashes"] == {"sha256": SHA}
    assert f["size"] == 10
    assert f["upload-time"] == "2026-01-02T03:04:05Z"  # PEP 700: the fraction is optional, left out when zero
    assert f["core-metadata"] == {"sha256": "b" * 64}
    assert f["requires-python"] == ">=3.8,<4"
    assert f["url"].startswith("../../files/")
    assert b"dist-info-metadata" not in body


@pytest.mark.parametrize("zone", ["UTC", "timezone.utc", "zoneinfo UTC", "+02:00", "Europe/Paris", "none (read as UTC)"])
@pytest.mark.parametrize("micro", [60, 0])
def test_json_upload_times_are_utc_with_z_whatever_zone_the_time_carries(zone: str, micro: int) -> None:
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo

    at = datetime(2026, 1, 2, 3, 4, 5, micro, tzinfo=UTC)
    when = {"UTC": at, "timezone.utc": at.replace(tzinfo=timezone.utc), "zoneinfo UTC": at.astimezone(ZoneInfo("UTC")),
            "+02:00": at.astimezone(timezone(timedelta(hours=2))), "Europe/Paris": at.astimezone(ZoneInfo("Europe/Paris")),
            "none (read as UTC)": at.replace(tzinfo=None)}[zone]
    entry = FileEntry(filename="foo-1.0.tar.gz", url="files/sha256/x/foo-1.0.tar.gz", sha256=SHA, size=1, version="1.0",
                      upload_time=when)
    doc = json.loads(render_project(ProjectPage(name="foo", files=[entry]), PageFormat.JSON))
    assert doc["files"][0]["upload-time"] == ("2026-01-02T03:04:05.000060Z" if micro else "2026-01-02T03:04:05Z")


def test_project_list() -> None:
    html = render_project_list([("foo-bar", "Foo.Bar")], PageFormat.TEXT_HTML).decode()
    assert '<a href="foo-bar/">Foo.Bar</a>' in html
    doc = json.loads(render_project_list([("foo-bar", "Foo.Bar")], PageFormat.JSON))
    assert doc["projects"] == [{"name": "Foo.Bar"}]


def test_merge_first_member_wins() -> None:
    a = page()
    b_file = FileEntry(filename="foo-1.0-py3-none-any.whl", url="other", sha256="c" * 64, size=1, version="1.0")
    b_new = FileEntry(filename="foo-2.0-py3-none-any.whl", url="new", sha256="d" * 64, size=1, version="2.0")
    merged = merge_pages("foo", [a, ProjectPage(name="foo", files=[b_file, b_new])])  # type: ignore[arg-type]
    assert [f.sha256 for f in merged.files] == [SHA, "d" * 64]


def test_upload_times_are_written_the_pep_700_way_whatever_their_zone() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from wheelcave.core.pages import format_upload_time

    at = datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC)
    assert format_upload_time(at) == "2026-01-02T03:04:05.000060Z"
    assert format_upload_time(at.replace(microsecond=0)) == "2026-01-02T03:04:05.000000Z"
    east = at.astimezone(timezone(timedelta(hours=2)))
    assert format_upload_time(east) == "2026-01-02T03:04:05.000060Z"
    assert format_upload_time(at.replace(tzinfo=timezone.utc)) == "2026-01-02T03:04:05.000060Z"
    assert format_upload_time(at.replace(tzinfo=None)) == "2026-01-02T03:04:05.000060Z"  # naive: taken as UTC
