"""The API's errors: the same mapping and the same JSON shape as every other answer of the app
(:func:`wheelcave.web.errors.error_response`: ``error``, ``message``, ``code``, ``title``), always
JSON here. FastAPI's own errors (validation, unknown routes and methods) are mapped into it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from wheelcave.core.errors import CoreError
from wheelcave.errors import WheelcaveError
from wheelcave.web.api import models as m
from wheelcave.web.errors import error_response

__all__ = ["ERRORS", "install"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.Error, "description": text}
    for code, text in ((400, "Bad input"), (401, "Credentials needed or wrong"), (403, "Not allowed"),
                       (404, "Not found"), (409, "Conflict"), (429, "Too many failed sign-ins"), (502, "Upstream failed"),
                       (504, "Upstream timed out"))
}
_CODES = {400: "invalid-input", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}


def install(api: FastAPI) -> None:
    @api.exception_handler(WheelcaveError)
    async def _wheelcave_error(request: Request, exc: WheelcaveError) -> Response:
        return error_response(request, exc.status, exc.message, exc.code,
                              retry_after=getattr(exc, "retry_after", None), json=True)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail), _CODES.get(exc.status_code, "error"), json=True)

    @api.exception_handler(CoreError)
    async def _core_error(request: Request, exc: CoreError) -> Response:
        return error_response(request, 400, str(exc), "invalid-input", json=True)

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        return error_response(request, 400, message, "invalid-input", json=True)
