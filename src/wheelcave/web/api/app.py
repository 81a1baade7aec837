"""``/api/v1``: the management API, one router a subject: :mod:`~wheelcave.web.api.indexes`,
:mod:`~wheelcave.web.api.projects` (projects, releases, files, yank, delete, promote, fetch,
search), :mod:`~wheelcave.web.api.accounts` (users, groups, tokens, access lists, owners,
publishers, the audit log), :mod:`~wheelcave.web.api.webhooks`, and the docs. Reads follow each
index's access list; every change needs credentials and the right grant
(:mod:`wheelcave.auth.access`) and lands in the audit log. Errors: :mod:`wheelcave.web.api.errors`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from wheelcave import __version__
from wheelcave.services import Services
from wheelcave.web.api import accounts, docs, errors, indexes, projects, webhooks

__all__ = ["create_api"]


def create_api(get_services: Callable[[], Services]) -> FastAPI:
    api = FastAPI(
        title="wheelcave", version=__version__, openapi_url="/openapi.json", docs_url=None, redoc_url=None,
        description="Management API of a wheelcave package index. Authenticate with HTTP Basic "
        "(user and password, or __token__ and an API token).",
    )
    errors.install(api)
    api.state.get_services = get_services
    for router in (indexes.router, projects.router, accounts.router, webhooks.router, docs.router):
        api.include_router(router)
    return api
