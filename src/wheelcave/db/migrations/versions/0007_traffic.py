"""traffic: per-index counts in five-minute buckets, for the cache and traffic charts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 20:10:00

Every server process adds its counts to the bucket's row (an upsert that adds), so replicas
sum up; rows older than the kept window are pruned by the processes that write.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

COUNTS = ("page_hits", "page_fetches", "page_stale", "page_missing", "file_hits", "file_misses",
          "bytes_cache", "bytes_upstream", "upstream_errors")


def upgrade() -> None:
    op.create_table(
        'traffic',
        sa.Column('index_name', sa.String(length=64), nullable=False),
        sa.Column('bucket', sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in COUNTS),
        sa.PrimaryKeyConstraint('index_name', 'bucket'),
    )


def downgrade() -> None:
    op.drop_table('traffic')
