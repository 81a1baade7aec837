"""The floor of a mirror in Python: a bare relay (issue 13's cold goals).

An ASGI app, under uvicorn, that passes the upstream's project pages to the client with one byte
replacement (absolute file URLs made to point back at the relay) and streams every file, or the
Range of it a client asks for, from the upstream as it arrives. It parses nothing, stores
nothing, hashes nothing and writes no row: whatever a caching mirror does, it does at least this
per request and per byte. ``benchmarks.cold`` runs it beside wheelcave: where even the relay
takes longer than a goal allows, no Python server on this machine meets that goal.

Run by ``benchmarks._harness.start_relay`` as ``python -m benchmarks.relay UPSTREAM PORT``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx

from wheelcave.upstream.streams import use_asyncio_streams

_PASSED = ("content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified")


def make_app(upstream: str, port: int) -> Any:
    base = upstream.rstrip("/") + "/"
    back = f"http://127.0.0.1:{port}/f/".encode()
    client: httpx.AsyncClient | None = None

    async def open_client() -> httpx.AsyncClient:
        nonlocal client
        if client is None:
            client = httpx.AsyncClient(http2=True, timeout=60, limits=httpx.Limits(max_connections=100))
            use_asyncio_streams(client)  # the same transport as wheelcave's
        return client

    async def send(send_: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send_({"type": "http.response.start", "status": status, "headers": headers})
        await send_({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send_: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send_({"type": "lifespan.startup.complete"})
            if client is not None:
                await client.aclose()
            await send_({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope["path"]
        asked = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        http = await open_client()
        if path.startswith("/simple/"):
            headers = {"Accept": asked.get("accept", "text/html")}
            answer = await http.get(base + path[len("/simple/"):], headers=headers)
            body = answer.content.replace(b'"https://', b'"' + back)  # JSON "url" values and HTML hrefs
            kept = [(b"content-type", answer.headers.get("content-type", "text/html").encode()),
                    (b"content-length", str(len(body)).encode())]
            await send(send_, answer.status_code, kept, body)
            return
        if not path.startswith("/f/") or len(path) == 3:
            await send(send_, 404, [(b"content-length", b"0")], b"")
            return
        headers = {"Accept-Encoding": "identity"}
        if "range" in asked:
            headers["Range"] = asked["range"]
        request = http.build_request(scope["method"], "https://" + path[3:], headers=headers)
        answer = await http.send(request, stream=True)
        try:
            kept = [(k.encode(), v.encode()) for k, v in answer.headers.items() if k.lower() in _PASSED]
            await send_({"type": "http.response.start", "status": answer.status_code, "headers": kept})
            chunks: AsyncIterator[bytes] = answer.aiter_raw()
            async for chunk in chunks:
                await send_({"type": "http.response.body", "body": chunk, "more_body": True})
            await send_({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()

    return app


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[2])
    uvicorn.run(make_app(sys.argv[1], port), host="127.0.0.1", port=port, log_level="warning", access_log=False)
