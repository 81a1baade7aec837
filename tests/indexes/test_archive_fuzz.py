"""Bounded fuzzing of the archive readers (issue 10's suite): random and mutated archives
only ever give metadata or an ArchiveError with a one-line message, never another exception,
and memory per archive stays bounded (tracemalloc)."""

from __future__ import annotations

import io
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.dists import sdist_bytes, wheel_bytes
from wheelcave.core.filenames import parse_dist_filename
from wheelcave.indexes.archive import ArchiveError, read_core_metadata

WHEEL = wheel_bytes("fz-pkg", "1.0")
SDIST = sdist_bytes("fz-pkg", "1.0")
RAW_TAR = io.BytesIO()
with tarfile.open(fileobj=RAW_TAR, mode="w") as _tf:
    _info = tarfile.TarInfo("fz-pkg-1.0/PKG-INFO")
    _meta = b"Metadata-Version: 2.1\nName: fz-pkg\nVersion: 1.0\n"
    _info.size = len(_meta)
    _tf.addfile(_info, io.BytesIO(_meta))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read(tmp_path: Path, filename: str, data: bytes) -> None:
    path = tmp_path / filename
    path.write_bytes(data)
    tracemalloc.start()
    try:
        try:
            read_core_metadata(path, parse_dist_filename(filename), 2**20)
        except ArchiveError as exc:
            assert "\n" not in str(exc) and str(exc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(data) + 16 * 2**20


def _mutate(base: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    data = bytearray(base)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data[:cut] if cut is not None else data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), max_size=8), st.integers(0, len(WHEEL)) | st.none())
def test_mutated_wheels(tmp_path: Path, edits: list[tuple[int, int]], cut: int | None) -> None:
    _read(tmp_path, "fz_pkg-1.0-py3-none-any.whl", _mutate(WHEEL, edits, cut))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), max_size=8), st.integers(0, len(SDIST)) | st.none())
def test_mutated_sdists(tmp_path: Path, edits: list[tuple[int, int]], cut: int | None) -> None:
    _read(tmp_path, "fz-pkg-1.0.tar.gz", _mutate(SDIST, edits, cut))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), max_size=12), st.integers(0, 4096) | st.none())
def test_mutated_tar_headers(tmp_path: Path, edits: list[tuple[int, int]], cut: int | None) -> None:
    """Uncompressed, so the mutations land in tar headers themselves (sizes, types, names)."""
    _read(tmp_path, "fz-pkg-1.0.tar", _mutate(RAW_TAR.getvalue(), edits, cut))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    for filename in ("fz_pkg-1.0-py3-none-any.whl", "fz-pkg-1.0.tar.gz", "fz-pkg-1.0.zip"):
        _read(tmp_path, filename, data)


def test_a_member_name_with_a_line_break_is_escaped_in_the_one_line_error(tmp_path: Path) -> None:
    """Found by test_mutated_wheels: a .dist-info folder named with a line break (the only one
    with a METADATA) was named raw in the message about its missing WHEEL."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("\nz_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fz-pkg\nVersion: 1.0\n")
    path = tmp_path / "fz_pkg-1.0-py3-none-any.whl"
    path.write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError) as caught:
        read_core_metadata(path, parse_dist_filename(path.name), 2**20)
    assert str(caught.value) == r"fz_pkg-1.0-py3-none-any.whl has no \nz_pkg-1.0.dist-info/WHEEL"
