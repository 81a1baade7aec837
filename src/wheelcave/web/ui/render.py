"""Rendering pages: the Jinja2 environment, the context every page gets, and the wrapper that
signs a page's reader in from the session cookie and turns refusals into pages."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from wheelcave import __version__
from wheelcave.errors import Unauthorized, WheelcaveError
from wheelcave.web.access import caller
from wheelcave.web.deps import site_url
from wheelcave.web.ui.session import csrf_token, remember_csrf, session_principal

__all__ = ["page", "render", "when"]


@functools.cache
def _env() -> Environment:
    return Environment(loader=PackageLoader("wheelcave.web.ui", "templates"), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


async def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    site = site_url(request)
    who = request.scope.get("wheelcave.principal")
    body = _env().get_template(template).render(
        root=urlsplit(site).path or "/", site=site, wheelcave_version=__version__, who=getattr(who, "name", None),
        is_admin=bool(getattr(who, "is_admin", False)), csrf=csrf_token(request), here=request.url.path, **context)
    response = HTMLResponse(body, status_code=status)
    remember_csrf(request, response)
    return response


def page(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A page handler: its reader is signed in from the session cookie when the request carries
    no ``Authorization`` (pages only: the APIs never read the cookie), and its refusals and
    misses are pages too (with the API's status codes)."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            if "wheelcave.principal" not in request.scope:
                if "authorization" in request.headers:  # HTTP credentials work on pages too (checked here)
                    await caller(request)
                else:
                    request.scope["wheelcave.principal"] = await session_principal(request)
            return await handler(request)
        except WheelcaveError as exc:
            if exc.status >= 500:
                raise
            response = await render(request, "error.html", exc.status, code=exc.status, message=exc.message)
            if isinstance(exc, Unauthorized):
                response.headers["WWW-Authenticate"] = 'Basic realm="wheelcave", charset="UTF-8"'
            return response

    return wrapped
