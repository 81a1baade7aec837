"""The URL guard: control characters or undecodable bytes in a path or query name nothing here.

(Read checks are per route, in :mod:`wheelcave.web.access`: they depend on the index.)
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from wheelcave.web.errors import error_response

__all__ = ["PathGuardMiddleware"]


_BAD_PATH = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class PathGuardMiddleware:
    """A URL (path or query) with control characters or undecodable bytes names nothing here:
    400, before any route, database or upstream sees it (PostgreSQL refuses NUL in text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_query = scope["query_string"]
            query = unquote_plus(raw_query.decode("latin-1"), errors="surrogateescape") if raw_query else ""
            if _BAD_PATH.search(scope["path"]) or _BAD_PATH.search(query):
                request = Request(scope, receive)
                message = "Invalid characters in the URL."
                await error_response(request, 400, message, "invalid-input")(scope, receive, send)
                return
        await self.app(scope, receive, send)
