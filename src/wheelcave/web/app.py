"""The ASGI application: ``create_app(settings)`` wires routes, error handlers and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from wheelcave.config import Settings
from wheelcave.core import traffic
from wheelcave.db.notify import ChangeListener
from wheelcave.db.traffic import TrafficTable
from wheelcave.errors import WheelcaveError
from wheelcave.jobs.webhooks import Dispatcher, DispatchSettings
from wheelcave.services import Services, open_services
from wheelcave.storage.base import StoreUnavailable
from wheelcave.web import reason
from wheelcave.web.api.app import create_api
from wheelcave.web.errors import handle_error, handle_store_unavailable, handle_unexpected
from wheelcave.web.fastpath import STATE_KEY, FastPages, HotPages
from wheelcave.web.headers import SecurityHeaders
from wheelcave.web.pagecache import PageCache
from wheelcave.web.pathguard import PathGuardMiddleware
from wheelcave.web.requestid import lean_log_records
from wheelcave.web.routes import files, health, oidc, pypi_json, simple, upload
from wheelcave.web.ui import account, admin, pages, traffic_page, uploads, webhooks_page

__all__ = ["SETTINGS_ENV", "create_app", "create_app_from_env"]

SETTINGS_ENV = "WHEELCAVE_SETTINGS_JSON"
log = logging.getLogger("wheelcave")


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    reason.install()
    holder: dict[str, Services] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        svc = services or await open_services(settings, serving=True)
        app.state.services = holder["services"] = svc
        app.state.page_cache = PageCache()
        app.state.file_lookups = files.FileLookups()
        app.state.hot_pages = HotPages(svc, app.state.page_cache)
        # Objects alive after start-up live for the whole process: keep them out of the
        # collector's full passes, which otherwise stall large page renders.
        gc.freeze()
        flusher = asyncio.create_task(_flush_traffic(svc))
        dispatcher = Dispatcher(svc.repo, DispatchSettings(
            poll=settings.webhook_poll, retry_base=settings.webhook_retry_base,
            max_attempts=settings.webhook_max_attempts, timeout=settings.webhook_timeout))
        sender = asyncio.create_task(dispatcher.run())
        tasks = [flusher, sender]
        svc.registry.refresh_interval = svc.auth.refresh_interval = settings.change_poll
        if not svc.db.is_sqlite and settings.listen:
            tasks.append(asyncio.create_task(_listen(svc, settings)))
        try:
            # The lifespan state reaches the HTTP protocol: it answers hot pages itself (web.instant).
            yield {STATE_KEY: app.state.hot_pages}
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            await dispatcher.aclose()
            with contextlib.suppress(Exception):  # the last counts of this process
                await traffic.flush(svc.registry.metrics.traffic, TrafficTable(svc.db))
            if services is None:
                await svc.close()

    return Starlette(
        routes=[
            *simple.routes, *files.routes, *upload.routes, *pypi_json.routes, *health.routes, *oidc.routes,
            *pages.routes, *account.routes, *uploads.routes, *admin.routes, *traffic_page.routes,
            *webhooks_page.routes,
            Mount("/api/v1", app=create_api(lambda: holder["services"])),
        ],
        exception_handlers={WheelcaveError: handle_error, StoreUnavailable: handle_store_unavailable,
                            Exception: handle_unexpected},
        middleware=[Middleware(SecurityHeaders), Middleware(FastPages), Middleware(PathGuardMiddleware)],
        lifespan=lifespan,
    )


async def _listen(svc: Services, settings: Settings) -> None:
    """PostgreSQL: learn of other replicas' changes from notifications at once; poll slowly
    while they work, at the usual pace while they do not."""

    def changed(kind: str) -> None:
        if kind == "index":
            svc.registry.expire()
        elif kind == "auth":
            svc.auth.expire()

    def state(listening: bool) -> None:
        poll = settings.change_poll_notified if listening else settings.change_poll
        svc.registry.refresh_interval = svc.auth.refresh_interval = poll

    await ChangeListener(settings.database_url, changed, state).run()


async def _flush_traffic(svc: Services, every: float = 60.0) -> None:
    """Add this process's traffic counts to the database once a minute (the charts' page also
    flushes before it reads, so its own process is always current)."""
    while True:
        await asyncio.sleep(every)
        try:
            await traffic.flush(svc.registry.metrics.traffic, TrafficTable(svc.db))
        except Exception:  # the database is away: the counts stay pending for the next round
            log.warning("traffic counts not written; kept for the next try", exc_info=True)


def create_app_from_env() -> Starlette:
    """Factory for uvicorn worker processes: settings come from the parent through the env."""
    lean_log_records()
    return create_app(Settings.from_json(os.environ[SETTINGS_ENV]))
