"""Alembic environment: migrations run on a connection handed in by ``Database.migrate``.

For ``alembic revision --autogenerate`` from a shell, set ``WHEELCAVE_MIGRATION_URL`` to a
synchronous URL (e.g. ``sqlite:////tmp/x.db``).
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from wheelcave.db.tables import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(os.environ["WHEELCAVE_MIGRATION_URL"])
    with engine.begin() as conn:
        _run(conn)
