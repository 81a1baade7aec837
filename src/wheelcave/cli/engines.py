"""The HTTP servers ``wheelcave serve`` can run the app under: uvicorn (the default) or granian
(a Rust HTTP server for ASGI apps; ``pip install 'wheelcave[granian]'``).

Both get the same app, the same address, workers, TLS and access-log settings, and a bound on
request heads (uvicorn: :mod:`wheelcave.web.limits`, 64 KiB and 100 headers, 431 past them;
granian: its own HTTP/1 buffer, set to the same 64 KiB). Several workers are separate
processes that build the app from the settings in the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wheelcave.config import Settings
from wheelcave.web.app import SETTINGS_ENV, create_app
from wheelcave.web.limits import MAX_HEAD_BYTES
from wheelcave.web.requestid import lean_log_records, log_config

__all__ = ["EngineMissing", "check", "serve_with"]

_FACTORY = "wheelcave.web.app:create_app_from_env"


class EngineMissing(RuntimeError):
    pass


def check(settings: Settings) -> None:
    """Fail before anything starts when the engine asked for is not installed."""
    if settings.engine == "granian":
        try:
            import granian  # noqa: F401
        except ImportError:
            raise EngineMissing("engine 'granian' needs the granian package: pip install 'wheelcave[granian]'") from None


def serve_with(settings: Settings) -> None:
    """Serve until stopped (SIGINT/SIGTERM), under ``settings.engine``."""
    lean_log_records()  # worker processes do the same in create_app_from_env
    if settings.engine == "granian":
        _granian(settings)
    else:
        _uvicorn(settings)


def _uvicorn(settings: Settings) -> None:
    import uvicorn

    from wheelcave.web.instant import InstantHttpProtocol

    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "access_log": settings.access_log,
        "log_level": "info", "server_header": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "log_config": log_config(settings.log_format),
        # Request heads bounded (431 past 64 KiB or 100 headers); cached pages answered on arrival.
        "http": InstantHttpProtocol,
    }
    if settings.tls_cert:
        options.update(ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key)
    if settings.workers > 1:
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run(_FACTORY, factory=True, workers=settings.workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)


def _granian(settings: Settings) -> None:
    check(settings)
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    os.environ[SETTINGS_ENV] = settings.to_json()  # granian's workers are processes: each builds the app
    options: dict[str, Any] = {}
    if settings.tls_cert:
        options.update(ssl_cert=Path(settings.tls_cert), ssl_key=Path(settings.tls_key))
    Server(
        _FACTORY, factory=True, address=settings.host, port=settings.port, interface=Interfaces.ASGI,
        workers=settings.workers, http=HTTPModes.auto, websockets=False, log_access=settings.access_log,
        log_dictconfig=log_config(settings.log_format),
        http1_settings=HTTP1Settings(max_buffer_size=MAX_HEAD_BYTES), workers_kill_timeout=settings.shutdown_timeout, **options,
    ).serve()
