"""Authentication: HTTP Basic with a user's password or ``__token__`` + an API token.

What is remembered, and for how long: a verified ``Authorization`` header maps to its
:class:`Principal` (keyed by a sha256 of the header, never the secret itself) until the auth
generation moves. Every change to credentials or rights (a password, a removed user, a revoked
token, a grant, a group) bumps that generation in the database, and each process polls it
every ``refresh_interval`` seconds (0.5 by default), so such a change holds in every worker
and replica within a second. API tokens are sha256-hashed secrets: checking one costs a
query, never argon2. Passwords cost argon2id (64 MiB): at most ``max_password_checks`` run at
once, and failures are limited per address and per user (:class:`FailureThrottle`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import re
import secrets
import time
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from wheelcave.auth.access import AccessList, Principal, Scope
from wheelcave.auth.passwords import PasswordHashes
from wheelcave.auth.throttle import FailureThrottle
from wheelcave.db.accounts import Accounts, TokenLookup
from wheelcave.errors import BadRequest, TooManyRequests, Unauthorized
from wheelcave.metrics import Metrics

__all__ = ["TOKEN_USER", "AuthService", "initial_password", "token_hash", "validate_user_name"]

log = logging.getLogger("wheelcave.auth")

TOKEN_USER = "__token__"
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_BAD_CREDENTIALS = "Invalid or non-existent authentication information"
_MAX_REMEMBERED = 10_000
_MAX_WAITING = 64


def initial_password() -> str:
    """24 random URL-safe characters that never start with ``-``: a password pasted after
    ``-p`` (twine, curl) must not be read as an option (one in 64 did before)."""
    while True:
        password = secrets.token_urlsafe(18)
        if not password.startswith("-"):
            return password


def validate_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        msg = f"invalid name {name!r}: letters, digits, '.', '_' and '-', at most 64"
        raise BadRequest(msg)
    return name


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _expired(who: Principal, now: datetime | None = None) -> bool:
    return who.expires_at is not None and who.expires_at <= (now or datetime.now(UTC))


def _safe(text: str) -> str:
    """A user name as typed, fit for a log line (it may be anything a client sent)."""
    return text[:64].encode("unicode_escape").decode()


class AuthService:
    def __init__(
        self, accounts: Accounts, *, anonymous_read: bool = True, hashes: PasswordHashes | None = None,
        metrics: Metrics | None = None, throttle: FailureThrottle | None = None,
        refresh_interval: float = 0.5, max_password_checks: int = 1, touch_interval: float = 60.0,
    ) -> None:
        self.accounts = accounts
        self.anonymous_read = anonymous_read
        self.hashes = hashes or PasswordHashes()
        self.metrics = metrics or Metrics()
        self.throttle = throttle or FailureThrottle()
        self.refresh_interval = refresh_interval
        self.touch_interval = touch_interval
        self._generation: int | None = None
        self._checked_at = -1e9
        self._access = AccessList((), anonymous_read=anonymous_read)
        self._known: dict[str, Principal] = {}
        self._touched: dict[int, float] = {}
        self._lock = anyio.Lock()
        self._slots = anyio.Semaphore(max_password_checks)
        self._waiting = 0

    # ------------------------------------------------------------ the shared state

    def expire(self) -> None:
        """Another process changed credentials or grants (a notification said so): look at the
        generation on the next request instead of at the next poll."""
        self._checked_at = -1e9

    async def access(self) -> AccessList:
        """The grants in force, re-read when the auth generation has moved."""
        if self._is_fresh():
            return self._access
        async with self._lock:
            if not self._is_fresh():
                generation = await self.accounts.generation()
                if generation != self._generation:
                    self._access = AccessList(await self.accounts.grants(), anonymous_read=self.anonymous_read)
                    self._known.clear()
                    self._generation = generation
                self._checked_at = time.monotonic()
        return self._access

    def access_now(self) -> AccessList | None:
        """:meth:`access` without I/O, or None when the generation is due for a look."""
        return self._access if self._is_fresh() else None

    def _is_fresh(self) -> bool:
        return time.monotonic() - self._checked_at < self.refresh_interval

    def changed(self) -> None:
        """This process changed credentials or grants: forget everything now, not at the next poll."""
        self._checked_at = -1e9
        self._generation = None
        self._known.clear()

    def remembered(self, authorization: str) -> Principal | None:
        """The principal of a header verified before (since the last change), or None. No I/O:
        for the hot path, after :meth:`access`."""
        who = self._known.get(token_hash(authorization))
        if who is None or _expired(who):
            return None
        if who.token_id is not None and time.monotonic() - self._touched.get(who.token_id, -1e9) > self.touch_interval:
            return None  # let the slow path write last_used
        return who

    # ------------------------------------------------------------ checking

    async def authenticate(self, authorization: str | None, address: str | None = None) -> Principal | None:
        """The principal behind an ``Authorization`` header; None without one.

        Raises :class:`Unauthorized` for a malformed header or wrong credentials, and
        :class:`TooManyRequests` while the address or user is over its failure limit.
        """
        if not authorization:
            return None
        await self.access()
        generation = self._generation
        key = token_hash(authorization)
        who = self._known.get(key)
        if who is None:
            user, password = self._basic(authorization)
            who = await (self._token(password, address) if user == TOKEN_USER else self._password(user, password, address))
            if self._generation == generation:  # not verified against data that changed meanwhile
                if len(self._known) >= _MAX_REMEMBERED:
                    self._known.clear()
                self._known[key] = who
        if _expired(who):
            self._known.pop(key, None)
            self.metrics.auth_failure("expired")
            raise Unauthorized(_BAD_CREDENTIALS + ": the API token has expired")
        await self._touch(who)
        return who

    def _basic(self, authorization: str) -> tuple[str, str]:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            self.metrics.auth_failure("malformed")
            raise Unauthorized(_BAD_CREDENTIALS + ": only HTTP Basic is supported")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            self.metrics.auth_failure("malformed")
            raise Unauthorized(_BAD_CREDENTIALS + ": malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            self.metrics.auth_failure("malformed")
            raise Unauthorized(_BAD_CREDENTIALS)
        return user, password

    def _refuse_if_throttled(self, address: str | None, user: str | None) -> None:
        blocked = self.throttle.blocked(address, user)
        if blocked is not None:
            limit, wait = blocked
            self.metrics.auth_throttled(limit)
            raise TooManyRequests(f"Too many failed sign-ins from this {limit}; try again later.",
                                  retry_after=int(wait) + 1)

    def _failed(self, reason: str, address: str | None, user: str | None) -> Unauthorized:
        self.throttle.failed(address, user)
        self.metrics.auth_failure(reason)
        log.warning("auth.failed reason=%s user=%s address=%s", reason, _safe(user) if user else "-", address or "-")
        return Unauthorized(_BAD_CREDENTIALS + (": unknown API token" if reason == "token" else ""))

    async def _token(self, secret: str, address: str | None) -> Principal:
        self._refuse_if_throttled(address, None)
        found = await self.accounts.find_token(token_hash(secret))
        if found is None:
            raise self._failed("token", address, None)
        return await self.principal_for_token(found)

    async def principal_for_token(self, found: TokenLookup) -> Principal:
        if found.publisher is not None:
            pub = found.publisher
            scope = Scope(frozenset({pub.index_name}), frozenset({pub.project}) if pub.project else None,
                          frozenset({"read", "upload"}))
            return Principal(f"publisher:{pub.id}", scope=scope, token_id=found.id, expires_at=found.expires_at,
                             publisher_index=pub.index_name)
        assert found.user is not None
        groups = frozenset(await self.accounts.user_groups(found.user.id))
        return Principal(found.user.name, found.user.id, found.user.is_admin, groups,
                         Scope.from_json(found.scope), found.id, found.expires_at)

    async def _password(self, user: str, password: str, address: str | None) -> Principal:
        self._refuse_if_throttled(address, user)
        record = await self.accounts.find_user(user)
        hashed = record.password_hash if record is not None and record.password_hash else _dummy_hash()
        # Unknown users cost the same time as known ones, so names cannot be probed by timing.
        ok = await self._verify(hashed, password)
        if not ok or record is None or not record.password_hash:
            raise self._failed("password", address, user)
        if self.hashes.needs_rehash(hashed):  # an imported bcrypt or SHA-1 hash: argon2id from now on
            new = await anyio.to_thread.run_sync(self.hashes.hash, password)
            await self.accounts.set_password(record.name, new)
            log.info("auth.rehashed user=%s", _safe(record.name))
        groups = frozenset(await self.accounts.user_groups(record.id))
        return Principal(record.name, record.id, record.is_admin, groups)

    async def _verify(self, hashed: str, password: str) -> bool:
        if self._waiting >= _MAX_WAITING:
            self.metrics.auth_throttled("busy")
            raise TooManyRequests("Too many sign-ins at once; try again in a moment.", retry_after=1)
        self._waiting += 1
        try:
            async with self._slots:
                return await anyio.to_thread.run_sync(self.hashes.verify, hashed, password)
        finally:
            self._waiting -= 1

    async def _touch(self, who: Principal) -> None:
        """Write a token's last use (at most once a ``touch_interval`` per token and process)."""
        if who.token_id is None:
            return
        now = time.monotonic()
        if now - self._touched.get(who.token_id, -1e9) < self.touch_interval:
            return
        if len(self._touched) >= _MAX_REMEMBERED:
            self._touched.clear()
        self._touched[who.token_id] = now
        await self.accounts.touch_token(who.token_id, datetime.now(UTC))

    async def hash_password(self, password: str) -> str:
        if len(password) < 8:
            msg = "password too short: use at least 8 characters"
            raise BadRequest(msg)
        return await anyio.to_thread.run_sync(self.hashes.hash, password)

    async def ensure_initial_admin(self) -> str | None:
        """With no users yet, create ``admin`` with a random password and return it."""
        if await self.accounts.count_users():
            return None
        password = initial_password()
        hashed = await self.hash_password(password)
        if await self.accounts.create_user("admin", hashed, is_admin=True) is None:
            return None  # another process won the race
        return password


@functools.cache
def _dummy_hash() -> str:
    return PasswordHashes().hash(secrets.token_hex(8))
