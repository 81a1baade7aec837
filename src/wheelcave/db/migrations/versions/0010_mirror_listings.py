"""mirror listings: a mirror page's files as one record (mirror_pages.listing, .listed); file rows
only for the files clients ask for

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:30:00

A page stored before this revision has no listing (NULL): its rows are its whole listing, as
before. Its next fetch writes a listing; the rows it has stay (they are files clients asked for,
or files of an older store), and new files get no row until a client asks for one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mirror_pages') as batch:
        batch.add_column(sa.Column('listing', sa.LargeBinary, nullable=True))
        batch.add_column(sa.Column('listed', sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mirror_pages') as batch:
        batch.drop_column('listed')
        batch.drop_column('listing')
