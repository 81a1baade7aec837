"""Managing accounts and rights: users, groups, grants, project owners, tokens, trusted
publishers and htpasswd imports. Every change is audited with its actor and address, and
bumps the auth generation (see :mod:`wheelcave.auth.service`)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from wheelcave.auth.access import ANONYMOUS, PERMISSIONS, AccessList, Principal, Scope, parse_principal
from wheelcave.auth.passwords import HtpasswdError, parse_htpasswd
from wheelcave.auth.service import TOKEN_USER, AuthService, token_hash, validate_user_name
from wheelcave.core.errors import CoreError
from wheelcave.core.names import validate_project_name
from wheelcave.db.accounts import Accounts, PublisherRecord, UserRecord
from wheelcave.db.repository import Repository
from wheelcave.errors import BadRequest, Conflict, NotFound

__all__ = ["AccountAdmin", "Actor"]

_TOKEN_PREFIX = "wc_"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The longest a token may live when an expiry is given (ten years), so dates stay sane.
_MAX_LIFETIME = 10 * 365 * 86400.0


class Actor:
    """Who makes a change and from where, for the audit log (the CLI: ``cli``, no address)."""

    def __init__(self, name: str, address: str | None = None) -> None:
        self.name = name
        self.address = address


CLI = Actor("cli")


def _plain(text: str, what: str) -> str:
    """Refuse control characters (a NUL would reach the database, a newline the logs)."""
    if _CONTROL.search(text):
        raise BadRequest(f"{what} must not contain control characters")
    return text


class AccountAdmin:
    def __init__(self, accounts: Accounts, repo: Repository, auth: AuthService) -> None:
        self.accounts = accounts
        self.repo = repo
        self.auth = auth

    async def _audit(self, actor: Actor, action: str, *, index: str | None = None, project: str | None = None,
                     **detail: Any) -> None:
        await self.repo.audit({"actor": actor.name, "action": action, "index_name": index, "project": project,
                               "address": actor.address, "detail": detail or None})
        self.auth.changed()

    async def _user(self, name: str) -> UserRecord:
        record = await self.accounts.find_user(name)
        if record is None:
            raise NotFound(f"no user {name!r}")
        return record

    async def _index_id(self, name: str) -> int:
        record = await self.repo.find_index(name)
        if record is None:
            raise NotFound(f"No index named {name!r}.")
        return record.id

    # ------------------------------------------------------------ users

    async def add_user(self, name: str, password: str | None, *, is_admin: bool = False, actor: Actor = CLI) -> UserRecord:
        validate_user_name(name)
        if name == TOKEN_USER:
            raise BadRequest(f"{TOKEN_USER!r} is reserved for API tokens")
        hashed = await self.auth.hash_password(password) if password is not None else None
        record = await self.accounts.create_user(name, hashed, is_admin=is_admin)
        if record is None:
            raise Conflict(f"user {name!r} exists already", code="user-exists")
        await self._audit(actor, "user.create", user=name, admin=is_admin)
        return record

    async def set_password(self, name: str, password: str, *, actor: Actor = CLI) -> None:
        hashed = await self.auth.hash_password(password)
        if not await self.accounts.set_password(name, hashed):
            raise NotFound(f"no user {name!r}")
        await self._audit(actor, "user.password", user=name)

    async def set_admin(self, name: str, is_admin: bool, *, actor: Actor = CLI) -> None:
        done = await self.accounts.set_admin(name, is_admin)
        if done is None:
            raise BadRequest(f"{name!r} is the last administrator; make another one first")
        if not done:
            raise NotFound(f"no user {name!r}")
        await self._audit(actor, "user.admin", user=name, admin=is_admin)

    async def remove_user(self, name: str, *, actor: Actor = CLI) -> None:
        done = await self.accounts.delete_user(name)
        if done is None:
            raise BadRequest(f"{name!r} is the last administrator; make another one first")
        if not done:
            raise NotFound(f"no user {name!r}")
        await self._audit(actor, "user.remove", user=name)

    async def import_htpasswd(self, text: str, *, actor: Actor = CLI) -> tuple[list[str], list[str]]:
        """Create a user per entry (bcrypt or SHA-1, re-hashed with argon2id at first sign-in);
        returns (created, already there). Nothing is written if any line is refused."""
        try:
            entries = parse_htpasswd(text)
        except HtpasswdError as exc:
            raise BadRequest(f"htpasswd {exc}") from None
        for user, _ in entries:
            validate_user_name(user)
        created, existing = [], []
        for user, hashed in entries:
            if await self.accounts.create_user(user, hashed, is_admin=False) is None:
                existing.append(user)
            else:
                created.append(user)
        await self._audit(actor, "user.import", created=created, existing=existing)
        return created, existing

    # ------------------------------------------------------------ groups

    async def add_group(self, name: str, *, actor: Actor = CLI) -> None:
        validate_user_name(name)
        if not await self.accounts.create_group(name):
            raise Conflict(f"group {name!r} exists already", code="group-exists")
        await self._audit(actor, "group.create", group=name)

    async def remove_group(self, name: str, *, actor: Actor = CLI) -> None:
        if not await self.accounts.delete_group(name):
            raise NotFound(f"No group named {name!r}.")
        await self._audit(actor, "group.remove", group=name)

    async def set_members(self, group: str, users: Sequence[str], *, member: bool, actor: Actor = CLI) -> None:
        for user in users:
            validate_user_name(user)
        for user in users:
            missing = await self.accounts.set_member(group, user, member=member)
            if missing is not None:
                raise NotFound(f"No {missing}.")
        await self._audit(actor, "group.members", group=group, users=list(users), member=member)

    # ------------------------------------------------------------ grants and owners

    async def _check_principal(self, text: str) -> str:
        try:
            principal = parse_principal(text)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        kind, _, name = principal.partition(":")
        if kind == "user":
            await self._user(name)
        elif kind == "group" and name not in await self.accounts.list_groups():
            raise NotFound(f"No group named {name!r}.")
        return principal

    async def set_grants(self, index: str, principal: str, permissions: Sequence[str], *, granted: bool,
                         actor: Actor = CLI) -> None:
        perms = sorted(set(permissions))
        bad = [p for p in perms if p not in PERMISSIONS]
        if bad or not perms:
            raise BadRequest(f"unknown permission {bad[0]!r}: use {', '.join(PERMISSIONS)}" if bad else "no permission given")
        key = await self._check_principal(principal)
        if key == ANONYMOUS and granted and perms != ["read"]:
            raise BadRequest("anonymous requests may only be granted read")
        await self.accounts.set_grants(await self._index_id(index), key, perms, granted=granted)
        await self._audit(actor, "acl.grant" if granted else "acl.revoke", index=index, principal=key, permissions=perms)

    async def set_owner(self, index: str, project: str, principal: str, *, owner: bool, actor: Actor = CLI) -> None:
        key = await self._check_principal(principal)
        if key in ("anonymous", "authenticated"):
            raise BadRequest("a project is owned by users and groups")
        try:
            name = validate_project_name(project)
        except CoreError as exc:
            raise BadRequest(str(exc)) from None
        await self.accounts.set_owner(await self._index_id(index), name, key, owner=owner)
        await self._audit(actor, "project.owner" if owner else "project.disown", index=index, project=name, principal=key)

    # ------------------------------------------------------------ tokens

    async def create_token(
        self, owner: str, *, description: str | None = None, scope: Scope | None = None,
        expires_in: float | None = None, actor: Actor = CLI,
    ) -> tuple[int, str]:
        """A new API token for ``owner`` (shown once, stored hashed). Refused when its scope
        names a right the owner does not hold now (it could never be used anyway)."""
        record = await self._user(owner)
        if description is not None:
            _plain(description, "a token's description")
        if scope is not None:
            await self._check_scope(record, scope)
        expires_at = None
        if expires_in is not None:
            if not 0 < expires_in <= _MAX_LIFETIME:
                raise BadRequest("expiry must be between 1 second and 10 years")
            expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        secret = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = await self.accounts.create_token(
            user_id=record.id, publisher_id=None, token_hash=token_hash(secret), prefix=secret[:10],
            description=description, scope=scope.to_json() if scope else None, expires_at=expires_at)
        await self._audit(actor, "token.create", user=owner, prefix=secret[:10],
                          scope=scope.to_json() if scope else None,
                          expires_at=expires_at.isoformat() if expires_at else None)
        return token_id, secret

    async def _check_scope(self, owner: UserRecord, scope: Scope) -> None:
        perms = scope.permissions if scope.permissions is not None else frozenset(PERMISSIONS)
        bad = sorted(p for p in perms if p not in PERMISSIONS)
        if bad:
            raise BadRequest(f"unknown permission {bad[0]!r}: use {', '.join(PERMISSIONS)}")
        for project in sorted(scope.projects or ()):
            try:
                validate_project_name(project)
            except CoreError as exc:
                raise BadRequest(str(exc)) from None
        access = await self.auth.access()
        who = Principal(owner.name, owner.id, owner.is_admin, frozenset(await self.accounts.user_groups(owner.id)))
        names = [r.name for r in await self.repo.list_indexes()]
        for index in sorted(scope.indexes or ()):
            if index not in names:
                raise BadRequest(f"No index named {index!r}.")
        if scope.permissions is None:
            return  # "whatever the owner may do there": nothing to exceed
        for perm in sorted(perms):
            where = sorted(scope.indexes) if scope.indexes is not None else names
            holds = [i for i in where if perm in access.rights(who, i)]
            if scope.indexes is not None and len(holds) != len(where):
                missing = next(i for i in where if i not in holds)
                raise BadRequest(f"user {owner.name!r} does not hold {perm!r} on index {missing!r}, "
                                 "so no token of theirs can")
            if not holds:
                raise BadRequest(f"user {owner.name!r} holds {perm!r} on no index, so no token of theirs can")

    async def revoke_token(self, token_id: int, *, by: Principal | None = None, actor: Actor = CLI) -> None:
        """Revoke a token: its owner or an administrator (``by`` None: the CLI)."""
        token = next((t for t in await self.accounts.list_tokens() if t.id == token_id), None)
        if token is None or (by is not None and not by.is_admin and token.user_name != by.name):
            raise NotFound(f"No token with id {token_id}.")
        await self.accounts.delete_token(token_id)
        await self._audit(actor, "token.revoke", id=token_id, user=token.user_name)

    # ------------------------------------------------------------ trusted publishers

    async def add_publisher(self, index: str, issuer: str, claims: Mapping[str, str], project: str | None = None,
                            *, actor: Actor = CLI) -> int:
        record = await self.repo.find_index(index)
        if record is None:
            raise NotFound(f"No index named {index!r}.")
        if record.kind != "hosted":
            raise BadRequest(f"Index {index!r} is {record.kind}; trusted publishers publish to hosted indexes.")
        _plain(issuer, "the issuer")
        for key, value in claims.items():
            _plain(f"{key}{value}", "claims")
        if not issuer.startswith(("https://", "http://")):
            raise BadRequest("issuer must be the issuer's URL (its iss claim)")
        if not claims or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in claims.items()):
            raise BadRequest("a trusted publisher needs at least one claim to match, e.g. repository=owner/name")
        try:
            name = validate_project_name(project) if project else None
        except CoreError as exc:
            raise BadRequest(str(exc)) from None
        publisher_id = await self.accounts.add_publisher(record.id, name, issuer.rstrip("/"), claims, actor.name)
        await self._audit(actor, "publisher.add", index=index, project=name, id=publisher_id, issuer=issuer,
                          claims=dict(claims))
        return publisher_id

    async def publishers(self) -> list[PublisherRecord]:
        return await self.accounts.publishers()

    async def remove_publisher(self, publisher_id: int, *, actor: Actor = CLI) -> None:
        if not await self.accounts.delete_publisher(publisher_id):
            raise NotFound(f"No trusted publisher with id {publisher_id}.")
        await self._audit(actor, "publisher.remove", id=publisher_id)

    async def access(self) -> AccessList:
        return await self.auth.access()
