"""The metadata database on SQLite and PostgreSQL: migrations, constraints, concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.conftest import BACKENDS, database_url_for
from wheelcave.db.engine import Database
from wheelcave.db.repository import NewFile, Repository
from wheelcave.db.tables import metadata


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = database_url_for(str(request.param), request)
    yield url or f"sqlite:///{tmp_path / 'test.db'}"


def new_file(index_id: int, filename: str, sha: str, project: str = "proj") -> NewFile:
    return NewFile(
        index_id=index_id, project=project, display_name=project, filename=filename, version="1.0",
        kind="wheel", python_tag="py3", sha256=sha, md5="0" * 32, blake2b_256="0" * 64, size=1,
        requires_python=None, uploader="t", metadata_sha256=None, core_metadata={"name": project},
    )


def test_migrations_build_exactly_the_declared_schema(db_url: str) -> None:
    async def go() -> list[object]:
        db = Database(db_url)
        await db.migrate()
        await db.migrate()  # idempotent
        async with db.read() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
        await db.dispose()
        assert version == "0004"
        return list(diff)

    assert asyncio.run(go()) == []


def test_unique_filename_per_index_and_concurrent_inserts(db_url: str) -> None:
    async def go() -> None:
        db = Database(db_url)
        await db.migrate()
        repo = Repository(db)
        index = await repo.create_index("h", "hosted", {})
        other = await repo.create_index("h2", "hosted", {})
        assert index and other
        audit = {"actor": "t", "action": "file.upload"}
        results = await asyncio.gather(
            *(repo.add_file(new_file(index.id, "proj-1.0-py3-none-any.whl", f"{i:064x}"), audit) for i in range(8))
        )
        assert sum(r is not None for r in results) == 1
        # Different files of one new project at once: all land, one project row.
        results = await asyncio.gather(
            *(repo.add_file(new_file(index.id, f"many-{i}.whl", f"{i:064x}", project="many"), audit) for i in range(6))
        )
        assert all(r is not None for r in results)
        # The same filename in another index is fine.
        assert await repo.add_file(new_file(other.id, "proj-1.0-py3-none-any.whl", "f" * 64), audit)
        counts = await repo.table_counts(["files", "projects", "audit_log"])
        assert counts == {"files": 8, "projects": 3, "audit_log": 8}
        files = await repo.project_files(index.id, "many", with_metadata=True)
        assert len(files) == 6
        assert files[0].upload_time.tzinfo is not None
        assert files[0].core_metadata == {"name": "many"}
        assert await repo.generations() == {index.id: 7, other.id: 1}
        await db.dispose()

    asyncio.run(go())


def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    async def go() -> str:
        db = Database(f"sqlite:///{tmp_path / 'w.db'}")
        async with db.read() as conn:
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar_one()
        await db.dispose()
        return str(mode)

    assert asyncio.run(go()) == "wal"


def test_access_control_migration_keeps_what_was_allowed(db_url: str) -> None:
    """0004 on a database of 0003: every index readable as before, uploads on hosted ones for
    any user, past uploaders own their projects, a token's one-index scope becomes its scope."""
    from alembic import command
    from alembic.config import Config

    from wheelcave.db import engine as engine_module

    def upgrade_to(revision: str) -> object:
        def go(connection: sa.Connection) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(engine_module._MIGRATIONS))
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
        return go

    async def go() -> None:
        from wheelcave.db.accounts import Accounts

        db = Database(db_url)
        async with db.write() as conn:
            await conn.run_sync(upgrade_to("0003"))
            now = datetime(2026, 1, 1, tzinfo=UTC)
            await conn.execute(sa.text(
                "INSERT INTO indexes (id, name, kind, config, generation, created_at) VALUES "
                "(1, 'local', 'hosted', '{}', 0, :now), (2, 'pypi', 'mirror', '{}', 0, :now)"), {"now": now})
            await conn.execute(sa.text(
                "INSERT INTO users (id, name, password_hash, is_admin, created_at) VALUES (1, 'ann', NULL, false, :now)"),
                {"now": now})
            await conn.execute(sa.text(
                "INSERT INTO projects (id, index_id, name, display_name, created_at, updated_at) "
                "VALUES (1, 1, 'anns', 'anns', :now, :now)"), {"now": now})
            await conn.execute(sa.text(
                "INSERT INTO files (index_id, project_id, filename, version, kind, python_tag, sha256, size, yanked, "
                "uploader, upload_time) VALUES (1, 1, 'anns-1.0-py3-none-any.whl', '1.0', 'wheel', 'py3', :sha, 1, false, 'ann', :now)"),
                {"sha": "a" * 64, "now": now})
            await conn.execute(sa.text(
                "INSERT INTO tokens (user_id, token_hash, prefix, created_at, index_name, permissions) VALUES "
                "(1, :h1, 'wc_1', :now, 'local', 'upload,yank'), (1, :h2, 'wc_2', :now, NULL, NULL)"),
                {"h1": "1" * 64, "h2": "2" * 64, "now": now})
        await db.migrate()
        accounts = Accounts(db)
        assert sorted(await accounts.grants()) == [
            ("local", "anonymous", "read"), ("local", "authenticated", "upload"), ("pypi", "anonymous", "read")]
        assert await accounts.owners(1, "anns") == ["user:ann"]
        scoped = await accounts.find_token("1" * 64)
        unscoped = await accounts.find_token("2" * 64)
        assert scoped and scoped.scope == {"indexes": ["local"], "projects": None, "permissions": ["upload", "yank"]}
        assert unscoped and unscoped.scope is None and unscoped.user and unscoped.user.name == "ann"
        assert await accounts.generation() == 0
        await db.dispose()

    asyncio.run(go())
