"""The mirror's sync policy (wheelcave.core.mirror_sync), one rule a test, without a database."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from wheelcave.core.mirror_sync import plan_sync
from wheelcave.core.remote import RemoteFile

WHEN = datetime(2026, 1, 2, tzinfo=UTC)


def remote(name: str = "a-1.0-py3-none-any.whl", sha: str = "1" * 64, **kw: object) -> RemoteFile:
    base = RemoteFile(filename=name, url=f"http://up/{name}", sha256=sha, version="1.0", kind="wheel",
                      python_tag="py3", size=10, upload_time=WHEN)
    return replace(base, **kw)  # type: ignore[arg-type]


@dataclass
class Row:
    id: int
    sha256: str
    metadata_sha256: str | None = None
    size: int | None = 10
    upload_time: datetime | None = WHEN
    origin_url: str = "http://up/a-1.0-py3-none-any.whl"
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    upstream_metadata: bool = False
    origin_removed: bool = False


def test_new_files_become_rows_and_the_first_of_a_name_wins() -> None:
    plan = plan_sync([remote(), remote(sha="2" * 64), remote("b-1.0.tar.gz", sha=None)], {}, set())
    assert [r["sha256"] for r in plan.new] == ["1" * 64]  # the duplicate and the hashless are not listed
    assert plan.listed == {"a-1.0-py3-none-any.whl"} and plan.changed == []


def test_an_unchanged_file_changes_nothing() -> None:
    plan = plan_sync([remote()], {"a-1.0-py3-none-any.whl": Row(1, "1" * 64)}, set())
    assert plan.new == [] and plan.changed == []


def test_a_naive_time_from_the_database_equals_the_same_aware_time() -> None:
    row = Row(1, "1" * 64, upload_time=WHEN.replace(tzinfo=None))
    assert plan_sync([remote()], {"a-1.0-py3-none-any.whl": row}, set()).changed == []


def test_yanks_follow_the_upstream_but_learned_sizes_and_times_stay() -> None:
    row = Row(1, "1" * 64, size=10, upload_time=WHEN)
    plan = plan_sync([remote(yanked=True, yanked_reason="broken", size=None, upload_time=None)],
                     {"a-1.0-py3-none-any.whl": row}, set())
    (change,) = plan.changed
    assert change["_id"] == 1 and change["yanked"] is True and change["yanked_reason"] == "broken"
    assert change["size"] == 10 and change["upload_time"] == WHEN


def test_a_replaced_file_follows_the_upstream_unless_its_bytes_are_cached() -> None:
    row = Row(1, "1" * 64, metadata_sha256="m" * 64)
    new = remote(sha="2" * 64)
    followed = plan_sync([new], {"a-1.0-py3-none-any.whl": row}, set()).changed
    assert followed[0]["sha256"] == "2" * 64 and followed[0]["metadata_sha256"] is None
    kept = plan_sync([new], {"a-1.0-py3-none-any.whl": row}, {"1" * 64}).changed
    assert kept == []  # clients that installed the cached bytes keep getting them


def test_metadata_known_is_never_forgotten_and_a_new_hash_is_learned() -> None:
    row = Row(1, "1" * 64, metadata_sha256="m" * 64)
    assert plan_sync([remote(metadata_sha256=None)], {"a-1.0-py3-none-any.whl": row}, set()).changed == []
    learned = plan_sync([remote(metadata_sha256="n" * 64)], {"a-1.0-py3-none-any.whl": Row(1, "1" * 64)}, set())
    assert learned.changed[0]["metadata_sha256"] == "n" * 64


def test_a_file_listed_again_is_no_longer_removed() -> None:
    row = Row(1, "1" * 64, origin_removed=True)
    plan = plan_sync([remote()], {"a-1.0-py3-none-any.whl": row}, set())
    assert plan.changed[0]["origin_removed"] is False
