"""Who may do what: principals, token scopes and the per-index access lists.

The rule that keeps the boundary: a principal's rights on an index are the grants that name
it (itself, one of its groups, ``authenticated``, ``anonymous``), or everything for an
administrator; a token's rights are its scope **intersected** with what its owner holds at
the moment of use. So no token, however it was made, carries more than its owner has now,
and taking a grant away takes it from every token at once.

Grants are ``read``, ``upload``, ``yank``, ``delete`` and ``manage`` on one index, to
``user:<name>``, ``group:<name>``, ``authenticated`` (any signed-in user) or ``anonymous``
(anyone, signed in or not; ``anonymous_read = false`` turns it off for requests without
credentials). Anonymous requests may only ever read. Every right includes ``read`` (a token
that may yank a file may look it up).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ANONYMOUS",
    "AUTHENTICATED",
    "PERMISSIONS",
    "AccessList",
    "Principal",
    "Scope",
    "parse_principal",
]

PERMISSIONS = ("read", "upload", "yank", "delete", "manage")
ALL = frozenset(PERMISSIONS)
ANONYMOUS = "anonymous"
AUTHENTICATED = "authenticated"
NONE: frozenset[str] = frozenset()
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parse_principal(text: str) -> str:
    """``alice`` or ``user:alice``, ``group:dev``, ``authenticated``, ``anonymous`` → its key.

    >>> parse_principal("alice"), parse_principal("group:dev"), parse_principal("anonymous")
    ('user:alice', 'group:dev', 'anonymous')
    """
    if text in (ANONYMOUS, AUTHENTICATED):
        return text
    kind, sep, name = text.partition(":")
    if not sep:
        kind, name = "user", text
    if kind not in ("user", "group") or not _NAME.fullmatch(name):
        msg = f"not a principal: {text!r} (use NAME, user:NAME, group:NAME, authenticated or anonymous)"
        raise ValueError(msg)
    return f"{kind}:{name}"


@dataclass(frozen=True)
class Scope:
    """What a token is limited to; ``None`` in a field means no limit there."""

    indexes: frozenset[str] | None = None
    projects: frozenset[str] | None = None
    permissions: frozenset[str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Scope | None:
        if not data:
            return None

        def field(key: str) -> frozenset[str] | None:
            value = data.get(key)
            return None if value is None else frozenset(str(v) for v in value)

        return cls(field("indexes"), field("projects"), field("permissions"))

    def to_json(self) -> dict[str, list[str] | None]:
        return {k: None if v is None else sorted(v)
                for k, v in (("indexes", self.indexes), ("projects", self.projects), ("permissions", self.permissions))}

    @property
    def unlimited(self) -> bool:
        return self.indexes is None and self.projects is None and (self.permissions is None or self.permissions >= ALL)

    def limit(self, index: str, rights: frozenset[str]) -> frozenset[str]:
        if self.indexes is not None and index not in self.indexes:
            return NONE
        return rights if self.permissions is None else rights & _with_read(self.permissions)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (maybe through a token), or a trusted publisher's minted token."""

    name: str
    user_id: int | None = None
    admin: bool = False
    groups: frozenset[str] = frozenset()
    scope: Scope | None = None
    token_id: int | None = None
    expires_at: datetime | None = None
    #: A trusted publisher's token: it may read and upload to this index, nothing else.
    publisher_index: str | None = None

    @property
    def keys(self) -> frozenset[str]:
        if self.publisher_index is not None:
            return frozenset()
        return frozenset({f"user:{self.name}", AUTHENTICATED, ANONYMOUS, *(f"group:{g}" for g in self.groups)})

    @property
    def owner_keys(self) -> frozenset[str]:
        """The principal strings under which this principal may own a project."""
        if self.publisher_index is not None:
            return frozenset({self.name})
        return frozenset({f"user:{self.name}", *(f"group:{g}" for g in self.groups)})

    @property
    def owner_key(self) -> str:
        """The principal string this principal owns a project under when it uploads it first."""
        return self.name if self.publisher_index is not None else f"user:{self.name}"

    @property
    def is_admin(self) -> bool:
        """An administrator acting with all of their rights (not through a limited token)."""
        return self.admin and self.publisher_index is None and (self.scope is None or self.scope.unlimited)

    def allows_project(self, project: str | None) -> bool:
        if self.scope is None or self.scope.projects is None:
            return True
        return project is not None and project in self.scope.projects


def _with_read(rights: frozenset[str]) -> frozenset[str]:
    return rights | {"read"} if rights else rights


class AccessList:
    """A snapshot of every grant, asked on every request (kept until the auth generation moves)."""

    def __init__(self, grants: Iterable[tuple[str, str, str]], *, anonymous_read: bool = True) -> None:
        self.anonymous_read = anonymous_read
        self._grants: dict[str, dict[str, set[str]]] = {}
        for index, principal, permission in grants:
            self._grants.setdefault(index, {}).setdefault(principal, set()).add(permission)
        self._public = frozenset(i for i, g in self._grants.items() if "read" in g.get(ANONYMOUS, ()))

    def entries(self, index: str) -> dict[str, frozenset[str]]:
        return {p: frozenset(v) for p, v in sorted(self._grants.get(index, {}).items())}

    def public(self, index: str) -> bool:
        """Readable without credentials."""
        return self.anonymous_read and index in self._public

    def rights(self, who: Principal | None, index: str) -> frozenset[str]:
        if who is None:
            return frozenset({"read"}) if self.public(index) else NONE
        if who.publisher_index is not None:
            base = frozenset({"read", "upload"}) if index == who.publisher_index else NONE
        elif who.admin:
            base = ALL
        else:
            grants = self._grants.get(index, {})
            found: set[str] = set()
            for key in who.keys:
                found |= grants.get(key, set())
            base = _with_read(frozenset(found))
        return who.scope.limit(index, base) if who.scope is not None else base

    def can(self, who: Principal | None, action: str, index: str, project: str | None = None) -> bool:
        if action not in self.rights(who, index):
            return False
        if who is None or action == "read" or who.scope is None or who.scope.projects is None:
            return True
        return project is not None and project in who.scope.projects
