"""``wheelcave backup DEST`` and ``wheelcave restore SRC``: see :mod:`wheelcave.jobs.backup`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from wheelcave import __version__
from wheelcave.cli.common import ConfigFile, DataDir, fail, settings_for
from wheelcave.config import Settings
from wheelcave.errors import WheelcaveError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)


def _place(settings: Settings):  # type: ignore[no-untyped-def]
    from wheelcave.jobs.backup import DataPlace

    return DataPlace(settings.data_dir, settings.database_url, settings.blob_dir, settings.sqlite_synchronous,
                     settings.storage_url)


def backup(
    dest: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
    link: Annotated[bool, typer.Option("--link", help="Hard-link blobs instead of copying them (same disk only).")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Back up the database (SQLite's online backup, or pg_dump) and every blob a file points
    at, with a manifest; safe while the server runs."""
    from wheelcave.jobs.backup import backup as run_backup

    settings = settings_for(data_dir, config)
    try:
        report = asyncio.run(run_backup(_place(settings), dest, link=link, version=__version__))
    except WheelcaveError as exc:
        raise fail(exc.message) from None
    typer.echo(f"backed up {report.files} file rows and {report.blobs} blobs ({report.bytes} bytes) "
               f"of the {report.database} database to {dest}", err=True)


def restore(
    source: Annotated[Path, typer.Argument(help="A folder written by wheelcave backup.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Restore a backup into an empty data folder (and, on PostgreSQL, an empty database);
    every blob is checked before anything is written."""
    from wheelcave.jobs.backup import restore as run_restore

    settings = settings_for(data_dir, config)
    try:
        report = asyncio.run(run_restore(source, _place(settings)))
    except WheelcaveError as exc:
        raise fail(exc.message) from None
    typer.echo(f"restored {report.files} file rows and {report.blobs} blobs ({report.bytes} bytes) "
               f"into {settings.data_dir}", err=True)
