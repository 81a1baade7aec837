"""Credentials out of URLs and messages, for everything shown or logged.

A URL may carry a secret as ``user:password@``, as a user name alone (``TOKEN@host``, as many
private indexes take a token), or in its query string (``?token=...``): all are masked.

>>> mask_url("https://__token__:s3cret@example.test/simple/")
'https://***@example.test/simple/'
>>> mask_url("https://TOKEN@example.test:8443/simple/?key=abc&x")
'https://***@example.test:8443/simple/?key=***&***'
>>> mask_url("https://example.test/simple/")
'https://example.test/simple/'
>>> redact("upstream https://u:p@example.test/simple/ failed")
'upstream https://***@example.test/simple/ failed'
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["mask_url", "redact"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def mask_url(url: str) -> str:
    """The URL with any user information and every query value replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a URL that could not be parsed>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        query = "&".join(item.split("=", 1)[0] + "=***" if "=" in item else "***" for item in query.split("&"))
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=""))


def redact(text: str) -> str:
    """``text`` with every URL in it masked (see :func:`mask_url`)."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text)
