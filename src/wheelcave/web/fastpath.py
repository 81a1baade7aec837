"""The hot path: a cached simple page answered before routing.

``GET /simple/<project>/`` and ``GET /index/<name>/simple/<project>/`` whose page is in the page
cache and still valid are answered here, with the same bytes and headers the route would send
(both use :func:`page_answer`), after the same read check: anonymous requests for indexes
anyone may read, and requests whose credentials this process verified since the last change
to credentials or grants. Anything else (a miss, a query string, credentials not yet verified,
redirects, errors) goes on to the application unchanged.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from wheelcave.core.pages import choose_format
from wheelcave.errors import WheelcaveError
from wheelcave.web.access import hidden_members
from wheelcave.web.routes.simple import DEFAULT_INDEX, cache_key, files_prefix, page_answer

__all__ = ["FastPages"]


def _route(path: str) -> tuple[str, str, str] | None:
    """(index, project, URL prefix) of a project page path, or None."""
    parts = path.split("/")
    # "/simple/p/" -> ["", "simple", "p", ""]; "/index/i/simple/p/" -> ["", "index", "i", "simple", "p", ""]
    if len(parts) == 4 and parts[1] == "simple" and parts[2] and parts[3] == "":
        return DEFAULT_INDEX, parts[2], "../../"
    if len(parts) == 6 and parts[1] == "index" and parts[3] == "simple" and parts[4] and parts[5] == "":
        return parts[2], parts[4], "../../../../"
    return None


class FastPages:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not scope["query_string"]:
            route = _route(scope["path"])
            if route is not None and await self._answer(scope, send, *route):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, index_name: str, project: str, prefix: str) -> bool:
        state = scope["app"].state
        svc = getattr(state, "services", None)
        if svc is None:
            return False
        headers = {}
        for key, value in scope["headers"]:
            if key in (b"accept", b"accept-encoding", b"if-none-match", b"authorization"):
                headers[key] = value.decode("latin-1")
        fmt = choose_format(headers.get(b"accept"))
        if fmt is None:
            return False
        access = await svc.auth.access()
        who = None
        if b"authorization" in headers:
            who = svc.auth.remembered(headers[b"authorization"])
            if who is None:
                return False
        if not access.can(who, "read", index_name):
            return False
        try:
            index = await svc.registry.get(index_name)
        except WheelcaveError:
            return False
        hidden = hidden_members(svc, access, who, index)
        names = svc.registry.member_names(index)
        token = await svc.registry.page_token(index, project)
        prefix = files_prefix(svc.settings.public_url, prefix)
        entry = state.page_cache.get(cache_key(index_name, project, fmt, prefix, True, hidden), token)
        if entry is None or entry.body is None:
            return False
        status, raw, body = page_answer(
            entry, fmt, svc.settings, accept_encoding=headers.get(b"accept-encoding", ""),
            if_none_match=headers.get(b"if-none-match"), public=all(access.public(n) for n in names),
        )
        svc.registry.count_cached_page(index)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
        return True
