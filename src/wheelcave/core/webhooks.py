"""Webhooks: which changes become events, what a delivery carries, how it is signed, and when a
failed one is tried again.

A delivery is a POST of a JSON body with these headers:

- ``X-Wheelcave-Event``: the event (``upload``, ``yank``, ``unyank``, ``delete``, ``promote``);
- ``X-Wheelcave-Delivery``: the delivery's id (the same on every retry: a receiver can drop a
  repeat);
- ``X-Wheelcave-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the body under the webhook's
  secret (compare it in constant time, as :func:`verify` does).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ACTIONS", "EVENTS", "Delivery", "backoff", "body_for", "is_private", "parse_events", "sign", "verify"]

#: Audit actions that are webhook events, and the event names receivers see.
ACTIONS: dict[str, str] = {
    "file.upload": "upload", "file.yank": "yank", "file.unyank": "unyank", "file.delete": "delete",
    "release.promote": "promote",
}
EVENTS = tuple(sorted(set(ACTIONS.values())))
#: The longest a retry waits, whatever the attempt.
MAX_DELAY = 3600.0


@dataclass(frozen=True)
class Delivery:
    """A delivery taken for sending: where, signed with what, and how many tries it has had."""

    id: int
    url: str
    secret: str
    event: str
    payload: str
    attempts: int
    #: Its webhook was made by an administrator: it may reach this machine and private networks.
    allow_private: bool = False


def parse_events(value: str | list[str] | None) -> str:
    """A webhook's event list as stored: "*" (every event) or the sorted, comma-joined names.
    Raises ValueError naming an unknown event."""
    if value is None or value == "*" or value == ["*"]:
        return "*"
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    unknown = sorted({i for i in items if i not in EVENTS})
    if unknown or not items:
        raise ValueError(f"unknown event {unknown[0] if unknown else '(none)'!r}: use any of {', '.join(EVENTS)} or *")
    return ",".join(sorted(set(items)))


def wants(events: str, event: str) -> bool:
    return events == "*" or event in events.split(",")


def body_for(event: str, entry: Mapping[str, Any], at: datetime) -> str:
    """The JSON body of an event from its audit entry."""
    return json.dumps({
        "event": event, "index": entry.get("index_name"), "project": entry.get("project"),
        "filename": entry.get("filename"), "actor": entry.get("actor"), "at": at.isoformat(),
        "detail": entry.get("detail") or {},
    }, sort_keys=True, default=str)


def is_private(address: str) -> bool:
    """Whether an IP address is this machine's, a private network's, link-local, or otherwise
    not a public internet address (an IPv4-mapped IPv6 address counts as its IPv4 one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: base, 2x, 4x, ... (at most an hour)."""
    return min(MAX_DELAY, base * 2 ** max(0, attempts - 1))
