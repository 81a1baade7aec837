"""``wheelcave backup`` and ``wheelcave restore``: a data folder to a backup folder and back.

A backup folder holds:

- the database: SQLite's online backup of ``wheelcave.db`` (a consistent copy taken while the
  server runs), or on PostgreSQL a ``pg_dump --format=custom`` file (the documented way;
  ``pg_dump`` and ``pg_restore`` must be on the PATH);
- ``blobs/sha256/ab/cd/<sha256>``: every blob a file row of that database points at (the
  distribution files and their metadata files), copied (or hard-linked with ``--link``);
- ``wheelcave.toml`` when the data folder has one;
- ``manifest.json``: the format, the schema revision, and every blob with its size. It is
  written last, and the folder is built under another name and renamed into place, so a folder
  with a manifest is a complete backup.

Restore goes only into an empty place (no database, no blobs), checks every blob against its
name and the manifest before it writes anything, and brings the schema up to date after.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from wheelcave.db.engine import Database, head_revision
from wheelcave.db.repository import Repository
from wheelcave.errors import BadRequest
from wheelcave.storage.select import open_blob_store

__all__ = ["BackupReport", "DataPlace", "backup", "restore"]

FORMAT = 1
MANIFEST = "manifest.json"
_HEX = re.compile(r"[0-9a-f]{64}")
_SQLITE_FILE = "wheelcave.db"
_PG_FILE = "database.pgdump"


@dataclass(frozen=True)
class DataPlace:
    """Where a data folder's parts are (from the settings): the folder, its database, its blobs."""

    data_dir: Path
    database_url: str
    blob_dir: Path
    sqlite_synchronous: str = "full"
    #: The object store holding the blobs ("": the blob folder).
    storage_url: str = ""


@dataclass
class BackupReport:
    database: str
    blobs: int
    bytes: int
    files: int


def _blob_path(root: Path, sha256: str) -> Path:
    return root / "sha256" / sha256[:2] / sha256[2:4] / sha256


def _sqlite_path(database_url: str) -> Path:
    return Path(make_url(database_url).database or "")


def _plain_pg_url(database_url: str) -> str:
    """The libpq form of a PostgreSQL URL (no ``+driver``), for pg_dump and pg_restore."""
    url = make_url(database_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _run(cmd: list[str], what: str) -> None:
    if shutil.which(cmd[0]) is None:
        raise BadRequest(f"{what} needs {cmd[0]} on the PATH (PostgreSQL's client tools).")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BadRequest(f"{cmd[0]} failed: {last}")


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy while writers go on."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (the server turns WAL back on)
        finally:
            dst.close()
    finally:
        src.close()


def _hashes_in_sqlite(path: Path) -> tuple[set[str], int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT sha256, metadata_sha256 FROM files").fetchall()
    finally:
        conn.close()
    return {h for row in rows for h in row if h}, len(rows)


async def _hashes_in_database(settings: DataPlace) -> tuple[set[str], int]:
    db = Database(settings.database_url)
    try:
        repo = Repository(db)
        return await repo.referenced_hashes(), (await repo.table_counts(["files"]))["files"]
    finally:
        await db.dispose()


def _empty_or_missing(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


async def backup(settings: DataPlace, dest: Path, *, link: bool = False, version: str = "") -> BackupReport:
    """Write a backup of ``settings``' data to the folder ``dest`` (which must not exist, or be
    empty)."""
    dest = dest.absolute()
    if not _empty_or_missing(dest):
        raise BadRequest(f"{dest} is not empty: a backup goes into a new folder.")
    blob_root = settings.blob_dir
    if blob_root.resolve() == dest.resolve() or dest.resolve().is_relative_to(settings.data_dir.resolve()):
        raise BadRequest(f"{dest} is inside the data folder: put the backup somewhere else.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        sqlite = settings.database_url.startswith("sqlite")
        if sqlite:
            source = _sqlite_path(settings.database_url)
            if not source.is_file():
                raise BadRequest(f"No database at {source}: nothing to back up.")
            _sqlite_backup(source, work / _SQLITE_FILE)
            hashes, files = _hashes_in_sqlite(work / _SQLITE_FILE)
        else:
            _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(work / _PG_FILE),
                  _plain_pg_url(settings.database_url)], "Backing up PostgreSQL")
            hashes, files = await _hashes_in_database(settings)  # a superset of the dump's
        blobs: list[tuple[str, int]] = []
        total = 0
        store = open_blob_store(blob_root, settings.storage_url)
        for sha in sorted(hashes):
            try:
                source_blob = store.local_path(sha)
            except FileNotFoundError:
                continue  # a mirror file never downloaded: its row lists it, no bytes to keep
            target = _blob_path(work / "blobs", sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if source_blob is None:  # an object store: through its reader
                    with store.open(sha) as fh, target.open("xb") as out:
                        shutil.copyfileobj(fh, out, 1024 * 1024)
                elif link:
                    os.link(source_blob, target)
                else:
                    shutil.copyfile(source_blob, target)
            except FileNotFoundError:
                if source_blob is None:
                    continue  # not in the object store: never downloaded
                raise BadRequest(f"Blob {sha} vanished while it was copied (a gc ran?): run the backup again.") from None
            size = target.stat().st_size
            blobs.append((sha, size))
            total += size
        config = settings.data_dir / "wheelcave.toml"
        if config.is_file():
            shutil.copyfile(config, work / "wheelcave.toml")
        manifest: dict[str, Any] = {
            "format": FORMAT, "wheelcave": version, "created": datetime.now(UTC).isoformat(),
            "database": "sqlite" if sqlite else "postgresql", "schema": head_revision(), "files": files,
            "blobs": blobs,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if dest.exists():
            dest.rmdir()
        work.rename(dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupReport("sqlite" if sqlite else "postgresql", len(blobs), total, files)


def _read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BadRequest(f"{source} is not a wheelcave backup (no {MANIFEST}).") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{source / MANIFEST} does not parse: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadRequest(f"{source / MANIFEST}: not a backup of format {FORMAT}.")
    blobs = manifest.get("blobs")
    if not isinstance(blobs, list) or not all(
        isinstance(b, list) and len(b) == 2 and isinstance(b[0], str) and _HEX.fullmatch(b[0])
        and isinstance(b[1], int) and b[1] >= 0 for b in blobs
    ):
        raise BadRequest(f"{source / MANIFEST}: its blob list is not [sha256, size] pairs.")
    if manifest.get("database") not in ("sqlite", "postgresql"):
        raise BadRequest(f"{source / MANIFEST}: unknown database kind {manifest.get('database')!r}.")
    return manifest


def _check_blob(path: Path, sha256: str, size: int) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return "missing"
    if path.stat().st_size != size:
        return f"{path.stat().st_size} bytes, the manifest says {size}"
    if digest.hexdigest() != sha256:
        return "its content does not match its sha256"
    return None


async def _database_is_empty(settings: DataPlace) -> bool:
    db = Database(settings.database_url)
    try:
        async with db.read() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await db.dispose()
    return not names


async def restore(source: Path, settings: DataPlace) -> BackupReport:
    """Restore the backup folder ``source`` into ``settings``' empty data folder (and database)."""
    source = source.absolute()
    manifest = _read_manifest(source)
    kind = manifest["database"]
    sqlite = settings.database_url.startswith("sqlite")
    if (kind == "sqlite") != sqlite:
        raise BadRequest(f"This backup holds a {kind} database; the target is "
                         f"{'SQLite' if sqlite else 'PostgreSQL'} (set [database] url to match).")
    if str(manifest.get("schema", "")) > head_revision():
        raise BadRequest(f"This backup's schema ({manifest.get('schema')}) is newer than this wheelcave's "
                         f"({head_revision()}): restore it with the version that made it.")
    blob_root = settings.blob_dir
    target_db = _sqlite_path(settings.database_url) if sqlite else None
    if target_db is not None and target_db.exists():
        raise BadRequest(f"{target_db} exists: restore into an empty data folder.")
    store = open_blob_store(blob_root, settings.storage_url)
    if next(iter(store.iter_blobs()), None) is not None:
        where = settings.storage_url or blob_root
        raise BadRequest(f"{where} holds blobs: restore into an empty data folder (and store).")
    if not sqlite and not await _database_is_empty(settings):
        raise BadRequest("The target PostgreSQL database has tables: restore into an empty database.")
    database_file = source / (_SQLITE_FILE if sqlite else _PG_FILE)
    if not database_file.is_file():
        raise BadRequest(f"{database_file} is missing from the backup.")
    # Every blob is checked before anything is written.
    problems = [(sha, why) for sha, size in manifest["blobs"]
                if (why := _check_blob(_blob_path(source / "blobs", sha), sha, size))]
    if problems:
        sha, why = problems[0]
        raise BadRequest(f"{len(problems)} blob(s) of the backup are damaged, e.g. {sha}: {why}. Nothing was restored.")
    written: list[Path] = []
    stored: list[str] = []
    total = 0
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for sha, size in manifest["blobs"]:
            temp = store.new_temp()
            try:
                with _blob_path(source / "blobs", sha).open("rb") as fh:
                    while chunk := fh.read(1024 * 1024):
                        temp.write(chunk)
                if store.commit(temp) != sha:  # checked above; changed since
                    raise BadRequest(f"Blob {sha} of the backup changed while it was restored. Nothing was restored.")
            except BaseException:
                temp.discard()
                raise
            stored.append(sha)
            total += size
        config = source / "wheelcave.toml"
        if config.is_file() and not (settings.data_dir / "wheelcave.toml").exists():
            shutil.copyfile(config, settings.data_dir / "wheelcave.toml")
            written.append(settings.data_dir / "wheelcave.toml")
        if target_db is not None:
            partial = target_db.with_name(target_db.name + ".restoring")
            target_db.parent.mkdir(parents=True, exist_ok=True)
            _sqlite_backup(database_file, partial)
            written.append(partial)
            partial.rename(target_db)
            written.append(target_db)
        else:
            _run(["pg_restore", "--no-owner", "--exit-on-error", "--dbname", _plain_pg_url(settings.database_url),
                  str(database_file)], "Restoring into PostgreSQL")
        db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        try:
            await db.migrate()  # a backup of an older version: its schema brought up to date
        finally:
            await db.dispose()
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for sha in stored:
            store.delete(sha)
        raise
    return BackupReport(kind, len(manifest["blobs"]), total, int(manifest.get("files", 0)))
