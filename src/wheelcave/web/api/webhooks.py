"""``/api/v1/indexes/{index}/webhooks``: an index's webhooks and their delivery log, for those
who may ``manage`` the index.

A webhook URL is http or https without credentials in it. Only administrators may point one at
an address of this machine or of a private network (a receiver inside the network is theirs
to allow; for anyone else it would be a way to make the server call internal services). The
secret is shown once, when the webhook is made.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request, Response

from wheelcave.auth.access import Principal
from wheelcave.core import webhooks
from wheelcave.db.webhook_rows import WebhookRecord
from wheelcave.errors import BadRequest, NotFound
from wheelcave.jobs.webhooks import reaches_inside
from wheelcave.web.api import models as m
from wheelcave.web.api.deps import SignedIn, actor, need, services
from wheelcave.web.api.errors import ERRORS

__all__ = ["router"]

Id = Annotated[int, Path(ge=0, le=2**31 - 1)]
IndexName = Annotated[str, Path(max_length=64)]
router = APIRouter(responses=ERRORS, tags=["webhooks"])


def _out(w: WebhookRecord) -> m.WebhookOut:
    return m.WebhookOut(id=w.id, index=w.index_name, url=w.url, events=w.events.split(","),
                        created_at=w.created_at, created_by=w.created_by)


async def _checked_url(url: str, who: Principal) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("A webhook URL is http:// or https:// with a host.")
    if parts.username or parts.password:
        raise BadRequest("A webhook URL may not hold credentials: receivers check the signature instead.")
    if any(c in url for c in "\r\n\t ") or not url.isprintable():
        raise BadRequest("A webhook URL may not hold spaces or control characters.")
    if who.is_admin:
        return url
    try:
        inside = await reaches_inside(url)  # checked again at every delivery (the dispatcher)
    except (OSError, ValueError):
        raise BadRequest(f"The webhook host {parts.hostname!r} does not resolve.") from None
    if inside:
        raise BadRequest("Only administrators may send webhooks to this machine or a private network.")
    return url


async def _index_id(request: Request, who: Principal, index: str) -> int:
    await need(request, who, "manage", index)
    record = await services(request).repo.find_index(index)
    if record is None:
        raise NotFound(f"No index named {index!r}.")
    return record.id


@router.get("/indexes/{index}/webhooks", response_model=list[m.WebhookOut])
async def list_webhooks(index: IndexName, request: Request, who: SignedIn) -> list[m.WebhookOut]:
    index_id = await _index_id(request, who, index)
    return [_out(w) for w in await services(request).repo.list_webhooks(index_id)]


@router.post("/indexes/{index}/webhooks", response_model=m.WebhookCreated, status_code=201)
async def create_webhook(index: IndexName, body: m.WebhookIn, request: Request, who: SignedIn) -> m.WebhookCreated:
    index_id = await _index_id(request, who, index)
    try:
        events = webhooks.parse_events(body.events)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    url = await _checked_url(body.url, who)
    secret = body.secret or secrets.token_urlsafe(32)
    by = actor(request, who)
    made = await services(request).repo.create_webhook(
        index_id, url, secret, events, who.name,
        {"actor": by.name, "action": "webhook.create", "index_name": index, "address": by.address},
        allow_private=who.is_admin)
    return m.WebhookCreated(**_out(made).model_dump(), secret=secret)


@router.delete("/indexes/{index}/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(index: IndexName, webhook_id: Id, request: Request, who: SignedIn) -> Response:
    index_id = await _index_id(request, who, index)
    by = actor(request, who)
    if not await services(request).repo.delete_webhook(
            index_id, webhook_id, {"actor": by.name, "action": "webhook.delete", "index_name": index, "address": by.address}):
        raise NotFound(f"Index {index!r} has no webhook {webhook_id}.")
    return Response(status_code=204)


@router.get("/indexes/{index}/webhooks/{webhook_id}/deliveries", response_model=list[m.DeliveryOut])
async def list_deliveries(index: IndexName, webhook_id: Id, request: Request, who: SignedIn) -> list[m.DeliveryOut]:
    index_id = await _index_id(request, who, index)
    repo = services(request).repo
    if not any(w.id == webhook_id for w in await repo.list_webhooks(index_id)):
        raise NotFound(f"Index {index!r} has no webhook {webhook_id}.")
    return [m.DeliveryOut(id=d.id, event=d.event, status=d.status, attempts=d.attempts,  # type: ignore[arg-type]
                          next_attempt_at=d.next_attempt_at, last_status=d.last_status, last_error=d.last_error,
                          created_at=d.created_at, delivered_at=d.delivered_at)
            for d in await repo.deliveries(webhook_id)]
