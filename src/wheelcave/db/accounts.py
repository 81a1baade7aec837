"""Accounts and rights: users, groups, per-index grants, project owners, API tokens, trusted
publishers, and the auth generation that tells every process to forget what it remembers.

Every change to who may do what bumps ``auth_state.generation`` in the same transaction, so a
process that polls it drops its remembered credentials and grants within its poll interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from wheelcave.db import tables as t
from wheelcave.db.engine import Database
from wheelcave.db.records import aware, utcnow

__all__ = ["Accounts", "PublisherRecord", "TokenLookup", "TokenRecord", "UserRecord"]


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    password_hash: str | None
    is_admin: bool


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user_name: str | None
    publisher_id: int | None
    prefix: str
    description: str | None
    created_at: datetime
    last_used: datetime | None
    expires_at: datetime | None
    scope: Mapping[str, Any] | None


@dataclass(frozen=True)
class PublisherRecord:
    id: int
    index_name: str
    project: str | None
    issuer: str
    claims: Mapping[str, str]
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class TokenLookup:
    """A token found by its hash: its owner (a user, or a trusted publisher) and scope."""

    id: int
    user: UserRecord | None
    publisher: PublisherRecord | None
    scope: Mapping[str, Any] | None
    expires_at: datetime | None
    last_used: datetime | None


def _user(row: Any) -> UserRecord:
    return UserRecord(row.id, row.name, row.password_hash, bool(row.is_admin))


class Accounts:
    """Every accounts query, on one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ the generation

    async def generation(self) -> int:
        async with self.db.read() as conn:
            value = (await conn.execute(sa.select(t.auth_state.c.generation).where(t.auth_state.c.id == 1))).scalar()
        return int(value or 0)

    @staticmethod
    async def _bump(conn: AsyncConnection) -> None:
        await conn.execute(
            sa.update(t.auth_state).where(t.auth_state.c.id == 1).values(generation=t.auth_state.c.generation + 1)
        )

    # ------------------------------------------------------------ users

    async def count_users(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(t.users))).scalar_one())

    async def create_user(self, name: str, password_hash: str | None, *, is_admin: bool) -> UserRecord | None:
        try:
            async with self.db.write() as conn:
                await conn.execute(sa.insert(t.users).values(
                    name=name, password_hash=password_hash, is_admin=is_admin, created_at=utcnow()))
                await self._bump(conn)
        except IntegrityError:
            return None
        return await self.find_user(name)

    async def set_password(self, name: str, password_hash: str | None) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                sa.update(t.users).where(t.users.c.name == name).values(password_hash=password_hash))
            await self._bump(conn)
            return bool(result.rowcount)

    @staticmethod
    async def _last_admin(conn: AsyncConnection, name: str) -> bool:
        """Whether ``name`` is the only administrator left (checked inside the writing transaction)."""
        others = await conn.execute(sa.select(sa.func.count()).select_from(t.users)
                                    .where(t.users.c.is_admin == sa.true(), t.users.c.name != name))
        me = await conn.execute(sa.select(t.users.c.is_admin).where(t.users.c.name == name))
        return bool(me.scalar()) and not others.scalar_one()

    async def set_admin(self, name: str, is_admin: bool) -> bool | None:
        """True when done, False for no such user, None when it would leave no administrator."""
        async with self.db.write() as conn:
            if not is_admin and await self._last_admin(conn, name):
                return None
            result = await conn.execute(sa.update(t.users).where(t.users.c.name == name).values(is_admin=is_admin))
            await self._bump(conn)
            return bool(result.rowcount)

    async def delete_user(self, name: str) -> bool | None:
        """Remove a user, their tokens, memberships, grants and ownerships (None: refused, it is
        the last administrator)."""
        async with self.db.write() as conn:
            if await self._last_admin(conn, name):
                return None
            user_id = await self._forget(conn, f"user:{name}", t.users, name)
            if user_id is None:
                return False
            await conn.execute(sa.delete(t.tokens).where(t.tokens.c.user_id == user_id))
            await conn.execute(sa.delete(t.group_members).where(t.group_members.c.user_id == user_id))
            await conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))
            await self._bump(conn)
            return True

    @staticmethod
    async def _forget(conn: AsyncConnection, principal: str, table: sa.Table, name: str) -> int | None:
        """Drop a user's or group's grants and ownerships; its id (None if there is no such name)."""
        await conn.execute(sa.delete(t.acl_entries).where(t.acl_entries.c.principal == principal))
        await conn.execute(sa.delete(t.project_owners).where(t.project_owners.c.principal == principal))
        found = (await conn.execute(sa.select(table.c.id).where(table.c.name == name))).scalar()
        return None if found is None else int(found)

    async def find_user(self, name: str) -> UserRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(t.users).where(t.users.c.name == name))).first()
        return _user(row) if row is not None else None

    async def list_users(self) -> list[UserRecord]:
        async with self.db.read() as conn:
            return [_user(r) for r in await conn.execute(sa.select(t.users).order_by(t.users.c.name))]

    async def user_groups(self, user_id: int) -> list[str]:
        query = (sa.select(t.groups.c.name).join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
                 .where(t.group_members.c.user_id == user_id).order_by(t.groups.c.name))
        async with self.db.read() as conn:
            return [r.name for r in await conn.execute(query)]

    # ------------------------------------------------------------ groups

    async def create_group(self, name: str) -> bool:
        try:
            async with self.db.write() as conn:
                await conn.execute(sa.insert(t.groups).values(name=name, created_at=utcnow()))
        except IntegrityError:
            return False
        return True

    async def delete_group(self, name: str) -> bool:
        async with self.db.write() as conn:
            group_id = await self._forget(conn, f"group:{name}", t.groups, name)
            if group_id is None:
                return False
            await conn.execute(sa.delete(t.group_members).where(t.group_members.c.group_id == group_id))
            await conn.execute(sa.delete(t.groups).where(t.groups.c.id == group_id))
            await self._bump(conn)
            return True

    async def set_member(self, group: str, user: str, *, member: bool) -> str | None:
        """Add or remove a member; None when done, else which name does not exist."""
        async with self.db.write() as conn:
            group_id = (await conn.execute(sa.select(t.groups.c.id).where(t.groups.c.name == group))).scalar()
            if group_id is None:
                return f"group {group!r}"
            user_id = (await conn.execute(sa.select(t.users.c.id).where(t.users.c.name == user))).scalar()
            if user_id is None:
                return f"user {user!r}"
            where = (t.group_members.c.group_id == group_id) & (t.group_members.c.user_id == user_id)
            await conn.execute(sa.delete(t.group_members).where(where))
            if member:
                await conn.execute(sa.insert(t.group_members).values(group_id=group_id, user_id=user_id))
            await self._bump(conn)
        return None

    async def list_groups(self) -> dict[str, list[str]]:
        query = (sa.select(t.groups.c.name, t.users.c.name.label("user"))
                 .select_from(t.groups.outerjoin(t.group_members, t.group_members.c.group_id == t.groups.c.id)
                              .outerjoin(t.users, t.users.c.id == t.group_members.c.user_id))
                 .order_by(t.groups.c.name, t.users.c.name))
        out: dict[str, list[str]] = {}
        async with self.db.read() as conn:
            for row in await conn.execute(query):
                out.setdefault(row.name, [])
                if row.user is not None:
                    out[row.name].append(row.user)
        return out

    # ------------------------------------------------------------ grants

    async def grants(self) -> list[tuple[str, str, str]]:
        """Every (index name, principal, permission)."""
        query = (sa.select(t.indexes.c.name, t.acl_entries.c.principal, t.acl_entries.c.permission)
                 .join(t.indexes, t.indexes.c.id == t.acl_entries.c.index_id)
                 .order_by(t.indexes.c.name, t.acl_entries.c.principal, t.acl_entries.c.permission))
        async with self.db.read() as conn:
            return [(r.name, r.principal, r.permission) for r in await conn.execute(query)]

    async def set_grants(self, index_id: int, principal: str, permissions: Sequence[str], *, granted: bool) -> None:
        async with self.db.write() as conn:
            where = (t.acl_entries.c.index_id == index_id) & (t.acl_entries.c.principal == principal)
            await conn.execute(sa.delete(t.acl_entries).where(where & t.acl_entries.c.permission.in_(list(permissions))))
            if granted:
                await conn.execute(sa.insert(t.acl_entries), [
                    {"index_id": index_id, "principal": principal, "permission": p} for p in permissions])
            await self._bump(conn)

    # ------------------------------------------------------------ project owners

    async def owners(self, index_id: int, project: str) -> list[str]:
        query = (sa.select(t.project_owners.c.principal)
                 .where((t.project_owners.c.index_id == index_id) & (t.project_owners.c.project == project))
                 .order_by(t.project_owners.c.principal))
        async with self.db.read() as conn:
            return [r.principal for r in await conn.execute(query)]

    async def set_owner(self, index_id: int, project: str, principal: str, *, owner: bool) -> None:
        async with self.db.write() as conn:
            where = ((t.project_owners.c.index_id == index_id) & (t.project_owners.c.project == project)
                     & (t.project_owners.c.principal == principal))
            await conn.execute(sa.delete(t.project_owners).where(where))
            if owner:
                await conn.execute(sa.insert(t.project_owners).values(index_id=index_id, project=project, principal=principal))

    async def claim_project(self, index_id: int, project: str, principal: str) -> list[str]:
        """Make ``principal`` the owner of a project nobody owns yet; returns the owners after."""
        async with self.db.write() as conn:
            where = (t.project_owners.c.index_id == index_id) & (t.project_owners.c.project == project)
            current = [r.principal for r in await conn.execute(sa.select(t.project_owners.c.principal).where(where))]
            if current:
                return sorted(current)
            await conn.execute(sa.insert(t.project_owners).values(index_id=index_id, project=project, principal=principal))
            return [principal]

    # ------------------------------------------------------------ tokens

    async def create_token(
        self, *, user_id: int | None, publisher_id: int | None, token_hash: str, prefix: str,
        description: str | None, scope: Mapping[str, Any] | None, expires_at: datetime | None,
    ) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(sa.insert(t.tokens).values(
                user_id=user_id, publisher_id=publisher_id, token_hash=token_hash, prefix=prefix,
                description=description, created_at=utcnow(), scope=dict(scope) if scope else None,
                expires_at=expires_at))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def find_token(self, token_hash: str) -> TokenLookup | None:
        query = (
            sa.select(t.tokens, t.users.c.name.label("user_name"), t.users.c.password_hash, t.users.c.is_admin)
            .select_from(t.tokens.outerjoin(t.users, t.users.c.id == t.tokens.c.user_id))
            .where(t.tokens.c.token_hash == token_hash)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        user = UserRecord(row.user_id, row.user_name, row.password_hash, bool(row.is_admin)) if row.user_name else None
        publisher = None
        if row.publisher_id is not None:
            publisher = next((p for p in await self.publishers() if p.id == row.publisher_id), None)
            if publisher is None:
                return None
        if user is None and publisher is None:
            return None
        return TokenLookup(row.id, user, publisher, row.scope, aware(row.expires_at), aware(row.last_used))

    async def touch_token(self, token_id: int, when: datetime) -> None:
        async with self.db.write() as conn:
            await conn.execute(sa.update(t.tokens).where(t.tokens.c.id == token_id).values(last_used=when))

    async def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        query = (sa.select(t.tokens, t.users.c.name.label("user_name"))
                 .select_from(t.tokens.outerjoin(t.users, t.users.c.id == t.tokens.c.user_id))
                 .order_by(t.tokens.c.id))
        if user is not None:
            query = query.where(t.users.c.name == user)
        async with self.db.read() as conn:
            return [
                TokenRecord(r.id, r.user_name, r.publisher_id, r.prefix, r.description,
                            aware(r.created_at) or utcnow(), aware(r.last_used), aware(r.expires_at), r.scope)
                for r in await conn.execute(query)
            ]

    async def delete_token(self, token_id: int) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(sa.delete(t.tokens).where(t.tokens.c.id == token_id))
            await self._bump(conn)
            return bool(result.rowcount)

    async def delete_expired_tokens(self, now: datetime) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(sa.delete(t.tokens).where(t.tokens.c.expires_at < now))
            return int(result.rowcount or 0)

    # ------------------------------------------------------------ trusted publishers

    async def add_publisher(
        self, index_id: int, project: str | None, issuer: str, claims: Mapping[str, str], created_by: str | None,
    ) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(sa.insert(t.trusted_publishers).values(
                index_id=index_id, project=project, issuer=issuer, claims=dict(claims),
                created_at=utcnow(), created_by=created_by))
            await self._bump(conn)
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def publishers(self, issuer: str | None = None) -> list[PublisherRecord]:
        query = (sa.select(t.trusted_publishers, t.indexes.c.name.label("index_name"))
                 .join(t.indexes, t.indexes.c.id == t.trusted_publishers.c.index_id)
                 .order_by(t.trusted_publishers.c.id))
        if issuer is not None:
            query = query.where(t.trusted_publishers.c.issuer == issuer)
        async with self.db.read() as conn:
            return [PublisherRecord(r.id, r.index_name, r.project, r.issuer, dict(r.claims or {}),
                                    aware(r.created_at) or utcnow(), r.created_by)
                    for r in await conn.execute(query)]

    async def delete_publisher(self, publisher_id: int) -> bool:
        async with self.db.write() as conn:
            await conn.execute(sa.delete(t.tokens).where(t.tokens.c.publisher_id == publisher_id))
            result = await conn.execute(sa.delete(t.trusted_publishers).where(t.trusted_publishers.c.id == publisher_id))
            await self._bump(conn)
            return bool(result.rowcount)
