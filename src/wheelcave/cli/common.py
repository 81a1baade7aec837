"""What every command shares: the data-folder options, settings, running a service call,
and failing with one ``error:`` line (and a ``hint:``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from wheelcave.config import ConfigError, Settings, load_settings
from wheelcave.errors import WheelcaveError
from wheelcave.services import Services, open_services

__all__ = ["ConfigFile", "DataDir", "fail", "run", "settings_for", "split"]

T = TypeVar("T")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="WHEELCAVE_DATA_DIR", help="Data folder (default ./wheelcave-data)."),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default <data>/wheelcave.toml)."),
]


def fail(message: str, hint: str | None = None) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    return typer.Exit(1)


def settings_for(data_dir: Path | None, config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(data_dir, config, overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def run(settings: Settings, action: Callable[[Services], Awaitable[T]]) -> T:
    async def go() -> T:
        svc = await open_services(settings)
        try:
            return await action(svc)
        finally:
            await svc.close()

    try:
        return asyncio.run(go())
    except WheelcaveError as exc:
        raise fail(exc.message, exc.hint) from None




def split(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value is not None else None
