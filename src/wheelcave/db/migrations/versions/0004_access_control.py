"""access control: groups, per-index grants, project owners, trusted publishers, token scope
and expiry, and the auth generation

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 11:50:00

Existing data keeps working as before: every index is readable by anyone (``anonymous_read``
still switches anonymous reads off server-wide), any signed-in user may upload to a hosted
index, past uploaders own their projects, and a token's old one-index scope becomes its scope.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_groups')),
        sa.UniqueConstraint('name', name=op.f('uq_groups_name')),
    )
    op.create_table(
        'group_members',
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_group_members_group_id_groups'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_group_members_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_group_members')),
    )
    op.create_table(
        'acl_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('index_id', sa.Integer(), nullable=False),
        sa.Column('principal', sa.String(length=80), nullable=False),
        sa.Column('permission', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['index_id'], ['indexes.id'], name=op.f('fk_acl_entries_index_id_indexes'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_acl_entries')),
        sa.UniqueConstraint('index_id', 'principal', 'permission', name=op.f('uq_acl_entries_index_id_principal_permission')),
    )
    op.create_table(
        'project_owners',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('index_id', sa.Integer(), nullable=False),
        sa.Column('project', sa.String(length=200), nullable=False),
        sa.Column('principal', sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(['index_id'], ['indexes.id'], name=op.f('fk_project_owners_index_id_indexes'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_project_owners')),
        sa.UniqueConstraint('index_id', 'project', 'principal', name=op.f('uq_project_owners_index_id_project_principal')),
    )
    op.create_table(
        'trusted_publishers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('index_id', sa.Integer(), nullable=False),
        sa.Column('project', sa.String(length=200), nullable=True),
        sa.Column('issuer', sa.String(length=512), nullable=False),
        sa.Column('claims', sa.JSON(), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['index_id'], ['indexes.id'], name=op.f('fk_trusted_publishers_index_id_indexes'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_trusted_publishers')),
    )
    auth_state = op.create_table(
        'auth_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_state')),
    )
    op.bulk_insert(auth_state, [{'id': 1, 'generation': 0}])

    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('publisher_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', _TS, nullable=True))
        batch_op.add_column(sa.Column('scope', sa.JSON(), nullable=True))
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(op.f('fk_tokens_publisher_id_trusted_publishers'), 'trusted_publishers',
                                    ['publisher_id'], ['id'], ondelete='CASCADE')

    conn = op.get_bind()
    tokens = sa.table('tokens', sa.column('id'), sa.column('index_name'), sa.column('permissions'),
                      sa.column('scope', sa.JSON()))
    for row in conn.execute(sa.select(tokens.c.id, tokens.c.index_name, tokens.c.permissions)).all():
        if row.index_name is not None:
            perms = sorted(p for p in (row.permissions or 'upload').split(',') if p)
            scope = {'indexes': [row.index_name], 'projects': None, 'permissions': perms}
            conn.execute(sa.update(tokens).where(tokens.c.id == row.id).values(scope=scope))
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('permissions')
        batch_op.drop_column('index_name')

    # What every index allowed before: reads for anyone, uploads for any user on hosted ones.
    indexes = sa.table('indexes', sa.column('id'), sa.column('kind'))
    acl = sa.table('acl_entries', sa.column('index_id'), sa.column('principal'), sa.column('permission'))
    grants = []
    for row in conn.execute(sa.select(indexes.c.id, indexes.c.kind)).all():
        grants.append({'index_id': row.id, 'principal': 'anonymous', 'permission': 'read'})
        if row.kind == 'hosted':
            grants.append({'index_id': row.id, 'principal': 'authenticated', 'permission': 'upload'})
    if grants:
        conn.execute(sa.insert(acl), grants)

    # Past uploaders own their projects.
    conn.execute(sa.text(
        "INSERT INTO project_owners (index_id, project, principal) "
        "SELECT DISTINCT f.index_id, p.name, 'user:' || u.name FROM files f "
        "JOIN projects p ON p.id = f.project_id JOIN indexes i ON i.id = f.index_id "
        "JOIN users u ON u.name = f.uploader WHERE i.kind = 'hosted'"
    ))


def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('index_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('permissions', sa.String(length=128), nullable=True))
        batch_op.drop_constraint(op.f('fk_tokens_publisher_id_trusted_publishers'), type_='foreignkey')
        batch_op.drop_column('scope')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('publisher_id')
    for table in ('auth_state', 'trusted_publishers', 'project_owners', 'acl_entries', 'group_members', 'groups'):
        op.drop_table(table)
