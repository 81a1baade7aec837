"""mirror pages know their highest version (mirror_pages.latest): search names it for a project
whose files have no rows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:40:00

A page stored before this revision has NULL until its next fetch; search then names the highest
version among the project's rows, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mirror_pages') as batch:
        batch.add_column(sa.Column('latest', sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mirror_pages') as batch:
        batch.drop_column('latest')
