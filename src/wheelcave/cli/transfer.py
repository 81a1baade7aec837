"""Bulk in and out: ``wheelcave import`` and ``wheelcave bundle create``.

Long commands show a progress bar on stderr (``--quiet`` hides it and the summary), print a
summary, and with ``--json`` write a machine-readable report to stdout. ``import`` exits 1
when anything was refused, 0 otherwise (already-there files are not a failure).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from wheelcave.cli.common import ConfigFile, DataDir, fail, run, settings_for
from wheelcave.services import Services

__all__ = ["register"]

bundle_app = typer.Typer(no_args_is_help=True, help="Air-gap bundles: files, metadata and a manifest in one tar.")

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary on stderr.")]
Json = Annotated[bool, typer.Option("--json", help="Write a JSON report to stdout.")]


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("export")(export)
    app.command("prefetch")(prefetch)
    app.add_typer(bundle_app, name="bundle")


def _progress(quiet: bool, total_bytes: int, what: str, *, files: bool = False):  # type: ignore[no-untyped-def]
    """A progress bar on stderr counting bytes (or files); returns it and its advance(n)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
    )

    columns = (MofNCompleteColumn(),) if files else (DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    progress = Progress(TextColumn("{task.description}"), BarColumn(), *columns,
                        console=Console(stderr=True), disable=quiet, transient=True)
    task = progress.add_task(what, total=total_bytes or None)
    return progress, lambda n: progress.update(task, advance=n)


def _targets(python: list[str] | None, platform: list[str] | None) -> list[Any]:
    """Every (Python, platform) pair asked for (default: this Python, linux); a platform nobody
    knows is one error line."""
    from wheelcave.jobs.prefetch import Target, platform_tags

    platforms = platform or ["linux"]
    for p in platforms:
        try:
            platform_tags(p)
        except ValueError as exc:
            raise fail(str(exc)) from None
    pythons = python or [f"{sys.version_info.major}.{sys.version_info.minor}"]
    return [Target(py, plat) for py in pythons for plat in platforms]


def _index_url(settings: Any, server: str | None, index: str) -> str:
    """An index's simple URL on the running server (--server, else public_url, else host:port)."""
    base = server or settings.public_url or f"http://{settings.host}:{settings.port}"
    return f"{base.rstrip('/')}/index/{index}/simple/"


def _stat_all(paths: list[Path]) -> dict[Path, tuple[int, int]]:
    """(size, mtime) of every distribution file under ``paths``."""
    from wheelcave.jobs.importer import discover

    found = {}
    for p in discover(paths):
        try:
            st = p.stat()
        except OSError:
            continue
        found[p] = (st.st_size, st.st_mtime_ns)
    return found


def _source_bytes(paths: list[Path]) -> int:
    from wheelcave.jobs.importer import discover

    total = 0
    for p in discover(paths):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def import_(
    index: Annotated[str, typer.Argument(help="The hosted index to fill (or a virtual index with an upload target).")],
    paths: Annotated[list[Path], typer.Argument(help="Folders (searched recursively: wheelhouses, pip's wheel cache), files, bundles (.tar).")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes checking files [default: the CPUs].")] = 0,
    watch: Annotated[bool, typer.Option("--watch", help="Keep importing files dropped into the folders (until stopped).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="With --watch: seconds between looks.")] = 2.0,
    quiet: Quiet = False,
    as_json: Json = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Import distribution files with the same checks as an upload; skips what the index has.
    With --watch, new files are imported once their size stops changing (moving a finished
    file into the folder is picked up at the next look)."""
    from wheelcave.db.imports import ImportRows
    from wheelcave.jobs.importer import Importer, Outcome

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise fail(f"{missing[0]}: no such file or folder")
    progress, advance = _progress(quiet, _source_bytes(paths), f"importing into {index}")

    def report(outcomes: list[Outcome]) -> None:
        for o in outcomes:
            if o.status != "present":
                typer.echo(f"{o.status}: {o.source}" + (f": {o.reason}" if o.reason else ""), err=True)

    async def go(svc: Services) -> list[Outcome]:
        import asyncio

        target = await svc.registry.upload_target(index)
        importer = Importer(target, svc.blobs, ImportRows(svc.db), jobs=jobs or os.cpu_count() or 2, on_bytes=advance)
        with progress:
            outcomes = await importer.run(paths)
        if not watch:
            return outcomes
        if not quiet:
            report(outcomes)
            typer.echo(f"watching {', '.join(map(str, paths))} (stop with Ctrl-C)", err=True)
        seen = _stat_all(paths)
        waiting: dict[Path, tuple[int, int]] = {}
        while True:
            await asyncio.sleep(interval)
            now = _stat_all(paths)
            ready = [p for p, st in now.items() if seen.get(p) != st and waiting.get(p) == st]
            waiting = {p: st for p, st in now.items() if seen.get(p) != st}
            if ready:
                done = await importer.run(ready)
                for p in ready:
                    seen[p] = now[p]
                    waiting.pop(p, None)
                if not quiet:
                    report(done)

    try:
        outcomes = run(settings_for(data_dir, config), go)
    except KeyboardInterrupt:
        return
    counts = Counter(o.status for o in outcomes)
    refused = [o for o in outcomes if o.status == "refused"]
    if as_json:
        doc = {"index": index, "imported": counts["imported"], "present": counts["present"],
               "refused": [{"source": o.source, "filename": o.filename, "reason": o.reason} for o in refused],
               "files": [{"source": o.source, "filename": o.filename, "status": o.status} for o in outcomes]}
        typer.echo(json.dumps(doc, indent=1))
    if not quiet:
        for o in refused:
            typer.echo(f"refused: {o.source}: {o.reason}", err=True)
        if not outcomes:
            typer.echo("nothing to import: no distribution files found", err=True)
        elif not counts["imported"]:
            typer.echo(f"nothing new imported into {index}: {counts['present']} files already there, "
                       f"{len(refused)} refused", err=True)
        else:
            typer.echo(f"{index}: {counts['imported']} imported, {counts['present']} already there, "
                       f"{len(refused)} refused", err=True)
    if refused:
        raise typer.Exit(1)


@bundle_app.command("create")
def bundle_create(
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle to write (.tar).")],
    index: Annotated[str | None, typer.Option("--index", help="Bundle this index's cached files (a virtual index: its members'); with -r, the index to resolve against [default: main].")] = None,
    project: Annotated[list[str] | None, typer.Option("--project", help="Only these projects (repeatable).")] = None,
    requirement: Annotated[Path | None, typer.Option("--requirement", "-r", help="Bundle what these requirements need (prefetched first).")] = None,
    python: Annotated[list[str] | None, typer.Option("--python", help="With -r: target Python versions (repeatable).")] = None,
    platform: Annotated[list[str] | None, typer.Option("--platform", help="With -r: target platforms (repeatable).")] = None,
    server: Annotated[str | None, typer.Option("--server", help="With -r: the running wheelcave's URL.")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="WHEELCAVE_TOKEN", help="With -r: an API token, for a private index.")] = None,
    since: Annotated[Path | None, typer.Option("--since", help="An earlier bundle or its manifest: carry only what is new.")] = None,
    quiet: Quiet = False,
    as_json: Json = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Write an air-gap bundle: a tar of files, their metadata and a manifest of sha256s,
    for 'wheelcave import' on the other side (or pip --no-index --find-links once extracted).
    Either --index [--project ...] (what an index holds) or -r requirements.txt [--python ...]
    [--platform ...] (what those installs need, fetched through the running server first)."""
    import asyncio

    from wheelcave.jobs.bundles import BundleError, Manifest, file_sources, index_sources, read_manifest, write_bundle
    from wheelcave.jobs.prefetch import prefetch as run_prefetch

    if output.suffix != ".tar":
        raise fail(f"{output}: a bundle is a .tar file")
    if requirement is None and index is None:
        raise fail("say what to bundle: --index NAME, or -r requirements.txt")
    if requirement is not None and project:
        raise fail("--project goes with --index, not with -r")
    if requirement is not None and not requirement.is_file():
        raise fail(f"{requirement}: no such file")
    previous: Manifest | None = None
    if since is not None:
        try:
            previous = read_manifest(since)
        except (BundleError, OSError) as exc:
            raise fail(f"--since {since}: {exc}") from None
    settings = settings_for(data_dir, config)
    wanted: list[tuple[str, str]] = []
    if requirement is not None:
        targets = _targets(python, platform)
        reports = asyncio.run(run_prefetch(_index_url(settings, server, index or "main"), requirement, targets,
                                           credentials=("__token__", token) if token else None))
        failed = [f"{r.target}: {line}" for r in reports for line in r.failed]
        if failed:
            raise fail(f"the requirements could not be fetched; no bundle written: {failed[0]}")
        wanted = [pair for r in reports for pair in r.chosen]

    async def go(svc: Services) -> tuple[Manifest, int]:
        if requirement is not None:
            sources, missing = await file_sources(svc.repo, svc.blobs, wanted)
            if missing:
                raise fail(f"{missing[0]} was fetched but its bytes are not in this data folder (is --server this wheelcave?)")
            uncached = 0
        else:
            assert index is not None
            target = await svc.registry.get(index)
            sources, uncached = await index_sources(svc.repo, svc.blobs, target.dependencies(), project)
            if project and not sources:
                raise fail(f"index {index!r} has no cached files of {', '.join(project)}")
        total = sum(s.entry.size for s in sources)
        progress, advance = _progress(quiet, total, f"writing {output.name}")
        with progress:
            manifest = write_bundle(output, sources, previous=previous, progress=advance,
                                    source={"index": index, "projects": project or [],
                                            "requirements": requirement.read_text() if requirement else None})
        return manifest, uncached

    output.parent.mkdir(parents=True, exist_ok=True)
    manifest, uncached = run(settings, go)
    size = output.stat().st_size
    if as_json:
        typer.echo(json.dumps({"bundle": str(output), "files": len(manifest.files), "bytes": size,
                               "manifest_sha256": manifest.digest(), "previous": manifest.previous,
                               "not_cached": uncached}, indent=1))
    if not quiet:
        note = f"; {uncached} listed files left out (not cached)" if uncached else ""
        incremental = f" (new since {since.name})" if since else ""
        typer.echo(f"{output}: {len(manifest.files)} files{incremental}, {size:,} bytes; "
                   f"manifest sha256 {manifest.digest()}{note}", err=True)

def export(
    index: Annotated[str, typer.Argument(help="The index to export (hosted, mirror or virtual).")],
    output: Annotated[str, typer.Option("--output", "-o", help="A folder, or s3://bucket/prefix (obstore; AWS_* variables).")],
    files: Annotated[str, typer.Option("--files", help="copy, link (hard links from the blob store) or url=BASE (files stay at BASE).")] = "copy",
    base_url: Annotated[str, typer.Option("--base-url", help="Where the tree will be served, for absolute JSON API URLs.")] = "",
    nginx_listen: Annotated[str, typer.Option("--nginx-listen", help="The listen directive of the generated nginx.conf.")] = "8080",
    full: Annotated[bool, typer.Option("--full", help="Rewrite everything, not only what changed.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep exporting after every change (looks at the projects' last changes).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="With --watch: seconds between looks.")] = 1.0,
    quiet: Quiet = False,
    as_json: Json = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Write a static tree of an index for nginx or a bucket; a second run rewrites only what changed."""
    import asyncio
    import dataclasses

    from wheelcave.indexes.registry import Registry
    from wheelcave.jobs.export import ExportOptions, ExportReport, Exporter, ExportTarget, FolderTarget, ObjectStoreTarget

    mode, _, files_base = files.partition("=")
    if mode not in {"copy", "link", "url"} or (mode == "url") != bool(files_base):
        raise fail(f"--files {files!r}: use copy, link or url=BASE")
    if files_base and not files_base.startswith(("http://", "https://")):
        raise fail(f"--files url={files_base}: BASE must be an http(s) URL")
    if files_base and not files_base.endswith("/"):
        files_base += "/"
    if base_url and not base_url.endswith("/"):
        base_url += "/"
    target: ExportTarget
    if "://" in output:
        if not output.startswith(("s3://", "gs://", "az://", "azure://", "abfs://")):
            raise fail(f"--output {output}: a folder or s3://, gs://, az:// URL")
        if mode == "link":
            raise fail("--files link needs a folder output")
        try:
            target = ObjectStoreTarget(output)
        except Exception as exc:  # noqa: BLE001 - obstore's configuration errors
            raise fail(f"--output {output}: {exc}") from None
        root = ""
    else:
        folder = Path(output).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        target = FolderTarget(folder, link=mode == "link")
        root = str(folder)
    options = ExportOptions(files=mode, files_base=files_base, base_url=base_url, nginx_listen=nginx_listen)

    def say(report: ExportReport) -> None:
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(report)))
        if not quiet:
            typer.echo(f"{index} -> {output}: {len(report.projects_written)} projects written, "
                       f"{report.projects_unchanged} unchanged, {len(report.projects_removed)} removed; "
                       f"{report.files_written} files written, {report.files_removed} removed"
                       + (f"; {report.not_cached} listed files not cached, left out" if report.not_cached else ""),
                       err=True)

    async def go(svc: Services) -> None:
        registry = Registry(svc.repo, svc.blobs, max_metadata_size=svc.settings.max_metadata_size, offline=True)
        await registry.reload()
        the_index = await registry.get(index)
        ids = list(the_index.dependencies())
        exporter = Exporter(the_index, ids, lambda: svc.repo.project_stamps(ids), svc.blobs, target, options, root=root)
        try:
            seen = await svc.repo.project_stamps(ids)
            say(await exporter.run(full=full))
            while watch:  # every change moves a project's updated_at (uploads, yanks, mirror fills)
                await asyncio.sleep(interval)
                now = await svc.repo.project_stamps(ids)
                if now != seen:
                    seen = now
                    await registry.reload()
                    say(await exporter.run())
        finally:
            await registry.close()

    try:
        run(settings_for(data_dir, config), go)
    except KeyboardInterrupt:
        pass


def prefetch(
    index: Annotated[str, typer.Argument(help="The index to fill (usually a mirror, or a virtual index over one).")],
    requirements: Annotated[Path, typer.Option("--requirement", "-r", help="A requirements file.")],
    python: Annotated[list[str] | None, typer.Option("--python", help="Target Python version, e.g. 3.12 (repeatable) [default: this Python].")] = None,
    platform: Annotated[list[str] | None, typer.Option("--platform", help="Target platform: linux, macos, windows or a uv triple (repeatable) [default: linux].")] = None,
    server: Annotated[str | None, typer.Option("--server", help="The running wheelcave's URL [default: public_url, else http://host:port of the settings].")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="WHEELCAVE_TOKEN", help="An API token, for a private index.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Downloads at once.")] = 4,
    quiet: Quiet = False,
    as_json: Json = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Resolve a requirements file for every target with uv's resolver against the index, and
    cache every file those installs need; then they work with the upstream switched off."""
    import asyncio
    import dataclasses

    from wheelcave.jobs.prefetch import prefetch as run_prefetch

    if not requirements.is_file():
        raise fail(f"{requirements}: no such file")
    targets = _targets(python, platform)
    index_url = _index_url(settings_for(data_dir, config), server, index)
    progress, advance = _progress(quiet, 0, f"prefetching into {index}", files=True)

    async def go() -> list:  # type: ignore[type-arg]
        with progress:
            return await run_prefetch(index_url, requirements, targets, credentials=("__token__", token) if token else None,
                                      jobs=jobs, on_file=lambda name: advance(1))

    reports = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps([{**dataclasses.asdict(r), "target": str(r.target)} for r in reports], indent=1))
    if not quiet:
        for r in reports:
            state = "ok" if r.ok else f"{len(r.failed)} failed"
            typer.echo(f"{r.target}: {len(r.pinned)} releases, {r.files} files ({r.bytes:,} bytes) cached; {state}", err=True)
            for line in r.failed:
                typer.echo(f"  failed: {line}", err=True)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)
