import pytest
from packaging.version import Version

from wheelcave.core.errors import InvalidFilename
from wheelcave.core.filenames import parse_dist_filename


def test_wheel_with_dots_and_capitals_t8_1() -> None:
    d = parse_dist_filename("Foo.Bar-1.0-py3-none-any.whl")
    assert (d.kind, d.project, d.version, d.python_tag) == ("wheel", "foo-bar", Version("1.0"), "py3")


def test_wheel_build_tag_and_compressed_tags() -> None:
    d = parse_dist_filename("foo-1.0-1b-py2.py3-none-any.whl")
    assert d.build == (1, "b")
    assert {str(t) for t in d.tags} == {"py2-none-any", "py3-none-any"}
    d = parse_dist_filename(
        "foo_bar-2.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )
    assert d.python_tag == "cp311"
    assert len(d.tags) == 2


@pytest.mark.parametrize(
    ("filename", "project", "version", "ext"),
    [
        ("pkg-1.0.post1.tar.gz", "pkg", "1.0.post1", ".tar.gz"),
        ("Pkg-1.0.zip", "pkg", "1.0", ".zip"),
        ("Foo-Bar-1.0.zip", "foo-bar", "1.0", ".zip"),
        ("pkg-1.0-1.tar.gz", "pkg", "1.0.post1", ".tar.gz"),
        ("django-3-jet-1.0.tar.gz", "django-3-jet", "1.0", ".tar.gz"),
        ("old-0.9.tar.bz2", "old", "0.9", ".tar.bz2"),
    ],
)
def test_sdists_t8_4(filename: str, project: str, version: str, ext: str) -> None:
    d = parse_dist_filename(filename)
    assert (d.kind, d.project, d.version, d.extension) == ("sdist", project, Version(version), ext)
    assert d.python_tag == "source"
    assert d.matches(project, version)


def test_ambiguous_sdist_matches_either_reading() -> None:
    d = parse_dist_filename("pkg-1.0-1.tar.gz")
    assert d.matches("pkg", "1.0.post1")
    assert d.matches("pkg-1.0", "1")
    assert not d.matches("pkg", "1.0")


@pytest.mark.parametrize(
    "bad",
    ["../../x.whl", "/abs/x-1.0-py3-none-any.whl", "a\\b-1.0.tar.gz", ".hidden-1.0.tar.gz",
     "x-1.0-py3-none-any.whl\x00", "c:x-1.0.zip", ""],
)
def test_path_tricks_refused(bad: str) -> None:
    with pytest.raises(InvalidFilename):
        parse_dist_filename(bad)


@pytest.mark.parametrize(
    "bad",
    ["foo-1.0.exe", "foo-1.0.egg", "foo.whl", "foo-1.0-py3.whl", "foo__bar-1.0-py3-none-any.whl",
     "nover.tar.gz", "foo-notaversion!.tar.gz"],
)
def test_unparsable_refused(bad: str) -> None:
    with pytest.raises(InvalidFilename):
        parse_dist_filename(bad)


def test_equal_versions_keep_their_own_text() -> None:
    """``Version("1") == Version("1.0")``: a cache keyed by the version alone gave one the other's
    text (a mirror recorded files of 1.0 as release 1 after a page listing 1 was read)."""
    from wheelcave.core.filenames import parse_dist_filename as parse
    from wheelcave.core.filenames import version_text

    for first, second in (("1", "1.0"), ("2.0", "2"), ("3.0", "3.0.0")):
        assert version_text(parse(f"eq-{first}-py3-none-any.whl").version) == first
        assert version_text(parse(f"eq-{second}-py3-none-any.whl").version) == second
