"""Webhooks and their deliveries: what the API manages and the dispatcher works through.

Deliveries are written by the change they report (:meth:`Rows._audit`). A dispatcher takes a due
one by moving it from ``pending`` to ``sending`` in one guarded UPDATE (so two processes never
send the same one), with a lease: one left in ``sending`` by a process that died is due again
when the lease ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from wheelcave.core.webhooks import Delivery
from wheelcave.db import tables as t
from wheelcave.db.records import aware, utcnow
from wheelcave.db.rows import Rows

__all__ = ["DeliveryRecord", "WebhookRecord", "WebhookRows"]

#: How long a dispatcher may hold a delivery it took before another may take it.
LEASE = timedelta(seconds=120)


@dataclass(frozen=True)
class WebhookRecord:
    id: int
    index_name: str
    url: str
    events: str
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    webhook_id: int
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _hook(r: sa.Row) -> WebhookRecord:  # type: ignore[type-arg]
    return WebhookRecord(r.id, r.name, r.url, r.events, aware(r.created_at), r.created_by)  # type: ignore[arg-type]


class WebhookRows(Rows):
    """Webhooks and their deliveries."""

    _COLUMNS = (t.webhooks.c.id, t.indexes.c.name, t.webhooks.c.url, t.webhooks.c.events, t.webhooks.c.created_at,
                t.webhooks.c.created_by)

    async def create_webhook(self, index_id: int, url: str, secret: str, events: str, created_by: str | None,
                             audit: dict[str, object], *, allow_private: bool = False) -> WebhookRecord:
        now = utcnow()
        async with self.db.write() as conn:
            result = await conn.execute(sa.insert(t.webhooks).values(
                index_id=index_id, url=url, secret=secret, events=events, created_at=now, created_by=created_by,
                allow_private=allow_private))
            new_id = result.inserted_primary_key[0]  # type: ignore[index]
            await self._audit(conn, now, {**audit, "detail": {"webhook": new_id, "events": events}})
            row = (await conn.execute(sa.select(*self._COLUMNS).join(t.indexes, t.indexes.c.id == t.webhooks.c.index_id)
                                      .where(t.webhooks.c.id == new_id))).one()
        return _hook(row)

    async def list_webhooks(self, index_id: int) -> list[WebhookRecord]:
        query = (sa.select(*self._COLUMNS).join(t.indexes, t.indexes.c.id == t.webhooks.c.index_id)
                 .where(t.webhooks.c.index_id == index_id).order_by(t.webhooks.c.id))
        async with self.db.read() as conn:
            return [_hook(r) for r in await conn.execute(query)]

    async def delete_webhook(self, index_id: int, webhook_id: int, audit: dict[str, object]) -> bool:
        async with self.db.write() as conn:
            where = (t.webhooks.c.id == webhook_id, t.webhooks.c.index_id == index_id)
            if (await conn.execute(sa.select(t.webhooks.c.id).where(*where))).first() is None:
                return False
            await conn.execute(sa.delete(t.webhook_deliveries).where(t.webhook_deliveries.c.webhook_id == webhook_id))
            await conn.execute(sa.delete(t.webhooks).where(*where))
            await self._audit(conn, utcnow(), {**audit, "detail": {"webhook": webhook_id}})
            return True

    async def deliveries(self, webhook_id: int, limit: int = 100) -> list[DeliveryRecord]:
        d = t.webhook_deliveries.c
        query = sa.select(d.id, d.webhook_id, d.event, d.status, d.attempts, d.next_attempt_at, d.last_status,
                          d.last_error, d.created_at, d.delivered_at).where(d.webhook_id == webhook_id
                                                                            ).order_by(d.id.desc()).limit(limit)
        async with self.db.read() as conn:
            return [DeliveryRecord(r.id, r.webhook_id, r.event, r.status, r.attempts, aware(r.next_attempt_at),  # type: ignore[arg-type]
                                   r.last_status, r.last_error, aware(r.created_at), aware(r.delivered_at))  # type: ignore[arg-type]
                    for r in await conn.execute(query)]

    async def claim_due(self, limit: int = 20) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for this process (pending and due, or sending
        with an ended lease)."""
        now = utcnow()
        d = t.webhook_deliveries.c
        due = (sa.select(d.id).where(d.status.in_(("pending", "sending")), d.next_attempt_at <= now)
               .order_by(d.next_attempt_at).limit(limit))
        async with self.db.read() as conn:
            ids = list((await conn.execute(due)).scalars())
        taken: list[Delivery] = []
        for delivery_id in ids:
            async with self.db.write() as conn:
                won = await conn.execute(
                    sa.update(t.webhook_deliveries)
                    .where(d.id == delivery_id, d.status.in_(("pending", "sending")), d.next_attempt_at <= now)
                    .values(status="sending", next_attempt_at=now + LEASE))
                if not won.rowcount:
                    continue  # another process took it
                row = (await conn.execute(
                    sa.select(d.id, t.webhooks.c.url, t.webhooks.c.secret, d.event, d.payload, d.attempts,
                              t.webhooks.c.allow_private)
                    .join(t.webhooks, t.webhooks.c.id == d.webhook_id).where(d.id == delivery_id))).first()
            if row is not None:
                taken.append(Delivery(row.id, row.url, row.secret, row.event, row.payload, row.attempts,
                                         bool(row.allow_private)))
        return taken

    async def delivery_done(self, delivery_id: int, status: int) -> None:
        now = utcnow()
        async with self.db.write() as conn:
            await conn.execute(sa.update(t.webhook_deliveries).where(t.webhook_deliveries.c.id == delivery_id).values(
                status="delivered", attempts=t.webhook_deliveries.c.attempts + 1, last_status=status,
                last_error=None, delivered_at=now))

    async def delivery_failed(self, delivery_id: int, status: int | None, error: str, retry_in: float | None) -> None:
        """A failed try: due again in ``retry_in`` seconds, or given up (None)."""
        now = utcnow()
        values: dict[str, object] = {"attempts": t.webhook_deliveries.c.attempts + 1, "last_status": status,
                                     "last_error": error[:300]}
        if retry_in is None:
            values["status"] = "failed"
        else:
            values.update(status="pending", next_attempt_at=now + timedelta(seconds=retry_in))
        async with self.db.write() as conn:
            await conn.execute(sa.update(t.webhook_deliveries).where(t.webhook_deliveries.c.id == delivery_id).values(**values))
