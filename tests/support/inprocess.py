"""A wheelcave app in this process (real SQLite in a temporary folder) with a mirror index "up" of
a given upstream, and an httpx client speaking to it through the ASGI transport."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from wheelcave.config import load_settings
from wheelcave.indexes.admin import IndexAdmin
from wheelcave.web.app import create_app


@contextlib.asynccontextmanager
async def mirror_app(
    data: Path, upstream_url: str, *, config: Mapping[str, Any] | None = None,
    grants: Sequence[tuple[str, str]] | None = None,
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """(the app's services, a client) with mirror "up" created (``grants``: its access list,
    default: readable by anyone)."""
    app = create_app(load_settings(data, environ={}))
    async with app.router.lifespan_context(app):
        services = app.state.services
        await IndexAdmin(services.repo).create("up", "mirror", {"upstream": upstream_url, **(config or {})}, grants=grants)
        await services.registry.reload()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield services, client
