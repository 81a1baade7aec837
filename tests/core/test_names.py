import pytest

from wheelcave.core.errors import InvalidIndexName, InvalidProjectName
from wheelcave.core.names import normalize, validate_index_name, validate_project_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Foo_Bar", "foo-bar"), ("foo.bar", "foo-bar"), ("FOO--_.bar", "foo-bar"), ("a", "a")],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert validate_project_name(raw) == expected


@pytest.mark.parametrize("bad", ["", "-foo", "foo-", "foo bar", "fö", "../x", "a" * 201, "foo/bar"])
def test_invalid_project_names(bad: str) -> None:
    with pytest.raises(InvalidProjectName, match="invalid value for Name"):
        validate_project_name(bad)


@pytest.mark.parametrize("good", ["local", "main", "team.dev-1", "a_b"])
def test_index_names(good: str) -> None:
    assert validate_index_name(good) == good


@pytest.mark.parametrize("bad", ["", "Local", "-x", "a/b", "x" * 65, "é"])
def test_invalid_index_names(bad: str) -> None:
    with pytest.raises(InvalidIndexName):
        validate_index_name(bad)
