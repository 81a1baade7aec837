"""Wiring: build every service from :class:`Settings`, for the web app and the CLI alike."""

from __future__ import annotations

import os
from dataclasses import dataclass

from wheelcave.auth.admin import AccountAdmin
from wheelcave.auth.oidc import TrustedPublishing
from wheelcave.auth.service import AuthService
from wheelcave.config import Settings
from wheelcave.db.accounts import Accounts
from wheelcave.db.engine import Database
from wheelcave.db.locks import AdvisoryLocks
from wheelcave.db.repository import Repository
from wheelcave.indexes.registry import Registry
from wheelcave.storage.base import BlobStore
from wheelcave.storage.select import open_blob_store

__all__ = ["Services", "open_services"]


@dataclass
class Services:
    settings: Settings
    db: Database
    repo: Repository
    blobs: BlobStore
    registry: Registry
    accounts: Accounts
    auth: AuthService
    people: AccountAdmin
    publishing: TrustedPublishing
    cluster_locks: AdvisoryLocks | None = None

    async def close(self) -> None:
        await self.publishing.close()
        await self.registry.close()
        if self.cluster_locks is not None:
            await self.cluster_locks.close()
        await self.db.dispose()


async def open_services(settings: Settings, *, migrate: bool = True, serving: bool = False) -> Services:
    """Connect, migrate the schema and create the default indexes of a new data folder.

    ``serving``: for the web server (not a CLI command), which may then let mirrors answer
    first fetches before their rows are written when it is the only process serving the
    database: SQLite (whose data folder one server locks) with one worker.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o750)
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    if migrate:
        await db.migrate()
    repo = Repository(db)
    blobs = open_blob_store(settings.blob_dir, settings.storage_url)
    # Replicas on one PostgreSQL download a mirror file once between them (advisory locks).
    cluster_locks = None if db.is_sqlite else AdvisoryLocks(settings.database_url)
    registry = Registry(repo, blobs, max_metadata_size=settings.max_metadata_size,
                        early_answers=serving and db.is_sqlite and settings.workers == 1,
                        cluster_locks=cluster_locks)
    await registry.ensure_defaults()
    await registry.reload()
    accounts = Accounts(db)
    auth = AuthService(accounts, anonymous_read=settings.anonymous_read, metrics=registry.metrics)
    return Services(
        settings=settings, db=db, repo=repo, blobs=blobs, registry=registry, accounts=accounts,
        auth=auth, people=AccountAdmin(accounts, repo, auth),
        publishing=TrustedPublishing(accounts, repo, auth, issuers=settings.oidc_issuers,
                                     audience=settings.oidc_audience),
        cluster_locks=cluster_locks,
    )
