import pytest
from packaging.version import Version

from wheelcave.core.errors import InvalidCoreMetadata
from wheelcave.core.metadata import parse_lenient, parse_strict

GOOD = b"""Metadata-Version: 2.1
Name: Foo.Bar
Version: 1.0.0
Summary: A thing
Requires-Python: >=3.8,<4
Requires-Dist: attrs>=20
Requires-Dist: idna; extra == "x"
Provides-Extra: x
Project-URL: Home, https://example.invalid/

The long description.
"""


def test_strict_parses_fields() -> None:
    m = parse_strict(GOOD)
    assert m.name == "Foo.Bar"
    assert m.version == Version("1")
    assert m.requires_python == ">=3.8,<4"
    assert m.summary == "A thing"
    assert m.fields["requires_dist"] == ["attrs>=20", 'idna; extra == "x"']
    assert m.fields["project_urls"] == {"Home": "https://example.invalid/"}
    assert m.fields["description"].strip() == "The long description."


def test_unknown_header_names_the_field_t8_3() -> None:
    with pytest.raises(InvalidCoreMetadata, match="frobnicate"):
        parse_strict(GOOD.replace(b"Summary:", b"Frobnicate: 1\nSummary:"))


def test_invalid_requires_python() -> None:
    with pytest.raises(InvalidCoreMetadata, match="requires-python"):
        parse_strict(GOOD.replace(b">=3.8,<4", b">>>3"))


def test_missing_version() -> None:
    with pytest.raises(InvalidCoreMetadata, match="version"):
        parse_strict(b"Metadata-Version: 2.1\nName: foo\n")


def test_not_utf8() -> None:
    with pytest.raises(InvalidCoreMetadata, match="UTF-8"):
        parse_strict(b"Metadata-Version: 2.1\nName: f\xff\nVersion: 1\n")


def test_field_newer_than_declared_version_is_a_warning() -> None:
    m = parse_strict(b"Metadata-Version: 2.1\nName: foo\nVersion: 1\nLicense-File: LICENSE\n")
    assert m.warnings
    assert "license-file" in m.warnings[0]


def test_lenient_accepts_what_strict_refuses() -> None:
    data = GOOD.replace(b"Summary:", b"Frobnicate: 1\nSummary:")
    assert parse_lenient(data).name == "Foo.Bar"
