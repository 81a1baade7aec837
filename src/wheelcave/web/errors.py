"""Errors to HTTP, in one place: a status clients understand and a one-line message.

twine and poetry print the body; uv asks for JSON (``Accept: application/json``) and shows
``code``, so it gets ``{"message", "code", "title"}`` as on the public index.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from wheelcave.errors import WheelcaveError
from wheelcave.web.reason import StatusWithReason

__all__ = ["error_response", "handle_error", "handle_store_unavailable", "handle_unexpected"]

log = logging.getLogger("wheelcave.web")
REALM = 'Basic realm="wheelcave"'


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first == "application/json"


def error_response(request: Request, status: int, message: str, code: str, *, retry_after: int | None = None,
                   json: bool | None = None) -> Response:
    """The one error answer of the app: JSON when the client asks for it first (uv) or ``json``
    (the API), plain text otherwise (twine, poetry and pip print it)."""
    headers = {"WWW-Authenticate": REALM} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    with_reason = StatusWithReason(status, message)
    if json if json is not None else _wants_json(request):
        title = HTTPStatus(status).phrase
        body = {"message": message, "code": f"{status} {message}", "title": title, "error": code}
        return JSONResponse(body, status_code=with_reason, headers=headers)
    return PlainTextResponse(message + "\n", status_code=with_reason, headers=headers)


async def handle_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WheelcaveError)
    if exc.status >= 500:
        log.error("request.failed %s %s: %s", request.method, request.url.path, exc.message)
    return error_response(request, exc.status, exc.message, exc.code, retry_after=getattr(exc, "retry_after", None))


async def handle_store_unavailable(request: Request, exc: Exception) -> Response:
    log.error("request.failed %s %s: %s", request.method, request.url.path, exc)
    return error_response(request, 503, f"The blob store cannot be reached; nothing was changed ({exc}).",
                          "storage-unavailable", retry_after=30)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("request.crashed %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "Internal server error; see the server log.", "internal")
