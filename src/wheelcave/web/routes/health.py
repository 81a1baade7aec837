"""Liveness, readiness and the landing page."""

from __future__ import annotations

import html

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from wheelcave import __version__
from wheelcave.errors import Forbidden, Unauthorized
from wheelcave.web.access import caller
from wheelcave.web.deps import services

__all__ = ["routes"]


async def health(_: Request) -> Response:
    return PlainTextResponse("ok\n")


async def ready(request: Request) -> Response:
    svc = services(request)
    checks: dict[str, str] = {}
    try:
        async with svc.db.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"error: {type(exc).__name__}"
    checks["storage"] = "ok" if svc.blobs.tmp.is_dir() else "error: blob folder missing"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


async def home(request: Request) -> Response:
    svc = services(request)
    who = await caller(request)
    access = await svc.auth.access()
    base = str(request.base_url)
    readable = [r for r in await svc.registry.names() if access.can(who, "read", r.name)]
    if not readable and who is None and not svc.settings.anonymous_read:
        raise Unauthorized("This index needs credentials to read.")
    rows = "".join(
        f"<tr><td>{html.escape(r.name)}</td><td>{r.kind}</td>"
        f"<td><code>{html.escape(base)}index/{html.escape(r.name)}/simple/</code></td></tr>"
        for r in readable
    )
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>wheelcave</title></head>
<body><h1>wheelcave {__version__}</h1>
<p>Install with <code>pip install --index-url {html.escape(base)}simple/ PACKAGE</code>;
upload with <code>twine upload --repository-url {html.escape(base)}legacy/ dist/*</code>.</p>
<table><tr><th>index</th><th>kind</th><th>simple URL</th></tr>{rows}</table></body></html>"""
    return HTMLResponse(page)


async def metrics(request: Request) -> Response:
    """Prometheus counters. They name indexes, so where any index is not public they are for
    administrators only (a scraper signs in with HTTP Basic)."""
    svc = services(request)
    access = await svc.auth.access()
    if not all(access.public(r.name) for r in await svc.registry.names()):
        who = await caller(request)
        if who is None:
            raise Unauthorized("The metrics need an administrator's credentials.")
        if not who.is_admin:
            raise Forbidden("The metrics are for administrators.")
    body = svc.registry.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/health", health, methods=["GET", "HEAD"]),
    Route("/ready", ready, methods=["GET", "HEAD"]),
    Route("/", home, methods=["GET", "HEAD"]),
]
