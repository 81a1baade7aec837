"""Limits on failed sign-ins, per client address and per user name (a sliding window).

An address over its limit gets 429 for the rest of the window, and so does a user name over
its limit — but only from addresses that sent a failure for it: a flood against one name
does not lock its owner out from the machine they work on. Checking a password (argon2id,
64 MiB) is bounded by a semaphore elsewhere; these limits keep a flood from queueing there.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["FailureThrottle"]


class FailureThrottle:
    def __init__(
        self, *, per_address: int = 20, per_user: int = 50, window: float = 60.0,
        clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000,
    ) -> None:
        self.per_address = per_address
        self.per_user = per_user
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._by_address: dict[str, deque[float]] = {}
        self._by_user: dict[str, deque[float]] = {}
        self._user_addresses: dict[str, set[str]] = {}

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float] | None:
        times = table.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del table[key]
            if table is self._by_user:
                self._user_addresses.pop(key, None)
            return None
        return times

    def blocked(self, address: str | None, user: str | None) -> tuple[str, float] | None:
        """("address" or "user", seconds to wait) when a check must not be tried now."""
        now = self.clock()
        if address is not None:
            times = self._recent(self._by_address, address, now)
            if times is not None and len(times) >= self.per_address:
                return "address", times[0] + self.window - now
        if user is not None:
            times = self._recent(self._by_user, user, now)
            if (times is not None and len(times) >= self.per_user
                    and address in self._user_addresses.get(user, ())):
                return "user", times[0] + self.window - now
        return None

    def failed(self, address: str | None, user: str | None) -> None:
        now = self.clock()
        if len(self._by_address) + len(self._by_user) > self.max_keys:  # never grow without bound
            self._by_address.clear()
            self._by_user.clear()
            self._user_addresses.clear()
        if address is not None:
            self._by_address.setdefault(address, deque()).append(now)
        if user is not None:
            self._by_user.setdefault(user, deque()).append(now)
            if address is not None:
                self._user_addresses.setdefault(user, set()).add(address)
