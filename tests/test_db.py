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
from wheelcave.db.engine import Database, head_revision
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
            # The search parts of migration 0006 (SQLite's FTS5 table and its shadow tables,
            # PostgreSQL's expression index) are made by raw SQL, not declared: leave them out.
            opts = {"include_name": lambda name, kind, _: not str(name).startswith(("project_search", "ix_projects_search"))}
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts=opts), metadata)
            )
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
        await db.dispose()
        assert version == head_revision() == "0011"  # the fast path of migrate() reads the head from the file names
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


@pytest.mark.postgres
def test_two_replicas_storing_one_mirror_page_at_once(request: pytest.FixtureRequest,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 10.7 for mirrors, the interleaving pinned: replica A has inserted a page's new
    rows and not committed when replica B stores the same page. B waits for A (the page-state
    row is locked by A's transaction), then finds A's rows and inserts nothing; were the order
    of statements ever changed so that B read the rows first, its insert is ON CONFLICT DO
    NOTHING. Both succeed and every file is listed once."""
    from wheelcave.core.remote import RemoteFile
    from wheelcave.db import mirror_rows as mirror_rows_module

    url = database_url_for("postgres", request)

    def remote(i: int) -> RemoteFile:
        # Names that spell another project: the mirror makes their rows when it stores the page
        # (a lookup by name would not find them under "mir"), so both replicas insert rows.
        name = f"mir_old-{i}.0-py3-none-any.whl"
        return RemoteFile(filename=name, url=f"http://127.0.0.1:1/{name}", sha256=f"{i:064x}", size=1, version=f"{i}.0",
                          kind="wheel", python_tag="py3", requires_python=None, yanked=False, yanked_reason=None,
                          upload_time=None, metadata_sha256=None, metadata_available=False)

    async def go() -> None:
        db_a, db_b = Database(url), Database(url)
        await db_a.migrate()
        a, b = Repository(db_a), Repository(db_b)
        index = await a.create_index("m", "mirror", {"upstream": "http://127.0.0.1:1/simple/"})
        assert index is not None
        await a.store_mirror_page(index.id, "mir", [remote(0)], etag=None, last_modified=None, status="ok")
        page = [remote(i) for i in range(50)]
        reached, resume = asyncio.Event(), asyncio.Event()
        bulk_insert = mirror_rows_module.bulk_insert
        # (reached.wait() below is bounded by the asyncio.wait_for around go())

        async def pausing(conn: object, table: object, rows: object, **kw: object) -> None:
            await bulk_insert(conn, table, rows, **kw)  # type: ignore[arg-type]
            if not reached.is_set():
                reached.set()
                await resume.wait()  # A's rows are written, not committed

        monkeypatch.setattr(mirror_rows_module, "bulk_insert", pausing)
        first = asyncio.create_task(a.store_mirror_page(index.id, "mir", page, etag=None, last_modified=None, status="ok"))
        await reached.wait()
        second = asyncio.create_task(b.store_mirror_page(index.id, "mir", page, etag=None, last_modified=None, status="ok"))
        async with db_a.read() as conn:  # wait (polling) until B is blocked on a lock A holds
            waiting = sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            for _ in range(2000):
                if (await conn.execute(waiting)).scalar_one():
                    break
                await asyncio.sleep(0.005)
            else:
                raise AssertionError("replica B never waited for A")
        assert not second.done()
        resume.set()
        assert await first is True
        await second  # never a unique violation
        names = [f.filename for f in await a.project_files(index.id, "mir")]
        assert sorted(names) == sorted(f.filename for f in page)
        await db_a.dispose()
        await db_b.dispose()

    asyncio.run(asyncio.wait_for(go(), 60))
