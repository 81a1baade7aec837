"""mirror indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:59:03.243802
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mirror_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('index_id', sa.Integer(), nullable=False),
    sa.Column('project', sa.String(length=200), nullable=False),
    sa.Column('etag', sa.String(length=256), nullable=True),
    sa.Column('last_modified', sa.String(length=64), nullable=True),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['index_id'], ['indexes.id'], name=op.f('fk_mirror_pages_index_id_indexes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mirror_pages')),
    sa.UniqueConstraint('index_id', 'project', name=op.f('uq_mirror_pages_index_id_project'))
    )
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('upstream_metadata', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('origin_removed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.alter_column('upload_time',
               existing_type=sa.DateTime(timezone=True),
               nullable=True)
        batch_op.alter_column('size', existing_type=sa.BigInteger(), nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.alter_column('upload_time',
               existing_type=sa.DateTime(timezone=True),
               nullable=False)
        batch_op.alter_column('size', existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column('origin_removed')
        batch_op.drop_column('upstream_metadata')
        batch_op.drop_column('origin_url')

    op.drop_table('mirror_pages')
