"""The hot path: a cached simple page answered before routing.

``GET /simple/<project>/`` and ``GET /index/<name>/simple/<project>/`` whose page is in the page
cache and still valid are answered by :class:`HotPages`, with the same bytes and headers the
route would send (both use :func:`page_answer`), after the same read check: anonymous requests
for indexes anyone may read, and requests whose credentials this process verified since the
last change to credentials or grants. Anything else (a miss, a query string, credentials not
yet verified, redirects, errors) goes on to the application unchanged.

:class:`HotPages` does no I/O: where the grants or the index definitions are due for their
periodic re-read it declines, and the request takes the ASGI way (:class:`FastPages`, which
awaits the re-read first, then asks it again). That lets the HTTP protocol itself answer a
request from it without starting the ASGI machinery (:mod:`wheelcave.web.instant`).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from wheelcave.auth.access import AccessList, Principal
from wheelcave.core.pages import PageFormat, choose_format
from wheelcave.errors import WheelcaveError
from wheelcave.indexes.base import Index
from wheelcave.services import Services
from wheelcave.web.access import hidden_members
from wheelcave.web.headers import with_security_headers
from wheelcave.web.pagecache import CachedPage, PageCache
from wheelcave.web.routes.simple import (
    DEFAULT_INDEX, cache_key, files_prefix, page_answer, page_body, page_headers, page_shape,
)

__all__ = ["STATE_KEY", "Answer", "FastPages", "HotPages", "Wire", "page_route"]

#: Where the lifespan state (and so the HTTP protocol) finds this process's :class:`HotPages`.
STATE_KEY = "wheelcave.hot_pages"
#: (status, raw headers, body) of an answer; the body is empty for HEAD.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
#: (status, header lines but ``date`` and the request id, body) of an answer.
Wire = tuple[int, bytes, bytes]
_WANTED = (b"accept", b"accept-encoding", b"if-none-match", b"authorization")


def page_route(path: str) -> tuple[str, str, str] | None:
    """(index, project, URL prefix) of a project page path, or None."""
    parts = path.split("/")
    # "/simple/p/" -> ["", "simple", "p", ""]; "/index/i/simple/p/" -> ["", "index", "i", "simple", "p", ""]
    if len(parts) == 4 and parts[1] == "simple" and parts[2] and parts[3] == "":
        return DEFAULT_INDEX, parts[2], "../../"
    if len(parts) == 6 and parts[1] == "index" and parts[3] == "simple" and parts[4] and parts[5] == "":
        return parts[2], parts[4], "../../../../"
    return None


class HotPages:
    """Cached project pages, answered without I/O (or declined: None)."""

    def __init__(self, services: Services, page_cache: PageCache) -> None:
        self.services = services
        self.page_cache = page_cache
        #: Per index: (grants, index, view) of the last anonymous reader, while both stay the same.
        self._anonymous: dict[str, tuple[AccessList, Index, tuple[frozenset[str], bool] | None]] = {}

    def answer(self, method: str, route: tuple[str, str, str], headers: Iterable[tuple[bytes, bytes]]) -> Answer | None:
        """The answer to ``method`` (GET or HEAD) for a :func:`page_route`, or None when the
        page is not cached and valid, or when anything needs I/O to be sure of."""
        found = self._find(route, headers)
        if found is None:
            return None
        entry, fmt, wanted, public = found
        status, raw, body = page_answer(
            entry, fmt, self.services.settings, accept_encoding=wanted.get(b"accept-encoding", ""),
            if_none_match=wanted.get(b"if-none-match"), public=public,
        )
        return status, raw, body if method == "GET" else b""

    def wire(self, method: str, route: tuple[str, str, str], headers: Iterable[tuple[bytes, bytes]]) -> Wire | None:
        """:meth:`answer` as the HTTP/1.1 protocol writes it: the status, the header lines but
        for ``date`` and the request id (with the security headers, made once per page and
        shape), and the body."""
        found = self._find(route, headers)
        if found is None:
            return None
        entry, fmt, wanted, public = found
        encoding, status = page_shape(entry, wanted.get(b"accept-encoding", ""), wanted.get(b"if-none-match"))
        max_age = self.services.settings.page_max_age
        key = ("wire", fmt, encoding, public, status, max_age)
        lines = entry.memo.get(key)
        if lines is None:
            shaped = with_security_headers(list(page_headers(entry, fmt, encoding, public, status, max_age)))
            lines = entry.memo[key] = b"".join(b"%s: %s\r\n" % h for h in shaped)
        return status, lines, page_body(entry, encoding, status) if method == "GET" else b""

    def _find(
        self, route: tuple[str, str, str], headers: Iterable[tuple[bytes, bytes]],
    ) -> tuple[CachedPage, PageFormat, dict[bytes, str], bool] | None:
        svc = self.services
        access = svc.auth.access_now()
        if access is None:
            return None
        wanted: dict[bytes, str] = {}
        for key, value in headers:
            if key in _WANTED and key not in wanted:  # the first of a repeated header, as the routes read it
                wanted[key] = value.decode("latin-1")
        fmt = choose_format(wanted.get(b"accept"))
        if fmt is None:
            return None
        index_name, project, prefix = route
        who = None
        if b"authorization" in wanted:
            who = svc.auth.remembered(wanted[b"authorization"])
            if who is None:
                return None
        registry = svc.registry
        index = registry.get_now(index_name)
        if index is None:
            return None
        if who is None:  # most readers: what they may see changes only with the grants or the index
            seen = self._anonymous.get(index_name)
            if seen is None or seen[0] is not access or seen[1] is not index:
                seen = self._anonymous[index_name] = (access, index, self._view(access, None, index_name, index))
            view = seen[2]
        else:
            view = self._view(access, who, index_name, index)
        if view is None:
            return None
        hidden, public = view
        token = registry.page_token_now(index, project)
        if token is None:
            return None
        prefix = files_prefix(svc.settings.public_url, prefix)
        entry = self.page_cache.get(cache_key(index_name, project, fmt, prefix, True, hidden), token)
        if entry is None or entry.body is None:
            return None
        registry.count_cached_page(index)
        return entry, fmt, wanted, public

    def _view(
        self, access: AccessList, who: Principal | None, index_name: str, index: Index,
    ) -> tuple[frozenset[str], bool] | None:
        """What ``who`` sees of ``index``: the members hidden from them, and whether the pages
        are readable without credentials; None if they may not read it."""
        if not access.can(who, "read", index_name):
            return None
        public = all(access.public(n) for n in self.services.registry.member_names(index))
        return hidden_members(self.services, access, who, index), public


class FastPages:
    """The ASGI face of :class:`HotPages`: brings the grants and definitions up to date (the
    I/O it may not do), then asks it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not scope["query_string"]:
            route = page_route(scope["path"])
            if route is not None and await self._answer(scope, send, route):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, route: tuple[str, str, str]) -> bool:
        hot: HotPages | None = getattr(scope["app"].state, "hot_pages", None)
        if hot is None:
            return False
        await hot.services.auth.access()
        try:
            await hot.services.registry.get(route[0])
        except WheelcaveError:
            return False
        answer = hot.answer(scope["method"], route, scope["headers"])
        if answer is None:
            return False
        status, raw, body = answer
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return True
