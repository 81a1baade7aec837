"""How a mirror's stored files follow the upstream's page: the policy, apart from the SQL that
carries it out (:mod:`wheelcave.db.mirror_rows`).

- A file the upstream lists for the first time becomes a row.
- A listed file changes with the upstream (size, yanked and its reason, requires-python, upload
  time, whether the upstream offers its metadata), but what the upstream no longer says is kept:
  a size learned from a download, an upload time an HTML page does not give, metadata already
  known.
- A file the upstream replaced (same filename, another sha256) follows it unless the old bytes
  are cached: clients that installed them keep getting the same file.
- The first of two entries with one filename wins; a file without a sha256 is never listed.
- A file the upstream stops listing is marked removed (the caller does that: it is every row
  not in :attr:`SyncPlan.listed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from wheelcave.core.remote import RemoteFile

__all__ = ["StoredFile", "SyncPlan", "plan_sync"]


class StoredFile(Protocol):
    """What the plan needs of a stored row (a database row has these attributes)."""

    id: int
    sha256: str
    metadata_sha256: str | None
    size: int | None
    upload_time: datetime | None


@dataclass
class SyncPlan:
    #: Column values of new rows (without their index and project, which the caller adds).
    new: list[dict[str, Any]] = field(default_factory=list)
    #: Column values of changed rows, each with its row's ``_id``.
    changed: list[dict[str, Any]] = field(default_factory=list)
    #: Every filename the upstream lists.
    listed: set[str] = field(default_factory=set)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _differs(old: object, new: object) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return _aware(old) != _aware(new)
    if isinstance(old, (bool, int)) and isinstance(new, (bool, int)):
        return int(old) != int(new)
    return old != new


def plan_sync(files: Sequence[RemoteFile], existing: Mapping[str, Any], cached: set[str]) -> SyncPlan:
    """The rows to add and change so that a mirror project's rows (``existing``, by filename)
    follow the upstream's ``files``. ``cached``: the old sha256s of replaced files whose bytes
    are cached (those keep theirs)."""
    plan = SyncPlan()
    for f in files:
        if f.filename in plan.listed or not f.sha256:
            continue
        plan.listed.add(f.filename)
        values: dict[str, Any] = {
            "origin_url": f.url, "size": f.size, "requires_python": f.requires_python,
            "yanked": f.yanked, "yanked_reason": f.yanked_reason if f.yanked else None,
            "upload_time": f.upload_time, "upstream_metadata": f.metadata_available,
            "origin_removed": False,
        }
        old = existing.get(f.filename)
        if old is None:
            plan.new.append({"filename": f.filename, "version": f.version, "kind": f.kind, "python_tag": f.python_tag,
                             "sha256": f.sha256, "metadata_sha256": f.metadata_sha256, **values})
            continue
        values["sha256"], values["metadata_sha256"] = old.sha256, old.metadata_sha256
        if old.sha256 != f.sha256 and old.sha256 not in cached:
            values["sha256"], values["metadata_sha256"] = f.sha256, f.metadata_sha256  # follow the upstream
        elif f.metadata_sha256 and not old.metadata_sha256:
            values["metadata_sha256"] = f.metadata_sha256
        if old.size is not None and f.size is None:
            values["size"] = old.size  # learned from a download; an HTML page does not say
        if old.upload_time is not None and f.upload_time is None:
            values["upload_time"] = old.upload_time
        if any(_differs(getattr(old, k), v) for k, v in values.items()):
            plan.changed.append({"_id": old.id, **values})
    return plan
