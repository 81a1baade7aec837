"""Full-text project search (issue 12) on SQLite FTS5 and PostgreSQL tsvector, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import BACKENDS, database_url_for
from wheelcave.db.engine import Database
from wheelcave.db.repository import NewFile, Repository
from wheelcave.db.search import ProjectSearch, search_terms

AUDIT = {"actor": "t", "action": "file.upload"}


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = database_url_for(str(request.param), request)
    yield url or f"sqlite:///{tmp_path / 'search.db'}"


def new_file(index_id: int, project: str, version: str, summary: str | None, n: int) -> NewFile:
    meta = {"name": project, "version": version, **({"summary": summary} if summary else {})}
    return NewFile(
        index_id=index_id, project=project.lower().replace("_", "-"), display_name=project,
        filename=f"{project.replace('-', '_')}-{version}-py3-none-any.whl", version=version, kind="wheel",
        python_tag="py3", sha256=f"{n:064x}", md5="0" * 32, blake2b_256="0" * 64, size=1, requires_python=None,
        uploader="t", metadata_sha256=None, core_metadata=meta,
    )


async def _hosted(db_url: str, name: str) -> tuple[Database, Repository, int]:
    """A migrated database, its repository and a new hosted index's id."""
    db = Database(db_url)
    await db.migrate()
    repo = Repository(db)
    index = await repo.create_index(name, "hosted", {})
    assert index
    return db, repo, index.id


def test_terms_are_words_only() -> None:
    assert search_terms('Flask-SQLAlchemy "x" OR NEAR(a b) col:val * ^ -') == [
        "flask", "sqlalchemy", "x", "or", "near", "a", "b", "col"]  # at most 8
    assert search_terms("a" * 500)[0] == "a" * 64
    assert len(search_terms(" ".join("w" for _ in range(100)))) == 8
    assert search_terms("___ --- !!!") == []


def test_search(db_url: str) -> None:
    async def go() -> None:
        db = Database(db_url)
        await db.migrate()
        repo, search = Repository(db), ProjectSearch(db)
        one = await repo.create_index("one", "hosted", {})
        two = await repo.create_index("two", "hosted", {})
        assert one and two
        n = 0

        async def add(index_id: int, project: str, version: str, summary: str | None) -> None:
            nonlocal n
            n += 1
            assert await repo.add_file(new_file(index_id, project, version, summary, n), AUDIT)

        await add(one.id, "Flask-SQLAlchemy", "3.0", "Adds SQLAlchemy support to Flask")
        await add(one.id, "Flask-SQLAlchemy", "3.1.1", "Adds SQLAlchemy support to your Flask application")
        await add(one.id, "flask", "3.1.0", "A simple framework for building complex web applications")
        await add(one.id, "hello_wheelcave", "0.1.0", None)
        await add(two.id, "frobnicator", "1.0", "Frobnicates widgets")

        async def names(text: str, ids: list[int] | None = None) -> list[str]:
            return [h.name for h in await search.search(ids or [one.id, two.id], text)]

        # Words match as prefixes, all of them; the exact name comes first.
        assert await names("flask") == ["flask", "flask-sqlalchemy"]
        assert await names("flask sql") == ["flask-sqlalchemy"]
        assert await names("FLASK-SQLALCHEMY") == ["flask-sqlalchemy"]
        assert await names("applic") == ["flask", "flask-sqlalchemy"] or await names("applic") == ["flask-sqlalchemy", "flask"]
        # The summary of the last file stored, and the highest version.
        hit = (await search.search([one.id], "flask-sqlalchemy"))[0]
        assert (hit.version, hit.summary) == ("3.1.1", "Adds SQLAlchemy support to your Flask application")
        # Names are split into words: underscores and dashes; a project without any summary.
        assert await names("wheelcave") == ["hello-wheelcave"]
        assert await names("hello wheel") == ["hello-wheelcave"]
        # Only the indexes asked.
        assert await names("frob", [one.id]) == []
        assert await names("widgets", [two.id]) == ["frobnicator"]
        # Match syntax of either database is plain text: no error, no widening.
        for text in ['"', '*', 'flask OR frob', 'NEAR(flask frob)', 'name:flask', "flask & !frob", "'", ":*", "\\"]:
            found = await names(text)
            assert "frobnicator" not in found or "frob" in text.lower(), (text, found)
        assert await names("flask OR frob") == []  # "or" is one more word to match, not an operator
        assert await names("") == [] and await names("  !! ") == []
        # A summary that changes is searched by its new words only.
        await add(one.id, "flask", "3.2.0", "Now about teapots")
        assert await names("teapots") == ["flask"]
        assert "flask" not in await names("complex web")
        # Deleted projects leave the search.
        await repo.delete_files(two.id, "frobnicator", None, None, {"actor": "t", "action": "file.delete"})
        assert await names("widgets") == []
        await db.dispose()

    asyncio.run(go())


def test_upgrade_indexes_existing_projects(db_url: str) -> None:
    """Projects stored before migration 0006 are found after it."""
    async def go() -> None:
        db, repo, index_id = await _hosted(db_url, "old")
        assert await repo.add_file(new_file(index_id, "legacy-thing", "1.0", "An old summary", 1), AUDIT)
        async with db.write() as conn:
            await conn.execute(sa.text("UPDATE projects SET summary = NULL"))
            if db.is_sqlite:
                await conn.execute(sa.text("DELETE FROM project_search"))
        assert await ProjectSearch(db).search([index_id], "summary") == []
        await db.dispose()

        from alembic import command
        from alembic.config import Config

        from wheelcave.db.engine import _MIGRATIONS

        db = Database(db_url)
        async with db.write() as conn:
            def redo(sync: sa.Connection) -> None:
                cfg = Config()
                cfg.set_main_option("script_location", str(_MIGRATIONS))
                cfg.attributes["connection"] = sync
                command.downgrade(cfg, "0005")
                command.upgrade(cfg, "head")
            await conn.run_sync(redo)
        hits = await ProjectSearch(db).search([index_id], "old summ")
        assert [(h.name, h.summary) for h in hits] == [("legacy-thing", "An old summary")]
        await db.dispose()

    asyncio.run(go())


def test_wide_queries_rank_a_bounded_set(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query matching more than CANDIDATES projects ranks only that many, and the project
    named exactly as the query is found even when it is not among them."""
    import wheelcave.db.search as search_module

    monkeypatch.setattr(search_module, "CANDIDATES", 3)

    async def go() -> None:
        db, repo, index_id = await _hosted(db_url, "wide")
        for n in range(8):
            assert await repo.add_file(new_file(index_id, f"alpha-{n}", "1.0", "alpha things", n + 1), AUDIT)
        assert await repo.add_file(new_file(index_id, "alpha", "1.0", "the one", 99), AUDIT)
        hits = await ProjectSearch(db).search([index_id], "alpha")
        assert hits[0].name == "alpha"
        assert len(hits) <= 4
        await db.dispose()

    asyncio.run(go())


def test_a_mirror_project_shows_the_highest_version_its_page_lists(db_url: str) -> None:
    """A mirror's files get rows only when a client asks for them: the version search shows comes
    from the stored page (rows alone would say 1.9, the one file asked for)."""
    from wheelcave.core.remote import RemoteFile

    def listed(version: str, n: int) -> RemoteFile:
        return RemoteFile(f"mirrored-{version}.tar.gz", f"https://up/mirrored-{version}.tar.gz", f"{n:064x}", version,
                          "sdist", "source")

    async def go() -> None:
        db = Database(db_url)
        await db.migrate()
        repo, search = Repository(db), ProjectSearch(db)
        mirror = await repo.create_index("mirror", "mirror", {"upstream": "https://up/simple/"})
        assert mirror
        files = [listed("1.9", 1), listed("1.10", 2), listed("2.0", 3)]
        await repo.store_mirror_page(mirror.id, "mirrored", files, etag=None, last_modified=None, status="ok")
        await repo.mirror_file_row(mirror.id, "mirrored", files[0])  # a client asked for 1.9
        hits = await search.search([mirror.id], "mirrored")
        assert [(h.name, h.version) for h in hits] == [("mirrored", "2.0")]
        # The upstream drops 2.0: the next store says so.
        await repo.store_mirror_page(mirror.id, "mirrored", files[:2], etag=None, last_modified=None, status="ok")
        assert [h.version for h in await search.search([mirror.id], "mirrored")] == ["1.10"]
        await db.dispose()

    asyncio.run(go())
