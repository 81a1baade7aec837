"""Bounds on a request's head, enforced where the bytes arrive: uvicorn's httptools protocol
with a ceiling on the request line plus headers (64 KiB) and on their number (100).

httptools keeps no limit of its own, so a client could make the server hold megabytes of
headers. Bytes are counted as they are fed to the parser, before it stores them; past a
limit the client gets ``431 Request Header Fields Too Large`` and the connection is closed
(what the parser holds meanwhile: the limit plus one read from the socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEADERS", "MAX_HEAD_BYTES", "BoundedHttpToolsProtocol"]

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
_LINGER_SECONDS = 2.0
_MAX_DISCARD = 16 * 2**20
_MESSAGE = b"Request header fields too large: at most 64 KiB and 100 headers.\n"


class _HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._too_large = False
        self._discarded = -1  # >= 0 once refused: what the client sent since

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        super().on_message_begin()

    def _grow(self, size: int, *, header: bool = False) -> None:
        self._head_bytes += size
        self._header_count += header
        if self._head_bytes > MAX_HEAD_BYTES or self._header_count > MAX_HEADERS:
            self._too_large = True
            raise _HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._grow(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4, header=True)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_complete()
        super().on_headers_complete()

    def head_complete(self) -> None:
        """The request's head is parsed: what comes next is its body or the next request."""
        self._in_head = False

    def data_received(self, data: bytes) -> None:
        if self._discarded >= 0:  # refused: read and drop the rest for a moment (see _refuse)
            self._discarded += len(data)
            if self._discarded > _MAX_DISCARD:
                self.transport.close()
            return
        in_head = self._in_head
        super().data_received(data)
        if in_head and self._in_head and not self._too_large:
            self._head_bytes += len(data)  # all of it head bytes the parser is holding
            if self._head_bytes > MAX_HEAD_BYTES:
                self._too_large = True
                self._refuse()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:  # our callback refused the head: the parser reports it as malformed
            self._refuse()
            return
        super().send_400_response(msg)

    def _refuse(self) -> None:
        """Answer 431, then read and drop what the client still sends for a moment before
        closing: closing on unread bytes makes the kernel reset the connection, and the client
        would lose our answer (nginx's "lingering close")."""
        if self.transport.is_closing() or self._discarded >= 0:
            return
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\nconnection: close\r\n\r\n" + _MESSAGE
        )
        self._discarded = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(_LINGER_SECONDS, self.transport.close)
