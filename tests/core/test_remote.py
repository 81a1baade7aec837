"""Lenient parsing of upstream pages."""

import pytest

from wheelcave.core.remote import InvalidRemotePage, parse_project_list, parse_project_page

SHA = "ab" * 32
JSON = "application/vnd.pypi.simple.v1+json"


def test_json_page() -> None:
    body = (
        '{"meta": {"api-version": "1.1"}, "name": "foo", "files": ['
        f'{{"filename": "foo-1.0-py3-none-any.whl", "url": "../../f/foo-1.0-py3-none-any.whl", "hashes": {{"sha256": "{SHA.upper()}"}},'
        ' "requires-python": ">=3.8", "yanked": "broken", "size": 12, "upload-time": "2026-01-02T03:04:05.5Z",'
        f' "core-metadata": {{"sha256": "{SHA}"}}, "provenance": "https://example.invalid/p"}},'
        '{"filename": "foo-1.1.tar.gz", "url": "https://files.example.invalid/foo-1.1.tar.gz", "hashes": {}, "yanked": true,'
        ' "size": true, "dist-info-metadata": true}]}'
    ).encode()
    page = parse_project_page(body, JSON + "; charset=utf-8", "http://up.invalid/simple/foo/")
    a, b = page.files
    assert a.url == "http://up.invalid/f/foo-1.0-py3-none-any.whl"
    assert (a.sha256, a.size, a.version, a.kind, a.python_tag) == (SHA, 12, "1.0", "wheel", "py3")
    assert (a.yanked, a.yanked_reason, a.requires_python) == (True, "broken", ">=3.8")
    assert a.upload_time is not None and a.upload_time.microsecond == 500000
    assert (a.metadata_available, a.metadata_sha256) == (True, SHA)
    assert (b.sha256, b.size, b.yanked, b.yanked_reason, b.metadata_available) == (None, None, True, None, True)
    assert b.kind == "sdist"
    assert page.problems == []


def test_html_page_with_base_and_entities() -> None:
    body = (
        '<html><head><base href="http://cdn.invalid/x/"></head><body>'
        f'<a href="foo-1.0-py3-none-any.whl#sha256={SHA}" data-requires-python="&gt;=3.8" data-yanked>x</a>'
        f'<a href="sub/foo-1.1.tar.gz#md5=00" data-core-metadata="sha256={SHA}" data-yanked="why">y</a>'
        "</body></html>"
    ).encode()
    a, b = parse_project_page(body, "text/html", "http://up.invalid/simple/foo/").files
    assert a.url == "http://cdn.invalid/x/foo-1.0-py3-none-any.whl"
    assert (a.sha256, a.requires_python, a.yanked, a.yanked_reason) == (SHA, ">=3.8", True, None)
    assert (b.sha256, b.yanked_reason, b.metadata_sha256) == (None, "why", SHA)


def test_bad_entries_dropped_with_reasons() -> None:
    body = (
        f'<a href="javascript:alert(1)#sha256={SHA}">a</a>'
        f'<a href="ftp://x/foo-1.0.tar.gz#sha256={SHA}">b</a>'
        f'<a href="../../foo-1.0.exe#sha256={SHA}">c</a>'
        f'<a href="good-1.0.tar.gz#sha256={SHA}">d</a></html>'
    ).encode()
    page = parse_project_page(body, "text/html", "http://up.invalid/simple/foo/")
    assert [f.filename for f in page.files] == ["good-1.0.tar.gz"]
    assert len(page.problems) == 3


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"not json", JSON), (b'{"files": {}}', JSON), (b"[1, 2]", JSON),
     (b'{"files": [{"filename": "x", "url": 1}]}', JSON), (b"<html><body><a href='", "text/html")],
)
def test_unusable_pages_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidRemotePage):
        parse_project_page(body, content_type, "http://up.invalid/simple/foo/")


def test_empty_but_complete_pages_are_fine() -> None:
    assert parse_project_page(b'{"files": []}', JSON, "http://x/").files == []
    assert parse_project_page(b"<html><body></body></html>", "text/html", "http://x/").files == []


def test_project_lists() -> None:
    assert parse_project_list(b'{"projects": [{"name": "A"}, {"x": 1}, {"name": "b"}]}', JSON) == ["A", "b"]
    assert parse_project_list(b'<a href="/simple/foo/">Foo</a><a href="bar/">bar</a>', "text/html") == ["foo", "bar"]
