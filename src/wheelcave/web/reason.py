"""Error messages in the HTTP reason phrase, where twine shows them.

twine prints only ``<status> <reason>`` unless run with ``--verbose``, and the public index
puts its one-line upload errors in the reason phrase for that reason. ASGI has no field for
a reason phrase, so an error response's status is a :class:`StatusWithReason` (an ``int``
that also carries the text), and uvicorn's status-line tables are wrapped to use it. The
wrap is checked at start-up; if uvicorn's internals change, responses keep the standard
phrase and nothing else changes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["StatusWithReason", "install"]

log = logging.getLogger("wheelcave.web")
_UNSAFE = re.compile(r"[^\x20-\x7e]")
_MAX = 250


class StatusWithReason(int):
    reason: bytes

    def __new__(cls, status: int, reason: str) -> StatusWithReason:
        obj = super().__new__(cls, status)
        obj.reason = _UNSAFE.sub("?", reason)[:_MAX].encode("ascii")
        return obj


class _LineTable(dict):  # type: ignore[type-arg]
    """httptools: ``STATUS_LINE[status]`` → ``b"HTTP/1.1 <status> <reason>\\r\\n"``."""

    def __getitem__(self, key: Any) -> bytes:
        if type(key) is int:  # every answer but an error's: no attribute lookup that fails
            return dict.__getitem__(self, key)  # type: ignore[no-any-return]
        reason = getattr(key, "reason", None)
        if reason:
            return b"HTTP/1.1 %d %s\r\n" % (int(key), reason)
        return dict.__getitem__(self, key)  # type: ignore[no-any-return]


class _PhraseTable(dict):  # type: ignore[type-arg]
    """h11: ``STATUS_PHRASES[status]`` → the reason phrase."""

    def __getitem__(self, key: Any) -> bytes:
        reason = getattr(key, "reason", None)
        return reason if reason else dict.__getitem__(self, key)  # type: ignore[no-any-return]


def install() -> bool:
    """Wrap uvicorn's tables once; returns whether custom reasons are in effect."""
    ok = True
    try:
        from uvicorn.protocols.http import httptools_impl

        table = getattr(httptools_impl, "STATUS_LINE", None)
        if isinstance(table, dict) and not isinstance(table, _LineTable):
            httptools_impl.STATUS_LINE = _LineTable(table)
        ok = ok and isinstance(getattr(httptools_impl, "STATUS_LINE", None), _LineTable)
    except ImportError:  # httptools not installed: uvicorn uses h11
        pass
    try:
        from uvicorn.protocols.http import h11_impl

        phrases = getattr(h11_impl, "STATUS_PHRASES", None)
        if isinstance(phrases, dict) and not isinstance(phrases, _PhraseTable):
            h11_impl.STATUS_PHRASES = _PhraseTable(phrases)
        ok = ok and isinstance(getattr(h11_impl, "STATUS_PHRASES", None), _PhraseTable)
    except ImportError:
        pass
    if not ok:
        log.warning("web.reason_phrases_unavailable: error messages only in response bodies")
    return ok
