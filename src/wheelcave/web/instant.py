"""Cached pages answered by the HTTP protocol itself, as soon as a request's head is parsed.

A cached project page is most of what a busy index answers (every install asks for a page
per project, and most of them are hot). Under uvicorn each request also costs a task, an ASGI
scope and two ``send`` calls through the middleware: on 2026-12-04 a cached page took ~187 µs a
request at one connection, a protocol writing the same bytes straight away ~80 µs (README,
"HTTP servers").
:class:`InstantHttpProtocol` asks :class:`~wheelcave.web.fastpath.HotPages` (found in the
lifespan state) when a request's head is complete, and on an answer writes it in one piece:
the same status, headers and body as the ASGI way (the server's ``date``, the security headers,
a request id), the same access-log line, the same counts. Everything else goes the usual way,
and so does every request the protocol cannot answer on the spot: other methods or paths, a
query string or an escaped path, HTTP/1.0, ``Connection: close``, ``Expect``, a request behind
one still being answered (pipelining keeps its order), a client not reading its answers, and
any page :class:`HotPages` declines.
"""

from __future__ import annotations

import types
import weakref
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from wheelcave.web.accesslog import AccessLines
from wheelcave.web.fastpath import STATE_KEY, HotPages, page_route
from wheelcave.web.limits import BoundedHttpToolsProtocol
from wheelcave.web.requestid import REQUEST_ID, given_or_new

__all__ = ["InstantHttpProtocol"]

_STATUS_LINE = {200: b"HTTP/1.1 200 OK\r\n", 304: b"HTTP/1.1 304 Not Modified\r\n"}
_PREFIXES = (b"/simple/", b"/index/")
_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto")


class _Answered:
    """The protocol's current request once answered here: complete, so a body the client
    sends after the head is read and dropped, and the next request starts at once."""

    response_complete = True
    disconnected = False
    keep_alive = True
    more_body = False

    message_event = types.SimpleNamespace(set=lambda: None)  # what uvicorn sets on a lost connection


async def _keep(scope: Any, receive: Any, send: Any) -> None:
    return None


#: Per server configuration: uvicorn's proxy-header rules, to name the client in the access log.
_proxies: weakref.WeakKeyDictionary[Any, ProxyHeadersMiddleware] = weakref.WeakKeyDictionary()


class InstantHttpProtocol(BoundedHttpToolsProtocol):
    _lines: AccessLines | None | bool = False  # False: not looked for yet

    def on_headers_complete(self) -> None:
        if self._answer_here():
            self.head_complete()
        else:
            super().on_headers_complete()

    def _answer_here(self) -> bool:
        hot: HotPages | None = self.app_state.get(STATE_KEY)
        url = self.url
        if hot is None or not url.startswith(_PREFIXES) or b"?" in url or b"%" in url:
            return False
        method = self.parser.get_method()
        if method != b"GET" and method != b"HEAD":
            return False
        if (
            (self.cycle is not None and not self.cycle.response_complete) or self.pipeline
            or self.expect_100_continue or self.parser.get_http_version() != "1.1"
            or not self.parser.should_keep_alive() or self.parser.should_upgrade()
            # a client not taking its answers (the transport holds more than its high-water mark):
            # the app's way writes one answer at a time as it reads, and stops reading meanwhile
            or self.flow.write_paused or self.root_path
        ):
            return False
        try:
            path = url.decode("ascii")
        except UnicodeDecodeError:
            return False
        route = page_route(path)
        if route is None:
            return False
        verb = "GET" if method == b"GET" else "HEAD"
        answer = hot.wire(verb, route, self.headers)
        if answer is None:
            return False
        status, lines, body = answer
        rid = given_or_new(self.headers)
        head = [_STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:  # the server's date
            head += (name, b": ", value, b"\r\n")
        head += (lines, b"x-request-id: ", rid, b"\r\n\r\n", body)
        if self.access_log:
            self._log(rid.decode(), verb, path, status)
        self.transport.write(b"".join(head))
        self.cycle = _Answered()  # type: ignore[assignment]
        self.on_response_complete()
        return True

    def _log(self, rid: str, method: str, path: str, status: int) -> None:
        """The access-log line uvicorn writes for a request (its format, this request's id)."""
        lines = self._lines
        if lines is False:
            lines = self._lines = AccessLines.find(self.access_logger)
        args = (self._client_address(), method, path.replace('"', "%22"), "1.1", status)
        if lines is not None:
            lines.write(rid, '%s - "%s %s HTTP/%s" %d' % args)
            return
        token = REQUEST_ID.set(rid)
        try:
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', *args)
        finally:
            REQUEST_ID.reset(token)

    def _client_address(self) -> str:
        """The client as the access log names it: the peer, or where a trusted proxy says the
        request came from (uvicorn's own proxy-header rules, run on this request)."""
        scope = self.scope
        if self.config.proxy_headers and any(name in _FORWARDED for name, _ in self.headers):
            proxy = _proxies.get(self.config)
            if proxy is None:
                proxy = _proxies[self.config] = ProxyHeadersMiddleware(_keep, self.config.forwarded_allow_ips)
            scope = dict(scope)
            coroutine = proxy(scope, None, None)  # type: ignore[arg-type]  # never awaits: runs to its end
            try:
                coroutine.send(None)
            except StopIteration:
                pass
        client = scope.get("client")
        return "%s:%d" % client if client else ""
