"""Liveness, readiness and metrics."""

from __future__ import annotations

import anyio
import anyio.to_thread
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from wheelcave.db.engine import head_revision
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
        schema = await svc.db.schema_revision()
        # Another replica may be migrating the shared database (or has, to a newer version).
        checks["schema"] = ("ok" if schema == head_revision()
                            else f"error: the database is at {schema}, this server expects {head_revision()}")
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"error: {type(exc).__name__}"
    problem: str | None = "no answer within 5 s"
    with anyio.move_on_after(5):
        problem = await anyio.to_thread.run_sync(svc.blobs.check, abandon_on_cancel=True)
    checks["storage"] = "ok" if problem is None else f"error: {problem}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


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
]
