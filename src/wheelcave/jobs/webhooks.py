"""The webhook dispatcher the server runs: it takes due deliveries from the database (every
process may run one; a delivery is taken by one at a time), POSTs them signed, and records the
outcome. A 2xx answer delivers; anything else (an error status, a refused connection, a timeout)
is tried again after a growing wait (:func:`wheelcave.core.webhooks.backoff`) until
``max_attempts``, then the delivery is marked failed. Redirects are not followed. A webhook made
by someone who is not an administrator is sent only while its host resolves to public addresses
(checked at each delivery, so a DNS change cannot point it at this machine or a private network),
and to the address that was checked: the connection goes to that address, with the host name in
the Host header and in TLS (SNI and the certificate check), so no second lookup happens that the
DNS could answer differently.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio.to_thread
import httpx

from wheelcave.core import webhooks
from wheelcave.core.webhooks import Delivery

__all__ = ["DispatchSettings", "Dispatcher", "addresses", "reaches_inside"]

log = logging.getLogger("wheelcave.webhooks")


class DeliveryStore(Protocol):
    async def claim_due(self, limit: int = 20) -> list[Delivery]: ...  # type: ignore[empty-body]

    async def delivery_done(self, delivery_id: int, status: int) -> None: ...

    async def delivery_failed(self, delivery_id: int, status: int | None, error: str, retry_in: float | None) -> None: ...


@dataclass(frozen=True)
class DispatchSettings:
    poll: float = 1.0
    retry_base: float = 10.0
    max_attempts: int = 10
    timeout: float = 10.0


def addresses(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


async def reaches_inside(url: str, resolve: Callable[[str, int], list[str]] = addresses) -> bool:
    """Whether ``url``'s host resolves to this machine or a private network (a host that resolves
    to nothing counts as inside). OSError or ValueError when it does not resolve at all."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = await anyio.to_thread.run_sync(resolve, parts.hostname or "", port)
    return not found or any(webhooks.is_private(a) for a in found)


class Dispatcher:
    def __init__(self, store: DeliveryStore, settings: DispatchSettings, client: httpx.AsyncClient | None = None,
                 resolve: Callable[[str, int], list[str]] = addresses) -> None:
        self.store = store
        self.settings = settings
        self.client = client or httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False, trust_env=False)
        self.resolve = resolve
        self.wake = asyncio.Event()

    async def _target(self, due: Delivery) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Where to send: an administrator's webhook as written; another's to the address its
        host resolves to now, once checked to be public (URL, extra headers, request extensions).
        Raises ConnectError with the reason it may not be sent now (a DNS change since it was
        made)."""
        if due.allow_private:
            return due.url, {}, {}
        parts = urlsplit(due.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = await anyio.to_thread.run_sync(self.resolve, parts.hostname or "", port)
        except (OSError, ValueError) as exc:
            raise httpx.ConnectError(f"the host does not resolve ({exc})") from None
        if not found or any(webhooks.is_private(a) for a in found):
            raise httpx.ConnectError("refused: the host resolves to this machine or a private network")
        address = found[0]
        pinned = urlunsplit((parts.scheme, f"[{address}]:{port}" if ":" in address else f"{address}:{port}",
                             parts.path or "/", parts.query, ""))
        host = parts.hostname or ""
        default_port = port == (443 if parts.scheme == "https" else 80)
        header = host if default_port else f"{host}:{port}"
        return pinned, {"Host": header}, ({"sni_hostname": host} if parts.scheme == "https" else {})

    async def send(self, due: Delivery) -> None:
        body = due.payload.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "wheelcave-webhooks",
                   "X-Wheelcave-Event": due.event, "X-Wheelcave-Delivery": str(due.id),
                   "X-Wheelcave-Signature": webhooks.sign(due.secret, body)}
        status: int | None = None
        try:
            url, pinned_headers, extensions = await self._target(due)
            response = await self.client.post(url, content=body, headers={**headers, **pinned_headers},
                                              extensions=extensions)
            status = response.status_code
            if 200 <= status < 300:
                await self.store.delivery_done(due.id, status)
                return
            error = f"answered {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempts = due.attempts + 1
        retry = webhooks.backoff(attempts, self.settings.retry_base) if attempts < self.settings.max_attempts else None
        log.warning("webhook.failed delivery=%s attempt=%d: %s%s", due.id, attempts, error,
                    "" if retry is not None else " (given up)")
        await self.store.delivery_failed(due.id, status, error, retry)

    async def run_once(self) -> int:
        due = await self.store.claim_due()
        if due:
            await asyncio.gather(*(self.send(d) for d in due))
        return len(due)

    async def run(self) -> None:
        """Until cancelled: send what is due, then wait for the poll interval (or a wake-up)."""
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:  # noqa: BLE001 - the database is away: try again next round
                log.warning("webhook dispatch failed; trying again", exc_info=True)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.settings.poll)
            except TimeoutError:
                pass

    async def aclose(self) -> None:
        await self.client.aclose()
