"""Access-log lines for the hot path, written without the ``logging`` machinery.

A line through ``logging`` (a record, filters, the formatter, the handler) cost about 35 µs
of a cached page's ~120 µs in a serving process. :class:`AccessLines` writes the same line —
the same stream, the same format (``text`` or ``json``, :func:`wheelcave.web.requestid.log_config`),
the same handler lock — in a few microseconds. It is made only when the access logger's
lines would go to wheelcave's own handler and nowhere else (:meth:`AccessLines.find`);
under any other logging set-up the hot path logs through ``logging`` as every other line does.

Lines written during one turn of the event loop go out together at the end of it, in one
write (of at most 4 KiB, which a pipe shared by several workers keeps whole): with many
connections a turn answers many requests, and a system call a line cost a fifth of the
throughput at 50 connections. Within that turn they may come after lines other
code wrote through ``logging``; each line carries its own time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref

from wheelcave.web.requestid import LogHandler

__all__ = ["AccessLines"]

#: The most one write() may carry: several workers share the server's stderr, and a pipe keeps
#: a write whole (never mixed with another process's) only up to PIPE_BUF bytes.
_ATOMIC = 4096
#: One writer per handler and logger, shared by every connection (their lines are batched together).
_shared: weakref.WeakKeyDictionary[LogHandler, dict[str, AccessLines]] = weakref.WeakKeyDictionary()


class AccessLines:
    def __init__(self, handler: LogHandler, logger_name: str) -> None:
        self.handler = handler
        self.json = handler.line_format == "json"
        self.name = logger_name
        self._second = -1
        self._stamp = ""
        self._pending: list[str] = []

    @classmethod
    def find(cls, logger: logging.Logger) -> AccessLines | None:
        """The writer for ``logger``'s INFO lines, if they reach exactly one wheelcave handler
        (and no filter of a logger on the way could drop or change them); else None."""
        if not logger.isEnabledFor(logging.INFO):
            return None
        handlers: list[logging.Handler] = []
        current: logging.Logger | None = logger
        while current is not None:
            if current.filters or current.disabled:
                return None
            handlers += current.handlers
            current = current.parent if current.propagate else None  # type: ignore[assignment]
        if len(handlers) != 1 or type(handlers[0]) is not LogHandler or handlers[0].level > logging.INFO:
            return None
        handler: LogHandler = handlers[0]
        writers = _shared.setdefault(handler, {})
        if logger.name not in writers:
            writers[logger.name] = cls(handler, logger.name)
        return writers[logger.name]

    def write(self, request_id: str, message: str) -> None:
        """One INFO line: what ``logger.info(message)`` would write while handling that request."""
        now = time.time()
        second = int(now)
        millis = int((now - second) * 1000)
        if self.json:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}Z"
            line = json.dumps({"time": stamp, "level": "info", "logger": self.name, "message": message,
                               "request_id": request_id}, ensure_ascii=False)
        else:
            if second != self._second:  # the date and time change once a second
                self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            line = f"{self._stamp},{millis:03d} INFO {self.name} [{request_id}] {message}"
        self._pending.append(line + self.handler.terminator)
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: no turn to wait for
                self.flush()

    def flush(self) -> None:
        """Write the lines waiting for the end of the loop's turn."""
        lines, self._pending = self._pending, []
        if not lines:
            return
        handler = self.handler
        handler.acquire()
        try:
            stream = handler.stream
            chunk: list[str] = []
            size = 0
            for line in lines:
                length = len(line) if line.isascii() else len(line.encode())
                if chunk and size + length > _ATOMIC:
                    stream.write("".join(chunk))
                    stream.flush()
                    chunk, size = [], 0
                chunk.append(line)
                size += length
            stream.write("".join(chunk))
            stream.flush()
        except Exception:  # what logging does with a broken stream: report it, carry on
            handler.handleError(logging.makeLogRecord({"msg": lines[0].rstrip(), "name": self.name, "levelno": logging.INFO}))
        finally:
            handler.release()
