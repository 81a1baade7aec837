"""Typed access to the services from a request."""

from __future__ import annotations

from starlette.requests import Request

from wheelcave.services import Services
from wheelcave.web.pagecache import PageCache

__all__ = ["client_address", "page_cache", "services", "site_url"]


def services(request: Request) -> Services:
    """The services, from the main app or from a mounted sub-app (the API) that reaches them
    through its ``get_services``."""
    state = request.app.state
    svc: Services | None = getattr(state, "services", None)
    return svc if svc is not None else state.get_services()


def page_cache(request: Request) -> PageCache:
    cache: PageCache = request.app.state.page_cache
    return cache


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def site_url(request: Request) -> str:
    """This server's root URL for absolute links: ``[server] public_url`` when set (behind a
    proxy, and so a client's Host header never ends up in answers others may be given), else
    the URL the request came to."""
    configured = services(request).settings.public_url
    return configured if configured else str(request.base_url)
