"""Cache and traffic of a mirror (issue 12): hit rate, bytes from the cache vs from upstream,
upstream health over time, as server-drawn SVG charts. For the index's managers and the
administrators (what a mirror is asked for says what a team builds)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wheelcave.core import traffic
from wheelcave.core.traffic import BUCKET, Bucket
from wheelcave.db.traffic import TrafficTable
from wheelcave.errors import NotFound
from wheelcave.web.access import require
from wheelcave.web.deps import services
from wheelcave.web.ui.charts import bar_chart, human_bytes
from wheelcave.web.ui.render import page, render

#: Range name -> (bars, seconds per bar).
RANGES = {"1h": (12, BUCKET), "24h": (24, 3600), "7d": (28, 6 * 3600), "30d": (30, 86400)}


def _bars(buckets: list[Bucket], bars: int, step: int, now: int) -> tuple[list[str], list[dict[str, int]]]:
    end = now // step * step + step
    start = end - bars * step
    sums: list[dict[str, int]] = [dict.fromkeys(traffic.COUNTS, 0) for _ in range(bars)]
    for b in buckets:
        slot = (b.start - start) // step
        if 0 <= slot < bars:
            for name in traffic.COUNTS:
                sums[slot][name] += b.get(name)
    fmt = "%H:%M" if step < 86400 else "%m-%d"
    labels = [datetime.fromtimestamp(start + i * step, UTC).strftime(fmt) for i in range(bars)]
    return labels, sums


@page
async def traffic_page(request: Request) -> Response:
    name = request.path_params["index"]
    await require(request, "manage", name)
    svc = services(request)
    record = next((r for r in await svc.registry.names() if r.name == name), None)
    if record is None or record.kind != "mirror":
        raise NotFound(f"Index {name!r} is not a mirror: traffic is counted for mirrors.")
    chosen = request.query_params.get("range", "24h")
    if chosen not in RANGES:
        chosen = "24h"
    bars, step = RANGES[chosen]
    store = TrafficTable(svc.db)
    await traffic.flush(svc.registry.metrics.traffic, store)  # this process's counts, now
    now = int(time.time())
    buckets = await store.traffic(name, now // step * step + step - bars * step)
    labels, sums = _bars(buckets, bars, step, now)
    total = traffic.totals(buckets)
    requests = [(s["page_hits"] + s["page_stale"] + s["file_hits"], s["page_fetches"] + s["file_misses"]) for s in sums]
    from_cache = sum(a for a, _ in requests)
    asked = from_cache + sum(b for _, b in requests)
    upstream_calls = total["page_fetches"] + total["file_misses"]
    figures = [
        ("hit rate", f"{100 * from_cache / asked:.1f} %" if asked else "–"),
        ("served from the cache", human_bytes(total["bytes_cache"])),
        ("fetched from upstream", human_bytes(total["bytes_upstream"])),
        ("upstream errors", f"{total['upstream_errors']:,} of {upstream_calls + total['upstream_errors']:,} calls"),
        ("stale answers", f"{total['page_stale']:,}"),
    ]
    charts = [
        bar_chart("requests", "Requests: answered from the cache or from upstream", labels,
                  [("from the cache", [a for a, _ in requests]), ("from upstream", [b for _, b in requests])]),
        bar_chart("bytes", "File bytes: served from the cache or fetched from upstream", labels,
                  [("from the cache", [s["bytes_cache"] for s in sums]),
                   ("from upstream", [s["bytes_upstream"] for s in sums])], fmt=human_bytes),
        bar_chart("health", "Upstream health: calls that worked, answers given stale, calls that failed", labels,
                  [("worked", [s["page_fetches"] + s["file_misses"] for s in sums]),
                   ("stale answers", [s["page_stale"] for s in sums]),
                   ("failed", [s["upstream_errors"] for s in sums])]),
    ]
    rows = [(labels[i], requests[i][0], requests[i][1], human_bytes(s["bytes_cache"]), human_bytes(s["bytes_upstream"]),
             s["upstream_errors"]) for i, s in enumerate(sums)]
    return await render(request, "traffic.html", index=name, ranges=list(RANGES), chosen=chosen, figures=figures,
                        charts=charts, rows=rows)


routes = [Route("/index/{index}/traffic", traffic_page, methods=["GET", "HEAD"])]
