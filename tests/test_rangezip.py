"""Reading a wheel's METADATA with Range requests (wheelcave.indexes.rangezip), over real zip
files built here and a fetch that answers ranges of their bytes as an upstream would."""

from __future__ import annotations

import asyncio
import io
import random
import zipfile

import pytest

from tests.support.dists import wheel_bytes
from wheelcave.core.filenames import parse_dist_filename
from wheelcave.indexes.archive import ArchiveError
from wheelcave.indexes.rangezip import CHUNK, MAX_REQUESTS, TAIL, RangeRead, wheel_metadata_by_range

DIST = parse_dist_filename("demo-1.0-py3-none-any.whl")
LIMIT = 8 * 2**20


class Upstream:
    """Answers ranges of ``data`` (or the whole of it, when ``ranges`` is off), counting them."""

    def __init__(self, data: bytes, *, ranges: bool = True) -> None:
        self.data, self.ranges = data, ranges
        self.asked: list[tuple[int, int | None]] = []
        self.sent = 0

    async def fetch(self, first: int, last: int | None) -> tuple[int, int, bytes] | None:
        self.asked.append((first, last))
        if not self.ranges:
            return None
        size = len(self.data)
        start = max(0, size + first) if first < 0 else first
        end = size if last is None or first < 0 else min(size, last + 1)
        self.sent += end - start
        return start, size, self.data[start:end]

    def read(self) -> RangeRead | None:
        return asyncio.run(wheel_metadata_by_range(self.fetch, DIST, LIMIT))


def _noise(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


def _wheel(*, before: dict[str, bytes] | None = None, after: dict[str, bytes] | None = None, **meta: object) -> bytes:
    """A wheel with members written before METADATA (``before``) and after it (``after``)."""
    tail = wheel_bytes("demo", "1.0", extra_files=after or {}, **meta)
    if not before:
        return tail
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(tail)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in before.items():
            dst.writestr(name, data)
        for info in src.infolist():
            dst.writestr(info, src.read(info))
    return out.getvalue()


def test_small_wheel_arrives_whole_in_one_request() -> None:
    data = _wheel(summary="small")
    assert len(data) < TAIL
    up = Upstream(data)
    read = up.read()
    assert read is not None and b"Summary: small" in read.metadata
    assert read.whole == data and read.requests == 1 and len(up.asked) == 1


def test_big_wheel_with_metadata_near_the_end_takes_one_request() -> None:
    data = _wheel(before={"demo/blob.bin": _noise(3 * 2**20)}, summary="big")
    up = Upstream(data)
    read = up.read()
    assert read is not None and b"Summary: big" in read.metadata
    assert read.whole is None and len(up.asked) == 1 and up.sent == TAIL


def test_a_directory_before_the_tail_brings_metadata_along() -> None:
    """Thousands of members: the directory starts before the first request's bytes; the second
    request takes it and the members just before it, METADATA among them."""
    members = {f"demo/m{i:05}.py": b"x" for i in range(2000)}  # ~120 KiB of directory
    data = _wheel(before={**members, "demo/blob.bin": _noise(2**20)}, summary="many")
    up = Upstream(data)
    read = up.read()
    assert read is not None and b"Summary: many" in read.metadata
    assert len(up.asked) == 2 and read.whole is None


def test_metadata_far_from_the_end_takes_a_request_of_its_own() -> None:
    data = _wheel(after={f"pad/{i}": _noise(10240, i) for i in range(40)}, summary="far")
    up = Upstream(data)
    read = up.read()
    assert read is not None and b"Summary: far" in read.metadata
    assert len(up.asked) == 2 and up.asked[1][0] < 1000 and up.sent < len(data) // 4


def test_upstream_ignoring_range_gives_none() -> None:
    up = Upstream(_wheel(), ranges=False)
    assert up.read() is None and len(up.asked) == 1


@pytest.mark.parametrize("data", [
    b"",
    b"not a zip at all" * 100,
    _noise(200_000),
    _wheel()[:-10],  # the end record cut off
    _wheel(before={"demo/blob.bin": _noise(2**20)})[: 2**19] + _wheel()[-100:],  # a directory pointing nowhere
], ids=["empty", "text", "noise", "truncated", "spliced"])
def test_what_is_not_a_wheel_is_an_archive_error(data: bytes) -> None:
    up = Upstream(data)
    with pytest.raises(ArchiveError):
        up.read()
    assert len(up.asked) <= MAX_REQUESTS


def test_a_wheel_without_metadata_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("demo/__init__.py", b"")
    with pytest.raises(ArchiveError):
        Upstream(out.getvalue()).read()


def test_requests_stay_bounded_for_a_hostile_directory() -> None:
    """A directory of 50,000 entries (several MB): never more than MAX_REQUESTS requests, each
    no larger than the bytes still missing (at least a CHUNK)."""
    members = {f"demo/{i:06}": b"" for i in range(50_000)}
    data = _wheel(before=members)
    up = Upstream(data)
    try:
        read = up.read()
    except ArchiveError:
        read = None
    assert len(up.asked) <= MAX_REQUESTS
    assert read is None or b"Name: demo" in read.metadata
    assert up.sent <= len(data) + CHUNK
