"""A mirror page's listing as one record (wheelcave.core.mirror_listing), without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import zstandard

from wheelcave.core import mirror_listing
from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import spells_project
from wheelcave.core.mirror_listing import (
    decode,
    encode,
    filename_projects,
    findable_under,
    highest_version,
    listed_files,
)
from wheelcave.core.remote import RemoteFile

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def remote(name: str, sha: str | None = "1" * 64, **kw: object) -> RemoteFile:
    return RemoteFile(name, f"https://up/{name}", sha, "1.0", "wheel" if name.endswith(".whl") else "sdist",
                      "py3", **kw)  # type: ignore[arg-type]


def test_a_listing_round_trips_every_field_in_order() -> None:
    files = [
        remote("a-1.0-py3-none-any.whl", size=10, requires_python=">=3.9", yanked=True, yanked_reason="bad",
               upload_time=WHEN, metadata_sha256="2" * 64, metadata_available=True),
        remote("a-1.0.tar.gz", sha="3" * 64),
    ]
    record, count = encode(listed_files(files))
    assert count == 2
    listing = decode(record)
    assert list(listing.files()) == files
    assert len(listing) == 2 and "a-1.0.tar.gz" in listing and listing.get("a-1.0.tar.gz") == files[1]


def test_only_files_with_a_sha256_are_listed_and_the_first_of_a_name_wins() -> None:
    first, second = remote("a-1.0.tar.gz"), remote("a-1.0.tar.gz", sha="2" * 64)
    files = [remote("a-0.9.tar.gz", sha=None), first, second]
    assert list(listed_files(files).values()) == [first]
    record, count = encode(listed_files(files))
    assert count == 1 and list(decode(record).files()) == [first]


def test_a_yank_reason_is_kept_only_for_a_yanked_file() -> None:
    (back,) = decode(encode(listed_files([remote("a-1.0.tar.gz", yanked_reason="stale")]))[0]).files()
    assert back.yanked_reason is None


def test_an_entry_damaged_past_reading_is_left_out() -> None:
    body = b'{"v": 1, "files": [["a-1.0.tar.gz", "u", "1", "1.0", "sdist", "source", 1, null, false, null, "never", null, false]]}'
    listing = decode(zstandard.ZstdCompressor().compress(body))
    assert listing.get("a-1.0.tar.gz") is None and list(listing.files()) == []


@pytest.mark.parametrize("record", [
    b"", b"not zstd", zstandard.ZstdCompressor().compress(b"[1, 2"),
    zstandard.ZstdCompressor().compress(b'{"v": 99, "files": []}'),
    zstandard.ZstdCompressor().compress(b'{"v": 1, "files": [["too", "short"]]}'),
    zstandard.ZstdCompressor().compress(b'{"v": 1, "files": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "not a time", 12, 13]]}'),
])
def test_an_unreadable_record_is_one_clear_error(record: bytes) -> None:
    with pytest.raises(CoreError, match="unreadable mirror listing"):
        decode(record)


@pytest.mark.parametrize("states_its_size", [True, False])
def test_a_record_that_inflates_past_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch, states_its_size: bool) -> None:
    monkeypatch.setattr(mirror_listing, "MAX_SIZE", 2**20)  # the real limit (512 MiB), smaller to stay quick
    body = b'{"v": 1, "files": []' + b" " * 2**20 + b"}"
    bomb = zstandard.ZstdCompressor(write_content_size=states_its_size).compress(body)
    assert len(bomb) < 1000
    with pytest.raises(CoreError, match="unreadable mirror listing"):
        decode(bomb)
    monkeypatch.setattr(mirror_listing, "MAX_SIZE", 2 * 2**20)
    assert len(decode(bomb)) == 0  # under the limit it reads


def test_the_projects_a_filename_can_belong_to() -> None:
    assert filename_projects("Foo_Bar-1.0-py3-none-any.whl") == ("foo-bar",)
    assert filename_projects("pkg-1.0-1.tar.gz") == ("pkg", "pkg-1-0")
    assert filename_projects("zope.interface-5.0.tar.gz") == ("zope-interface",)
    assert filename_projects("../etc/passwd") == () == filename_projects("x.exe")


def test_a_name_with_more_readings_than_a_lookup_tries_is_stored_with_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real names have a reading or two (PEP 440 lets a version hold a few dashes); the limit
    (MAX_READINGS, 8) is made 1 here to see a reading past it."""
    monkeypatch.setattr(mirror_listing, "MAX_READINGS", 1)
    filename = "pkg-1.0-1.tar.gz"  # pkg 1.0.post1, or pkg-1-0 1
    assert filename_projects(filename) == ("pkg",)
    assert findable_under(filename, "pkg")
    assert spells_project(filename, "pkg-1-0") and not findable_under(filename, "pkg-1-0")  # its page stores a row


def test_the_highest_version_orders_versions_not_strings_and_puts_legacy_ones_below() -> None:
    def listed(*versions: str) -> dict[str, RemoteFile]:
        return listed_files([RemoteFile(f"p-{v}.tar.gz", "https://up/", "0" * 64, v, "sdist", "source")
                             for v in versions])

    assert highest_version(listed("1.9", "1.10", "1.2")) == "1.10"  # not "1.9", as text would say
    assert highest_version(listed("1.0", "2.0rc1", "nonsense")) == "2.0rc1"  # a pre-release counts
    assert highest_version(listed("nonsense", "0.0.1")) == "0.0.1"  # a valid version above legacy
    assert highest_version(listed("nonsense")) == "nonsense"
    assert highest_version({}) is None
