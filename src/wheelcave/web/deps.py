"""Typed access to the services from a request."""

from __future__ import annotations

from starlette.requests import Request

from wheelcave.services import Services
from wheelcave.web.pagecache import PageCache

__all__ = ["client_address", "page_cache", "services"]


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def page_cache(request: Request) -> PageCache:
    cache: PageCache = request.app.state.page_cache
    return cache


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
