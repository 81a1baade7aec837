"""full-text search over project names and summaries: SQLite FTS5, PostgreSQL tsvector

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:40:00

Each project keeps the summary of the last file stored with one (``projects.summary``), kept
by a trigger on ``files`` so that every way a file arrives (upload, import, mirror, promote)
feeds the search. On SQLite an FTS5 table mirrors ``projects`` (rowid = the
project's id), kept by triggers; on PostgreSQL a GIN index on the ``simple`` tsvector of the
display name and summary does the same.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_SQLITE = [
    # unicode61 splits hello_wheelcave and hello-wheelcave into words; prefix indexes make
    # "whe*" cheap.
    """CREATE VIRTUAL TABLE project_search USING fts5(
        name, summary, tokenize = "unicode61 remove_diacritics 2", prefix = '2 3')""",
    """CREATE TRIGGER project_search_insert AFTER INSERT ON projects BEGIN
        INSERT INTO project_search(rowid, name, summary) VALUES (NEW.id, NEW.display_name, NEW.summary);
    END""",
    """CREATE TRIGGER project_search_delete AFTER DELETE ON projects BEGIN
        DELETE FROM project_search WHERE rowid = OLD.id;
    END""",
    """CREATE TRIGGER project_search_update AFTER UPDATE OF display_name, summary ON projects BEGIN
        DELETE FROM project_search WHERE rowid = OLD.id;
        INSERT INTO project_search(rowid, name, summary) VALUES (NEW.id, NEW.display_name, NEW.summary);
    END""",
    """CREATE TRIGGER files_summary_insert AFTER INSERT ON files
        WHEN NEW.summary IS NOT NULL BEGIN
        UPDATE projects SET summary = NEW.summary WHERE id = NEW.project_id AND summary IS NOT NEW.summary;
    END""",
    """CREATE TRIGGER files_summary_update AFTER UPDATE OF summary ON files
        WHEN NEW.summary IS NOT NULL BEGIN
        UPDATE projects SET summary = NEW.summary WHERE id = NEW.project_id AND summary IS NOT NEW.summary;
    END""",
]

_POSTGRES = [
    """CREATE FUNCTION wheelcave_project_summary() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.summary IS NOT NULL THEN
            UPDATE projects SET summary = NEW.summary
             WHERE id = NEW.project_id AND summary IS DISTINCT FROM NEW.summary;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER files_summary AFTER INSERT OR UPDATE OF summary ON files
        FOR EACH ROW EXECUTE FUNCTION wheelcave_project_summary()""",
    """CREATE INDEX ix_projects_search ON projects
        USING gin (to_tsvector('simple'::regconfig, display_name || ' ' || coalesce(summary, '')))""",
]

_LATEST_SUMMARY = """UPDATE projects SET summary = (
    SELECT f.summary FROM files f WHERE f.project_id = projects.id AND f.summary IS NOT NULL
    ORDER BY f.id DESC LIMIT 1)"""


def upgrade() -> None:
    op.add_column('projects', sa.Column('summary', sa.String(length=512), nullable=True))
    statements = _SQLITE if op.get_bind().dialect.name == "sqlite" else _POSTGRES
    for statement in statements:
        op.execute(statement)
    # On SQLite this update also fills project_search (its update trigger fires per row).
    op.execute(_LATEST_SUMMARY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("files_summary_update", "files_summary_insert", "project_search_update",
                     "project_search_delete", "project_search_insert"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE project_search")
    else:
        op.execute("DROP INDEX ix_projects_search")
        op.execute("DROP TRIGGER files_summary ON files")
        op.execute("DROP FUNCTION wheelcave_project_summary()")
    op.drop_column('projects', 'summary')
