"""An index's webhooks and their delivery log (issue 14), for its managers and the
administrators: where events go, and what became of each of the last deliveries. Webhooks are
made and removed through the API (``/api/v1/indexes/{index}/webhooks``), which shows a new
webhook's secret once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wheelcave.errors import NotFound
from wheelcave.web.access import require
from wheelcave.web.deps import services
from wheelcave.web.ui.render import page, render, when

__all__ = ["routes"]

SHOWN = 30


@page
async def webhooks_page(request: Request) -> Response:
    name = request.path_params["index"]
    await require(request, "manage", name)
    repo = services(request).repo
    record = await repo.find_index(name)
    if record is None:
        raise NotFound(f"No index named {name!r}.")
    hooks = []
    for w in await repo.list_webhooks(record.id):
        deliveries = [{"id": d.id, "event": d.event, "status": d.status, "attempts": d.attempts,
                       "last_status": d.last_status or "", "last_error": d.last_error or "", "when": when(d.created_at),
                       "next": when(d.next_attempt_at) if d.status == "pending" else ""}
                      for d in await repo.deliveries(w.id, SHOWN)]
        hooks.append({"id": w.id, "url": w.url, "events": w.events.replace(",", ", "), "by": w.created_by or "",
                      "when": when(w.created_at), "deliveries": deliveries})
    return await render(request, "webhooks.html", index=name, hooks=hooks, shown=SHOWN)


routes = [Route("/index/{index}/webhooks", webhooks_page, methods=["GET", "HEAD"])]
