"""Headers on every answer, in one wrapper of ``send`` (pure ASGI, so streaming and contextvars
stay intact): the request id (:mod:`wheelcave.web.requestid`) and the security headers.

Every answer gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy``; HTML answers also
get a Content-Security-Policy that allows nothing from another origin and no inline script,
and may not be framed (``frame-ancestors 'none'``, plus ``X-Frame-Options`` for old browsers).
A page that sets its own policy keeps it (the API docs allow inline *styles*, never scripts).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wheelcave.web.requestid import HEADER, REQUEST_ID, request_id

__all__ = ["CSP", "SecurityHeaders", "with_security_headers"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"strict-origin-when-cross-origin")]
_HTML = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY")]


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` (extended in place) with the security headers."""
    names = {key.lower() for key, _ in headers}
    headers.extend(_ALWAYS)
    for key, value in headers:
        if key.lower() == b"content-type" and value.startswith(b"text/html"):
            # a page that sets a stricter or looser policy of its own keeps it
            headers.extend(h for h in _HTML if h[0] not in names)
            break
    return headers


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        token = REQUEST_ID.set(rid.decode())

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_security_headers(list(message.get("headers", ())))
                headers.append((HEADER, rid))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        finally:
            REQUEST_ID.reset(token)
