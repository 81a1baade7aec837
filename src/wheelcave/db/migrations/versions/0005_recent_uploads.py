"""an index on files (index_id, upload_time): the home page's recent uploads without a scan

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:10:00
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_files_index_upload_time', 'files', ['index_id', 'upload_time'])


def downgrade() -> None:
    op.drop_index('ix_files_index_upload_time', table_name='files')
