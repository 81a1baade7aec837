"""httpcore's locks without a trip through the event loop each time they are free.

httpcore guards each HTTP/2 connection's reads, writes and state with locks, and its pools with
a semaphore, taken for every event of every stream: a 2 MB page arrives as some 130 DATA frames,
each taking the read and the write lock. Under asyncio these are anyio's, which by default make
every acquisition a cancellation point and a scheduling point even when the lock is free (a
shielded cancel scope and a ``sleep(0)``: one more turn of the event loop and ~25 µs of Python).
anyio offers the same lock without that detour for a free lock (``fast_acquire``, anyio 4.5);
a lock that is held is waited for as before, so taking turns and cancellation while waiting are
unchanged.

:func:`fast_free_locks` makes httpcore's asyncio locks and semaphores such ones. Where httpcore
no longer builds them the way this expects, nothing is changed (the client works as before, a
little slower) and ``tests/test_upstream_streams.py`` fails, so an upgrade cannot drop this
silently.
"""

from __future__ import annotations

from typing import Any

import anyio
from httpcore import _synchronization as sync

__all__ = ["fast_free_locks"]


def _lock_setup(self: Any) -> None:
    self._backend = sync.current_async_library()
    if self._backend == "asyncio":
        self._anyio_lock = anyio.Lock(fast_acquire=True)
    else:
        _ORIGINAL_LOCK_SETUP(self)


def _semaphore_setup(self: Any) -> None:
    self._backend = sync.current_async_library()
    if self._backend == "asyncio":
        self._anyio_semaphore = anyio.Semaphore(initial_value=self._bound, max_value=self._bound, fast_acquire=True)
    else:
        _ORIGINAL_SEMAPHORE_SETUP(self)


_ORIGINAL_LOCK_SETUP = sync.AsyncLock.setup
_ORIGINAL_SEMAPHORE_SETUP = sync.AsyncSemaphore.setup


def fast_free_locks() -> bool:
    """Make httpcore's asyncio locks and semaphores skip the event loop when free; True if done
    (or done already)."""
    lock_ok = "_anyio_lock" in _ORIGINAL_LOCK_SETUP.__code__.co_names or sync.AsyncLock.setup is _lock_setup
    semaphore_ok = ("_anyio_semaphore" in _ORIGINAL_SEMAPHORE_SETUP.__code__.co_names
                    or sync.AsyncSemaphore.setup is _semaphore_setup)
    if not (lock_ok and semaphore_ok):
        return False
    sync.AsyncLock.setup = _lock_setup  # type: ignore[method-assign]
    sync.AsyncSemaphore.setup = _semaphore_setup  # type: ignore[method-assign]
    return True
