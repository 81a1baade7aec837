"""With ``anonymous_read = false``, every read needs valid credentials (401 otherwise).

A pure ASGI middleware (contextvars and streaming stay intact). Liveness and readiness stay
open for load balancers; uploads authenticate in their own route.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from wheelcave.errors import Unauthorized
from wheelcave.web.errors import error_response

__all__ = ["PathGuardMiddleware", "ReadAuthMiddleware"]

_OPEN = {"/health", "/ready"}


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


class ReadAuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "POST" or scope["path"] in _OPEN:
            await self.app(scope, receive, send)
            return
        svc = scope["app"].state.services
        if svc.settings.anonymous_read:  # the common case: no request object, no header parsing
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            user = await svc.auth.authenticate(request.headers.get("authorization"))
            if user is None:
                raise Unauthorized("This index needs credentials to read.")
        except Unauthorized as exc:
            await error_response(request, exc.status, exc.message, exc.code)(scope, receive, send)
            return
        await self.app(scope, receive, send)
