"""Typed async queries over the schema. Nothing outside ``db/`` writes SQL.

The queries are grouped by what they are about, one module each: :mod:`~wheelcave.db.index_rows`
(indexes, change stamps, audit), :mod:`~wheelcave.db.file_rows` (projects and files),
:mod:`~wheelcave.db.mirror_rows` (what mirrors fetch and cache), :mod:`~wheelcave.db.blob_rows`
(blob references), :mod:`~wheelcave.db.webhook_rows` (webhooks and their deliveries). :class:`Repository` is all of them on one database; a service that needs
only some can be typed with those groups.
"""

from __future__ import annotations

from wheelcave.db.blob_rows import BlobRows
from wheelcave.db.file_rows import FileRows
from wheelcave.db.index_rows import IndexRows
from wheelcave.db.mirror_rows import MirrorRows
from wheelcave.db.webhook_rows import WebhookRows
from wheelcave.db.records import (
    FileRecord,
    IndexGone,
    IndexRecord,
    MirrorPageState,
    NewFile,
    is_unique_violation,
    utcnow,
)
from wheelcave.db.rows import off_loop

__all__ = [
    "FileRecord",
    "IndexGone",
    "IndexRecord",
    "MirrorPageState",
    "NewFile",
    "Repository",
    "is_unique_violation",
    "off_loop",
    "utcnow",
]


class Repository(IndexRows, FileRows, MirrorRows, BlobRows, WebhookRows):
    """Every query the services need, on one :class:`~wheelcave.db.engine.Database`."""
