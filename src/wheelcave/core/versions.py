"""Comparing release versions as PEP 440 does, tolerating legacy strings.

>>> same_release("1.0.0", "1"), same_release("1.0", "1.0.post1"), same_release("weird", "weird")
(True, False, True)
>>> sorted(["2.0", "legacy", "10.0"], key=version_key)
['legacy', '2.0', '10.0']
"""

from __future__ import annotations

import functools

from packaging.version import InvalidVersion, Version

__all__ = ["same_release", "version_key"]


def same_release(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` name one release (``1.0`` is ``1.0.0``); plain equality otherwise."""
    try:
        return Version(a) == Version(b)
    except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
        return a == b


@functools.lru_cache(maxsize=65536)
def version_key(version: str) -> tuple[int, Version | str]:
    """Sort key: invalid (legacy) versions before valid ones, each in their own order
    (remembered: pages and JSON documents sort the same version strings again and again)."""
    try:
        return (1, Version(version))
    except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
        return (0, version)
