"""policies and scoped tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:23:27.991422
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('file_tombstones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('index_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['index_id'], ['indexes.id'], name=op.f('fk_file_tombstones_index_id_indexes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_tombstones')),
    sa.UniqueConstraint('index_id', 'filename', name=op.f('uq_file_tombstones_index_id_filename'))
    )
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.String(length=512), nullable=True))
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('index_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('permissions', sa.String(length=128), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('permissions')
        batch_op.drop_column('index_name')

    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_column('summary')
    op.drop_table('file_tombstones')
