"""A request id on every answer (``X-Request-ID``) and on every log line written while the
request is handled, and the log formats (``[server] log_format = "text"`` or ``"json"``).

A client's own ``X-Request-ID`` is kept when it is a plain token (1-64 letters, digits, ``.``,
``_``, ``-``: a proxy's id then ties its log to ours); anything else is replaced by a new one, so
a header can never forge a log line. The outermost middleware
(:class:`wheelcave.web.headers.SecurityHeaders`) sets it in a context variable that log records
read, the server's access log line included, and sends it back.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import time
from typing import Any

from starlette.types import Scope

__all__ = ["HEADER", "REQUEST_ID", "JsonFormatter", "LogHandler", "RequestIdFilter", "given_or_new", "lean_log_records", "log_config", "request_id"]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("wheelcave_request_id", default="-")
_TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,64}")
HEADER = b"x-request-id"
_random_bits = random.getrandbits


def request_id(scope: Scope) -> bytes:
    """The id of this request: the client's own when it is a plain token, else a new one."""
    return given_or_new(scope["headers"])


def given_or_new(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The client's id among ``headers`` when it is a plain token, else a new one: 64 random
    bits from the process's generator (ids tell requests apart in logs, they guard nothing;
    ``random`` is reseeded in each forked worker, and costs no system call per request)."""
    for key, value in headers:
        if key == HEADER:
            if _TOKEN.fullmatch(value):
                return value
            break
    return b"%016x" % _random_bits(64)


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class LogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The server's one log handler (lines on a stream, see :func:`log_config`), knowing its
    line format: the hot path's access lines are written in it directly (web.accesslog)."""

    def __init__(self, stream: Any = None, line_format: str = "text") -> None:
        super().__init__(stream)
        self.line_format = line_format


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def lean_log_records() -> None:
    """A serving process's log records skip what neither format shows: the caller's file and
    line (a walk up the stack for every record), thread and process names (the logging HOWTO's
    "Optimization" switches). An access log line cost a third of a cached page's answer."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]  # the documented switch


def log_config(fmt: str, level: str = "INFO") -> dict[str, Any]:
    """A logging.dictConfig for the server and its HTTP engine: every logger through one handler
    on stderr, in ``fmt`` ("text" or "json"), each line with its request id."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "wheelcave.web.requestid.LogHandler", "stream": "ext://sys.stderr",
                                "line_format": fmt, "formatter": "main", "filters": ["request_id"]}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # The engines' own loggers go to the root handler (not their own formats).
            **{name: {"handlers": [], "propagate": True, "level": level}
               for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "_granian", "granian.access")},
            "httpx": {"level": "WARNING"},  # one line per upstream request is noise
            "alembic": {"level": "WARNING"},  # its set-up lines on every start
        },
    }
