"""Archive reading (wheelcave.indexes.archive) against memory bombs, in process: memory is
measured with tracemalloc (tarfile's buffers are Python objects), never a clock."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from wheelcave.core.filenames import parse_dist_filename
from wheelcave.indexes.archive import ArchiveError, read_core_metadata

DECLARED = 100 * 2**20  # what the bomb's header claims (the was 500 MiB)


def _bomb(path: Path, kind: bytes) -> Path:
    """A .tar.gz whose first member is an extended header (``L``: GNU long name, ``x``: pax)
    of ``DECLARED`` bytes of zeros: about 100 KB compressed."""
    header = tarfile.TarInfo("././@LongLink")
    header.type = kind
    header.size = DECLARED
    block = header.tobuf(format=tarfile.GNU_FORMAT)[:512]
    with gzip.open(path, "wb", compresslevel=9) as gz:
        gz.write(block)
        zeros = b"\0" * 2**20
        for _ in range(DECLARED // len(zeros)):
            gz.write(zeros)
    return path


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE], ids=["gnu-longname", "pax"])
def test_extended_header_bombs_are_refused_before_they_are_read(tmp_path: Path, kind: bytes) -> None:
    path = _bomb(tmp_path / "bomb-1.0.tar.gz", kind)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError, match="extended header"):
            read_core_metadata(path, parse_dist_filename(path.name), 2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_many_members_are_not_all_kept(tmp_path: Path) -> None:
    """Walking 40,000 members keeps only what it needs (tarfile alone keeps every TarInfo)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("many-1.0/PKG-INFO")
        meta = b"Metadata-Version: 2.1\nName: many\nVersion: 1.0\n"
        info.size = len(meta)
        tf.addfile(info, io.BytesIO(meta))
        for i in range(20_000):
            tf.addfile(tarfile.TarInfo(f"many-1.0/f{i:05}-" + "x" * 80))
    path = tmp_path / "many-1.0.tar.gz"
    path.write_bytes(buf.getvalue())
    tracemalloc.start()
    try:
        assert read_core_metadata(path, parse_dist_filename(path.name), 2**20).startswith(b"Metadata-Version")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"  # keeping every member: about 22 MiB


def _unsafe_by_parts(name: str) -> bool:
    """The definition the quick check must agree with: parse every path."""
    from pathlib import PurePosixPath

    norm = name.replace("\\", "/")
    parts = PurePosixPath(norm).parts
    return not norm or norm.startswith("/") or ".." in parts or bool(parts and ":" in parts[0])


@pytest.mark.parametrize("name", [
    "", "/etc/passwd", "\\windows\\system32", "../up", "a/../../up", "a\\..\\up", "..", "./..", ".//../x",
    "c:/x", "C:\\x", "./c:x", "//server/share", "a/b:c", "a/..b", "a..b/c", "...", "ok/name.py",
    "pkg-1.0.dist-info/METADATA", "a/./b", ".hidden", "a:", "a/b/..", "a//..//b",
])
def test_the_quick_member_check_agrees_with_parsing_every_path(name: str) -> None:
    from wheelcave.indexes.archive import unsafe_member

    assert unsafe_member(name) == _unsafe_by_parts(name), name


def test_the_quick_member_check_agrees_on_random_names() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from wheelcave.indexes.archive import unsafe_member

    @settings(max_examples=500, deadline=None)
    @given(st.text(alphabet="ab./\\:c", max_size=12))
    def check(name: str) -> None:
        assert unsafe_member(name) == _unsafe_by_parts(name)

    check()
