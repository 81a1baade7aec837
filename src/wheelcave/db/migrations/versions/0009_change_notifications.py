"""change notifications: on PostgreSQL, NOTIFY wheelcave_changes when index definitions or
generations change ('index') and when credentials or grants change ('auth')

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00

Statement-level triggers, so every writer notifies (a server, a CLI command, an import) and a
transaction that bumps many rows sends one notification per kind, at commit. Each replica
LISTENs (wheelcave.db.notify) and re-reads at once; polling stays as the fallback. SQLite has
no notifications: there one machine's processes poll.
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_POSTGRES = [
    """CREATE FUNCTION wheelcave_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('wheelcave_changes', TG_ARGV[0]);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER indexes_notify AFTER INSERT OR UPDATE OR DELETE ON indexes
        FOR EACH STATEMENT EXECUTE FUNCTION wheelcave_notify('index')""",
    """CREATE TRIGGER auth_state_notify AFTER INSERT OR UPDATE ON auth_state
        FOR EACH STATEMENT EXECUTE FUNCTION wheelcave_notify('auth')""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _POSTGRES:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER auth_state_notify ON auth_state")
        op.execute("DROP TRIGGER indexes_notify ON indexes")
        op.execute("DROP FUNCTION wheelcave_notify()")
