"""Authentication: HTTP Basic with a user's password (argon2id) or ``__token__`` + API token.

Tokens are long random secrets stored as sha256, cheap to check on every request. A correct
password is remembered in memory for a minute, keyed by a sha256 of the credential, so a
burst of uploads does not pay argon2 each time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import secrets
import time
from dataclasses import dataclass

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from wheelcave.db.repository import Repository, UserRecord
from wheelcave.errors import BadRequest, Conflict, NotFound, Unauthorized

__all__ = ["PERMISSIONS", "TOKEN_USER", "AuthService", "Principal", "validate_user_name"]

#: What a scoped token may be granted, on one index.
PERMISSIONS = ("upload", "yank", "delete", "manage")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user, limited to one index and some permissions by a scoped token.

    Administrators may do everything; other users may upload to any hosted index; yank,
    delete and managing indexes need an administrator or a token scoped to that index.
    """

    user: UserRecord
    index: str | None = None
    permissions: frozenset[str] = frozenset(PERMISSIONS)

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin and self.index is None

    def can(self, action: str, index: str | None) -> bool:
        if self.index is not None:
            return index == self.index and action in self.permissions
        return self.user.is_admin or action == "upload"

TOKEN_USER = "__token__"
_TOKEN_PREFIX = "wc_"
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MEMO_SECONDS = 60.0
_BAD_CREDENTIALS = "Invalid or non-existent authentication information"



def initial_password() -> str:
    """24 random URL-safe characters that never start with ``-``: a password pasted after
    ``-p`` (twine, curl) must not be read as an option (one in 64 did before)."""
    while True:
        password = secrets.token_urlsafe(18)
        if not password.startswith("-"):
            return password

def validate_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        msg = f"invalid user name {name!r}: letters, digits, '.', '_' and '-', at most 64"
        raise BadRequest(msg)
    return name


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class AuthService:
    def __init__(self, repo: Repository, hasher: PasswordHasher | None = None) -> None:
        self.repo = repo
        self.hasher = hasher or PasswordHasher()
        self._memo: dict[str, tuple[float, UserRecord]] = {}

    # ------------------------------------------------------------ checking

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The user behind an ``Authorization`` header; None without one.

        Raises :class:`Unauthorized` for a malformed header or wrong credentials.
        """
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized(_BAD_CREDENTIALS + ": only HTTP Basic is supported")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized(_BAD_CREDENTIALS + ": malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise Unauthorized(_BAD_CREDENTIALS)
        return await self.check(user, password)

    async def check(self, user: str, password: str) -> Principal:
        if user == TOKEN_USER:
            found = await self.repo.find_token_user(_sha256(password))
            if found is None:
                raise Unauthorized(_BAD_CREDENTIALS + ": unknown API token")
            record, index, permissions = found
            if index is None:
                return Principal(record)
            return Principal(record, index, frozenset((permissions or "").split(",")) & frozenset(PERMISSIONS))
        key = _sha256(f"{user}\0{password}")
        memo = self._memo.get(key)
        now = time.monotonic()
        if memo and memo[0] > now:
            return Principal(memo[1])
        record = await self.repo.find_user(user)
        if record is None or not record.password_hash:
            # Spend the same time as a real check, so user names cannot be probed by timing.
            await anyio.to_thread.run_sync(self._verify, _dummy_hash(), password)
            raise Unauthorized(_BAD_CREDENTIALS)
        if not await anyio.to_thread.run_sync(self._verify, record.password_hash, password):
            raise Unauthorized(_BAD_CREDENTIALS)
        if len(self._memo) > 10_000:
            self._memo.clear()
        self._memo[key] = (now + _MEMO_SECONDS, record)
        return Principal(record)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    # ------------------------------------------------------------ managing

    async def hash_password(self, password: str) -> str:
        if len(password) < 8:
            msg = "password too short: use at least 8 characters"
            raise BadRequest(msg)
        return await anyio.to_thread.run_sync(self.hasher.hash, password)

    async def add_user(
        self, name: str, password: str | None, *, is_admin: bool = False, actor: str | None = None
    ) -> UserRecord:
        validate_user_name(name)
        if name == TOKEN_USER:
            msg = f"{TOKEN_USER!r} is reserved for API tokens"
            raise BadRequest(msg)
        hashed = await self.hash_password(password) if password is not None else None
        record = await self.repo.create_user(name, hashed, is_admin=is_admin)
        if record is None:
            msg = f"user {name!r} exists already"
            raise Conflict(msg, code="user-exists")
        await self.repo.audit({"actor": actor, "action": "user.create", "detail": {"user": name, "admin": is_admin}})
        return record

    async def set_password(self, name: str, password: str) -> None:
        hashed = await self.hash_password(password)
        if not await self.repo.set_password(name, hashed):
            msg = f"no user {name!r}"
            raise NotFound(msg)
        self._memo.clear()

    async def create_token(
        self, user: str, description: str | None = None, *, index: str | None = None,
        permissions: list[str] | None = None, actor: str | None = None, address: str | None = None,
    ) -> tuple[int, str]:
        """Create an API token for ``user``, optionally scoped to one index and some of
        :data:`PERMISSIONS`; returns its id and the secret (shown once, stored hashed)."""
        record = await self.repo.find_user(user)
        if record is None:
            msg = f"no user {user!r}"
            raise NotFound(msg)
        if permissions is not None and index is None:
            raise BadRequest("permissions need an index to apply to")
        perms = None
        if index is not None:
            wanted = permissions or ["upload"]
            bad = [p for p in wanted if p not in PERMISSIONS]
            if bad:
                raise BadRequest(f"unknown permission {bad[0]!r}: use {', '.join(PERMISSIONS)}")
            perms = ",".join(sorted(set(wanted)))
        secret = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = await self.repo.create_token(record.id, _sha256(secret), secret[:10], description, index, perms)
        await self.repo.audit({
            "actor": actor or user, "action": "token.create", "index_name": index, "address": address,
            "detail": {"prefix": secret[:10], "user": user, "permissions": perms},
        })
        return token_id, secret

    async def ensure_initial_admin(self) -> str | None:
        """With no users yet, create ``admin`` with a random password and return it."""
        if await self.repo.count_users():
            return None
        password = initial_password()
        hashed = await self.hash_password(password)
        if await self.repo.create_user("admin", hashed, is_admin=True) is None:
            return None  # another process won the race
        return password


@functools.cache
def _dummy_hash() -> str:
    return PasswordHasher().hash(secrets.token_hex(8))
