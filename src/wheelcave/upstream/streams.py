"""The upstream client's sockets on asyncio's own streams (httpcore's network-backend interface).

httpx reaches the network through httpcore, whose default backend wraps each connection in
anyio's TLS stream: every read passes a cancel scope, a lock and a memory-BIO round of Python
code, and returns one TLS record (often 7-16 KB). asyncio's SSL transport decrypts whatever the
socket holds in one go, so a read returns up to what was asked for. Measured here on the public
index over HTTP/2 (2026-12-04): 8.3 ms of CPU a MB of wheel through the default backend, 4.6 ms
through this one; 91 project pages 0.17 s against 0.11-0.12 s.

:func:`use_asyncio_streams` puts it under a client's connection pools (the direct one and those
of proxies taken from the environment). httpx offers no public way to hand its transports a
backend, so the pools are reached through their attributes; where they are not found (another
httpx), the client keeps its default backend and works as before, only slower
(``tests/test_upstream_streams.py`` fails then, so an upgrade cannot drop this silently).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioBackend", "AsyncioStream", "use_asyncio_streams"]

#: Bytes a connection buffers before asyncio stops reading its socket (TCP then holds the rest).
_BUFFER = 256 * 1024


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("the upstream sent nothing in time") from None
        except OSError as exc:  # ssl.SSLError, connection reset
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("the upstream took nothing in time") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        self._writer.close()  # not awaited: a TLS close never waits on a silent peer

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._writer.close()
            raise httpcore.ConnectTimeout("the TLS handshake took too long") from None
        except OSError as exc:  # ssl.SSLError (a bad certificate) included
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # An idle HTTP/1.1 connection the server closed (asyncio has read its end already).
            return self._reader.at_eof() or self._writer.transport.is_closing()
        return None


def _apply(writer: asyncio.StreamWriter, options: Iterable[Any] | None) -> None:
    sock = writer.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # Both address families in parallel after 0.25 s, as anyio does; uvloop (the server's
        # loop) has no such option and tries the addresses in turn.
        eyeballs = {"happy_eyeballs_delay": 0.25} if isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop) else {}
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, limit=_BUFFER, local_addr=(local_address, 0) if local_address else None, **eyeballs)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except OSError as exc:  # socket.gaierror (an unknown host) included
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
        _apply(writer, socket_options)  # asyncio sets TCP_NODELAY itself
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=_BUFFER)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {path} in time") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
        _apply(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def use_asyncio_streams(client: httpx.AsyncClient) -> int:
    """Put :class:`AsyncioBackend` under every connection pool of ``client``'s own transports
    (not under a transport given from outside, such as a test's mock, nor under an HTTPS proxy's);
    the number of pools."""
    transports = [client._transport, *client._mounts.values()]  # private: see the module docstring
    done = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None) if isinstance(transport, httpx.AsyncHTTPTransport) else None
        proxy = getattr(pool, "_proxy_url", None)
        if proxy is not None and proxy.scheme == b"https":
            continue  # TLS to the proxy and the upstream's inside it: the default backend does that
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = AsyncioBackend()
            done += 1
    return done

