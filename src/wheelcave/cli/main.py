"""``wheelcave``: serve, and manage indexes, users and tokens (with or without a running server).

Data goes to stdout, messages to stderr; errors exit 1 with a one-line ``error:`` message.
"""

from __future__ import annotations

import fcntl
import logging
import logging.config
import os
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from wheelcave import __version__
from wheelcave.cli import accounts, backups, transfer
from wheelcave.cli.common import ConfigFile, DataDir, fail, run, settings_for, split
from wheelcave.config import Settings
from wheelcave.errors import WheelcaveError
from wheelcave.services import Services

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="wheelcave: a private Python package index.")
index_app = typer.Typer(no_args_is_help=True, help="Manage indexes.")
app.add_typer(index_app, name="index")
accounts.register(app)
transfer.register(app)
backups.register(app)

PASSWORD_FILE = "initial-admin-password"


def _write_initial_password(data_dir: Path, password: str) -> Path:
    path = data_dir / PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    os.chmod(path, 0o600)
    return path


def _lock_data_dir(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise fail(
            f"another 'wheelcave serve' is running on {data_dir}",
            "stop it, or use --workers N to run several worker processes",
        ) from None
    return fd


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8080].")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [default: 1].")] = None,
    engine: Annotated[str | None, typer.Option(help="HTTP server: uvicorn or granian [default: uvicorn].")] = None,
    access_log: Annotated[bool | None, typer.Option("--access-log/--no-access-log", help="Log every request [default: on].")] = None,
    log_format: Annotated[str | None, typer.Option(help="Log lines as text or json [default: text].")] = None,
    tls_cert: Annotated[str | None, typer.Option(help="Serve HTTPS with this PEM certificate (chain).")] = None,
    tls_key: Annotated[str | None, typer.Option(help="The certificate's PEM private key.")] = None,
) -> None:
    """Start the server (creates the data folder, the schema and an admin user on first run)."""
    settings = settings_for(data_dir, config, host=host, port=port, workers=workers, engine=engine, access_log=access_log,
                            log_format=log_format,
                            tls_cert=tls_cert, tls_key=tls_key)
    from wheelcave.cli.engines import EngineMissing, check, serve_with
    from wheelcave.web.requestid import log_config

    try:
        check(settings)
    except EngineMissing as exc:
        raise fail(str(exc)) from None
    lock_fd = _lock_data_dir(settings.data_dir)
    logging.config.dictConfig(log_config(settings.log_format))
    starting = logging.getLogger("wheelcave.serve")

    def say(line: str) -> None:
        """A start-up line: plain on a terminal's text log, one JSON object in a JSON log."""
        if settings.log_format == "json":
            starting.info(line.strip())
        else:
            typer.echo(line, err=True)

    async def bootstrap(svc: Services) -> str | None:
        from wheelcave.indexes.admin import IndexAdmin

        svc.blobs.remove_stale_temps()
        for line in await IndexAdmin(svc.repo).apply_declared(settings.declared_indexes):
            say(f"  config file: {line}")
        if settings.storage_url:  # a wrong bucket or credentials: said now, not at the first upload
            unusable = svc.blobs.check()
            say(f"  blobs in {settings.storage_url}" + (f": NOT USABLE YET ({unusable}); /ready says so"
                                                        if unusable else ""))
        return await svc.auth.ensure_initial_admin()

    password = run(settings, bootstrap)
    scheme = "https" if settings.tls_cert else "http"
    base = f"{scheme}://{settings.host if ':' not in settings.host else f'[{settings.host}]'}:{settings.port}/"
    say(f"wheelcave {__version__} serving {settings.data_dir}")
    say(f"  index URL for pip and uv: {base}simple/")
    say(f"  upload URL for twine:     {base}legacy/")
    if password:
        path = _write_initial_password(settings.data_dir, password)
        # Not the password itself: logs travel further than a 0600 file.
        say(f"  first run: user 'admin', password in {path} (readable by this user only)")
    serve_with(settings)
    os.close(lock_fd)


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (a terminal is asked before anything is deleted).")]


def _confirm(question: str, yes: bool) -> None:
    """Ask before deleting, when a person is at a terminal; scripts pass --yes (or have no terminal)."""
    if yes or not sys.stdin.isatty():
        return
    if not typer.confirm(question, default=False):
        raise fail("nothing deleted")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def check(
    hashes: Annotated[bool, typer.Option("--hashes", help="Also re-hash every blob (reads everything).")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Check that every listed file has its bytes; exit 1 on a problem. Mirror files not
    downloaded yet are counted apart (they are normal), so this can run from cron."""
    from wheelcave.jobs.check import CheckCounts, Problem, check_store

    counts = CheckCounts()

    async def go(svc: Services) -> list[Problem]:
        return [p async for p in check_store(svc.repo, svc.blobs, hashes=hashes, counts=counts)]

    problems = run(settings_for(data_dir, config), go)
    for p in problems:
        typer.echo(f"{p.filename}\t{p.sha256}\t{p.message}")
    summary = f"{counts.stored} files with their bytes, {counts.listed_only} mirror files listed and not cached yet"
    if problems:
        raise fail(f"{len(problems)} problem(s) found; {summary}")
    typer.echo(f"ok: {summary}", err=True)


# ---------------------------------------------------------------- indexes


@index_app.command("list")
def index_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """List the indexes: name, kind and settings (upstream passwords masked)."""
    from wheelcave.core.redact import mask_url

    records = run(settings_for(data_dir, config), lambda svc: svc.repo.list_indexes())
    for r in records:
        items = []
        for k, v in sorted(r.config.items()):
            shown = ",".join(map(str, v)) if isinstance(v, list) else v
            items.append(f"{k}={mask_url(shown) if k == 'upstream' else shown}")
        typer.echo(f"{r.name}\t{r.kind}\t{' '.join(items)}".rstrip())


def _policy_options(
    immutable: bool | None, allow_delete: bool | None, max_file_size: str | None, prerelease_keep: int | None,
) -> dict[str, Any]:
    from wheelcave.config import parse_size

    out: dict[str, Any] = {}
    if immutable is not None:
        out["immutable"], out["allow_overwrite"] = (True, False) if immutable else (False, True)
    if allow_delete is not None:
        out["allow_delete"] = allow_delete
    if max_file_size is not None:
        out["max_file_size"] = parse_size(max_file_size)
    if prerelease_keep is not None:
        out["prerelease_keep"] = prerelease_keep
    return out


def _cooldown_options(cooldown: str | None, exempt: str | None) -> dict[str, Any]:
    from wheelcave.config import parse_duration

    out: dict[str, Any] = {}
    if cooldown is not None:
        out["cooldown"] = 0.0 if cooldown.strip().lower() in {"off", "none", "0"} else parse_duration(cooldown)
    if exempt is not None:
        out["cooldown_exempt"] = split(exempt)
    return out


Immutable = Annotated[bool | None, typer.Option("--immutable/--allow-overwrite", help="Hosted: never take a filename twice (default), or replace files on re-upload.")]
AllowDelete = Annotated[bool | None, typer.Option("--allow-delete/--no-delete", help="Hosted: whether files may be deleted.")]
MaxFileSize = Annotated[str | None, typer.Option(help="Hosted: largest upload, e.g. 500MiB.")]
PrereleaseKeep = Annotated[int | None, typer.Option(help="Hosted: gc keeps the newest N pre-releases per project.")]
Cooldown = Annotated[str | None, typer.Option(help="Mirror/virtual: hide upstream files younger than this, e.g. 7d; 'off' turns it off.")]
CooldownExempt = Annotated[str | None, typer.Option(help="Mirror/virtual: projects exempt from the cooldown, comma-separated (replaces the list; '' empties it).")]
FetchAhead = Annotated[bool | None, typer.Option("--fetch-ahead/--no-fetch-ahead", help="Mirror: fetch the pages of a served metadata file's unconditional dependencies at once [default: off].")]
AllowUpstream = Annotated[str | None, typer.Option(help="Virtual: private names also taken from mirror members.")]


@index_app.command("create")
def index_create(
    name: str,
    kind: Annotated[str, typer.Option("--kind", help="hosted, mirror or virtual.")],
    upstream: Annotated[str | None, typer.Option(help="Mirror: the upstream simple index URL ('pip' = what pip uses).")] = None,
    ttl: Annotated[float | None, typer.Option(help="Mirror: seconds a page stays fresh [default: 600].")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Mirror: never contact the upstream.")] = False,
    timeout: Annotated[float | None, typer.Option(help="Mirror: seconds to wait for the upstream [default: 30].")] = None,
    members: Annotated[str | None, typer.Option(help="Virtual: member indexes in order, comma-separated.")] = None,
    upload_to: Annotated[str | None, typer.Option("--upload-to", help="Virtual: the hosted member that takes uploads.")] = None,
    allow_upstream: AllowUpstream = None,
    immutable: Immutable = None,
    allow_delete: AllowDelete = None,
    max_file_size: MaxFileSize = None,
    prerelease_keep: PrereleaseKeep = None,
    cooldown: Cooldown = None,
    cooldown_exempt: CooldownExempt = None,
    fetch_ahead: FetchAhead = None,
    private: Annotated[bool, typer.Option("--private", help="Readable only by administrators until 'wheelcave acl grant'.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create an index (readable by anyone unless --private; hosted: uploads by any signed-in user)."""
    from wheelcave.indexes.admin import IndexAdmin

    settings: dict[str, Any] = {}
    if kind == "mirror":
        settings = {"upstream": upstream, "ttl": ttl, "offline": offline or None, "timeout": timeout,
                    "fetch_ahead": fetch_ahead, **_cooldown_options(cooldown, cooldown_exempt)}
    elif kind == "virtual":
        settings = {"members": split(members), "upload_to": upload_to, "allow_upstream": split(allow_upstream),
                    **_cooldown_options(cooldown, cooldown_exempt)}
    elif kind == "hosted":
        settings = _policy_options(immutable, allow_delete, max_file_size, prerelease_keep)
    given = {
        "--upstream": upstream, "--ttl": ttl, "--offline": offline or None, "--timeout": timeout,
        "--members": members, "--upload-to": upload_to, "--allow-upstream": allow_upstream,
        "--immutable/--allow-overwrite": immutable, "--allow-delete/--no-delete": allow_delete,
        "--max-file-size": max_file_size, "--prerelease-keep": prerelease_keep,
        "--cooldown": cooldown, "--cooldown-exempt": cooldown_exempt, "--fetch-ahead/--no-fetch-ahead": fetch_ahead,
    }
    takes = {
        "mirror": {"--upstream", "--ttl", "--offline", "--timeout", "--cooldown", "--cooldown-exempt",
                   "--fetch-ahead/--no-fetch-ahead"},
        "virtual": {"--members", "--upload-to", "--allow-upstream", "--cooldown", "--cooldown-exempt"},
        "hosted": {"--immutable/--allow-overwrite", "--allow-delete/--no-delete", "--max-file-size", "--prerelease-keep"},
    }
    extra = sorted(k for k, v in given.items() if v is not None and k not in takes.get(kind, set(given)))
    if extra:
        raise fail(f"a {kind} index does not take {', '.join(extra)}")
    settings = {k: v for k, v in settings.items() if v is not None}
    from wheelcave.indexes.admin import default_grants

    grants = default_grants(kind, private=private)
    run(settings_for(data_dir, config), lambda svc: IndexAdmin(svc.repo).create(name, kind, settings, actor="cli", grants=grants))
    typer.echo(f"index {name!r} created", err=True)


@index_app.command("update")
def index_update(
    name: str,
    upstream: Annotated[str | None, typer.Option(help="Mirror: the upstream simple index URL.")] = None,
    ttl: Annotated[float | None, typer.Option(help="Mirror: seconds a page stays fresh.")] = None,
    offline: Annotated[bool | None, typer.Option("--offline/--online", help="Mirror: stop or resume contacting the upstream.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Mirror: seconds to wait for the upstream.")] = None,
    members: Annotated[str | None, typer.Option(help="Virtual: member indexes in order, comma-separated.")] = None,
    upload_to: Annotated[str | None, typer.Option("--upload-to", help="Virtual: the hosted member that takes uploads.")] = None,
    allow_upstream: AllowUpstream = None,
    immutable: Immutable = None,
    allow_delete: AllowDelete = None,
    max_file_size: MaxFileSize = None,
    prerelease_keep: PrereleaseKeep = None,
    cooldown: Cooldown = None,
    cooldown_exempt: CooldownExempt = None,
    fetch_ahead: FetchAhead = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Change an index's settings (a running server picks the change up within a second)."""
    from wheelcave.indexes.admin import IndexAdmin

    changes = {"upstream": upstream, "ttl": ttl, "offline": offline, "timeout": timeout, "fetch_ahead": fetch_ahead,
               "members": split(members),
               "upload_to": upload_to, "allow_upstream": split(allow_upstream),
               **_policy_options(immutable, allow_delete, max_file_size, prerelease_keep),
               **_cooldown_options(cooldown, cooldown_exempt)}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise fail("nothing to change")
    run(settings_for(data_dir, config), lambda svc: IndexAdmin(svc.repo).update(name, changes, actor="cli"))
    typer.echo(f"index {name!r} updated", err=True)


@index_app.command("show")
def index_show(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Show one index's kind and settings as JSON."""
    import json

    from wheelcave.core.redact import mask_url

    record = run(settings_for(data_dir, config), lambda svc: svc.repo.find_index(name))
    if record is None:
        raise fail(f"no index named {name!r}")
    shown = dict(record.config)
    if isinstance(shown.get("upstream"), str):
        if shown["upstream"] == "pip":  # what pip uses here, found as the server finds it
            from wheelcave.upstream.discovery import pip_index_url

            shown["upstream"] = f"{pip_index_url()} (pip's index)"
        shown["upstream"] = mask_url(shown["upstream"])
    typer.echo(json.dumps({"name": record.name, "kind": record.kind, "config": shown}, indent=2))


@index_app.command("delete")
def index_delete(name: str, yes: Yes = False, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Delete an index and its listings (the bytes stay until gc)."""
    from wheelcave.indexes.admin import IndexAdmin

    _confirm(f"Delete index {name!r} and everything it lists?", yes)

    run(settings_for(data_dir, config), lambda svc: IndexAdmin(svc.repo).delete(name, actor="cli"))
    typer.echo(f"index {name!r} deleted", err=True)


@index_app.command("refresh")
def index_refresh(
    name: str,
    projects: Annotated[list[str] | None, typer.Argument(help="Projects to re-fetch now (default: every cached one).")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Re-fetch a mirror's project pages from its upstream now."""
    from wheelcave.core.names import normalize
    from wheelcave.indexes.mirror import MirrorIndex

    async def go(svc: Services) -> list[str]:
        index = await svc.registry.get(name)
        if not isinstance(index, MirrorIndex):
            raise WheelcaveError(f"index {name!r} is not a mirror")
        names = [normalize(p) for p in projects] if projects else [n for n, _ in await index.list_projects()]
        for project in names:
            await index.refresh(project)
        return names

    for project in run(settings_for(data_dir, config), go):
        typer.echo(f"refreshed {project}")


def _yank(index: str, project: str, version: str, reason: str | None, settings: Settings, *, yanked: bool) -> list[str]:
    async def go(svc: Services) -> list[str]:
        target = await svc.registry.upload_target(index)
        return await target.set_yanked(project, version, yanked=yanked, reason=reason, actor="cli")

    return run(settings, go)


@app.command()
def yank(
    index: str,
    project: str,
    version: str,
    reason: Annotated[str | None, typer.Option(help="Why (shown to pip and uv users).")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Yank a release (PEP 592): installers skip it unless it is pinned exactly."""
    for name in _yank(index, project, version, reason, settings_for(data_dir, config), yanked=True):
        typer.echo(f"yanked {name}")


@app.command()
def unyank(index: str, project: str, version: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Undo a yank."""
    for name in _yank(index, project, version, None, settings_for(data_dir, config), yanked=False):
        typer.echo(f"unyanked {name}")


@app.command()
def delete(
    index: str,
    project: str,
    version: Annotated[str | None, typer.Argument(help="Only this release.")] = None,
    file: Annotated[str | None, typer.Option("--file", help="Only this file.")] = None,
    yes: Yes = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Delete a project, a release or a file from a hosted index."""
    what = file or (f"{project} {version}" if version else f"every release of {project}")
    _confirm(f"Delete {what} from {index!r}?", yes)
    async def go(svc: Services) -> list[str]:
        target = await svc.registry.upload_target(index)
        return await target.delete(project, version, file, actor="cli")

    for name in run(settings_for(data_dir, config), go):
        typer.echo(f"deleted {name}")


@app.command()
def promote(
    project: str,
    version: str,
    source: Annotated[str, typer.Option("--from", help="The hosted index the release is in.")],
    target: Annotated[str, typer.Option("--to", help="The hosted index to list it in.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Promote a release: list its files in another hosted index (no bytes are copied)."""
    from wheelcave.indexes.promotion import promote as promote_release

    names = run(settings_for(data_dir, config),
                lambda svc: promote_release(svc.registry, project, version, source, target, actor="cli"))
    for name in names:
        typer.echo(f"promoted {name}")
    if not names:
        typer.echo(f"{project} {version} is in {target!r} already", err=True)


@app.command()
def audit(
    index: Annotated[str | None, typer.Option(help="Only this index.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. file.upload.")] = None,
    limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 50,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Show the audit log: who changed what, when, from where."""
    entries = run(settings_for(data_dir, config),
                   lambda svc: svc.repo.audit_entries(limit, index=index, actor=actor, action=action))
    for e in entries:
        where = "/".join(x for x in (e["index_name"], e["project"], e["filename"]) if x)
        typer.echo(f"{e['at']:%Y-%m-%d %H:%M:%S}\t{e['actor'] or '-'}\t{e['action']}\t{where or '-'}\t{e['address'] or '-'}")


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    grace: Annotated[float, typer.Option(help="Spare blobs younger than this many seconds.")] = 3600,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Apply pre-release retention and remove bytes no index lists any more."""
    from wheelcave.indexes.hosted import HostedIndex
    from wheelcave.jobs.gc import GcReport, collect_garbage

    async def go(svc: Services) -> GcReport:
        hosted = [i for r in await svc.registry.names() if isinstance(i := await svc.registry.get(r.name), HostedIndex)]
        return await collect_garbage(hosted, svc.repo, svc.blobs, grace=grace, dry_run=dry_run)

    report = run(settings_for(data_dir, config), go)
    for name in report.deleted_files:
        typer.echo(f"deleted {name}")
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {report.removed_blobs} blobs ({report.freed_bytes} bytes)", err=True)


def main() -> None:
    """Every failure a user can cause is one ``error:`` line and exit 1 (typer's own usage
    errors: exit 2), never a traceback."""
    from wheelcave.config import ConfigError
    from wheelcave.storage.base import StoreUnavailable

    try:
        app()
    except (ConfigError, WheelcaveError, StoreUnavailable) as exc:
        typer.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
        hint = getattr(exc, "hint", None)
        if hint:
            typer.echo(f"hint: {hint}", err=True)
        raise SystemExit(1) from None
