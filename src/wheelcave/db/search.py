"""Full-text search over project names and summaries (migration 0006).

SQLite: the FTS5 table ``project_search`` (rowid = project id), ranked by bm25 with the name
weighted above the summary. PostgreSQL: the GIN index on the ``simple`` tsvector of the display
name and summary, ranked by ts_rank. Both take the reader's words as prefixes, all of which must
match ("flask sql" finds Flask-SQLAlchemy); a project whose normalized name is the query comes
first whatever its rank.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from wheelcave.core.names import normalize
from wheelcave.core.versions import version_key
from wheelcave.db import tables as t
from wheelcave.db.engine import Database

__all__ = ["ProjectSearch", "SearchHit", "search_terms"]

_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 8
MAX_TERM = 64
CANDIDATES = 5000


@dataclass(frozen=True)
class SearchHit:
    index_id: int
    name: str
    display_name: str
    version: str | None
    summary: str | None


def search_terms(text: str) -> list[str]:
    """The words of a query, lower-case, at most 8 of at most 64 characters: nothing a reader
    types reaches the match syntax of either database (quotes, operators, column filters)."""
    return [w[:MAX_TERM] for w in _WORD.findall(text.lower())][:MAX_TERMS]


class ProjectSearch:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(self, index_ids: Sequence[int], text: str, limit: int = 50) -> list[SearchHit]:
        """Projects of these indexes that list a file and match every word of ``text`` as a
        prefix, best first; each with its highest version."""
        terms = search_terms(text)
        if not terms or not index_ids:
            return []
        exact = normalize(text.strip()) if text.strip() else ""
        listed = t.project_lists_files()
        cols = (t.projects.c.id, t.projects.c.index_id, t.projects.c.name, t.projects.c.display_name,
                t.projects.c.summary)
        if self.db.is_sqlite:
            match = " ".join(f'"{term}"*' for term in terms)
            fts = sa.table("project_search", sa.column("rowid"))
            rank = sa.text("bm25(project_search, 10.0, 1.0)")
            # Rank at most CANDIDATES matches: a query as wide as "a" matches every project, and
            # ranking 100,000 rows costs a quarter of a second while telling nothing.
            candidates = sa.text("SELECT rowid FROM project_search WHERE project_search MATCH :match LIMIT :n")
            query = (sa.select(*cols).select_from(fts.join(t.projects, t.projects.c.id == fts.c.rowid))
                     .where(sa.text("project_search MATCH :match"),
                            sa.or_(fts.c.rowid.in_(candidates.columns(sa.column("rowid"))), t.projects.c.name == exact))
                     .params(match=match, n=CANDIDATES))
        else:
            document = sa.func.to_tsvector(sa.literal_column("'simple'::regconfig"),
                                           t.projects.c.display_name + " " + sa.func.coalesce(t.projects.c.summary, ""))
            tsquery = sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"),
                                         " & ".join(f"{term}:*" for term in terms))
            rank = sa.func.ts_rank(document, tsquery).desc()
            candidates = sa.select(t.projects.c.id).where(document.op("@@")(tsquery)).limit(CANDIDATES)
            query = sa.select(*cols).where(document.op("@@")(tsquery), sa.or_(
                t.projects.c.id.in_(candidates.scalar_subquery()), t.projects.c.name == exact))
        query = (query.where(t.projects.c.index_id.in_(list(index_ids)), listed)
                 .order_by(sa.case((t.projects.c.name == exact, 0), else_=1), rank, t.projects.c.name)
                 .limit(limit))
        async with self.db.read() as conn:
            rows = list(await conn.execute(query))
            versions: dict[int, str] = {}
            if rows:
                ids = [r[0] for r in rows]
                found = list(await conn.execute(
                    sa.select(t.files.c.project_id, t.files.c.version).distinct().where(t.files.c.project_id.in_(ids))
                ))
                # A mirror's project lists files that have no rows (only those clients asked for
                # have one): its page's record names the highest version it lists.
                pages = t.mirror_pages
                found += await conn.execute(
                    sa.select(t.projects.c.id, pages.c.latest)
                    .join(pages, sa.and_(pages.c.index_id == t.projects.c.index_id, pages.c.project == t.projects.c.name))
                    .where(t.projects.c.id.in_(ids), pages.c.latest.is_not(None))
                )
                for project_id, version in found:
                    if project_id not in versions or version_key(version) > version_key(versions[project_id]):
                        versions[project_id] = version
        return [SearchHit(r[1], r[2], r[3], versions.get(r[0]), r[4]) for r in rows]
