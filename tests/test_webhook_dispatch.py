"""The webhook dispatcher's logic in-process (wheelcave.jobs.webhooks): signing, outcomes, retry
waits, giving up, and the check at each delivery of where a non-administrator's webhook host
resolves to. The receiver is httpx's MockTransport and the resolver a function of the test (no
DNS server can be pointed at 127.0.0.1 here); the end-to-end tests use a real receiver."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx

from wheelcave.core.webhooks import Delivery, backoff, verify
from wheelcave.jobs.webhooks import DispatchSettings, Dispatcher


def Due(id: int, url: str, *, attempts: int = 0, allow_private: bool = False) -> Delivery:  # noqa: N802 - reads as a record
    return Delivery(id, url, "a test secret of some length", "upload", json.dumps({"event": "upload"}), attempts,
                    allow_private)


@dataclass
class Store:
    due: list[Delivery]
    done: list[tuple[int, int]] = field(default_factory=list)
    failed: list[tuple[int, int | None, str, float | None]] = field(default_factory=list)

    async def claim_due(self, limit: int = 20) -> list[Delivery]:
        taken, self.due = self.due[:limit], self.due[limit:]
        return taken

    async def delivery_done(self, delivery_id: int, status: int) -> None:
        self.done.append((delivery_id, status))

    async def delivery_failed(self, delivery_id: int, status: int | None, error: str, retry_in: float | None) -> None:
        self.failed.append((delivery_id, status, error, retry_in))


def _run(store: Store, answer: int = 204, resolve: dict[str, list[str]] | None = None,
         max_attempts: int = 3) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answer)

    addresses = resolve or {}

    async def go() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        dispatcher = Dispatcher(store, DispatchSettings(retry_base=2.0, max_attempts=max_attempts), client,
                                resolve=lambda host, port: addresses.get(host, ["93.184.215.14"]))
        await dispatcher.run_once()
        await dispatcher.aclose()

    asyncio.run(go())
    return seen


def test_a_delivery_is_signed_and_recorded() -> None:
    store = Store([Due(7, "https://hooks.example.invalid/x")])
    (request,) = _run(store)
    assert request.headers["x-wheelcave-event"] == "upload" and request.headers["x-wheelcave-delivery"] == "7"
    assert verify("a test secret of some length", request.content, request.headers["x-wheelcave-signature"])
    assert store.done == [(7, 204)] and store.failed == []


def test_an_error_answer_waits_longer_each_time_then_gives_up() -> None:
    store = Store([Due(1, "https://hooks.example.invalid/x", attempts=0), Due(2, "https://hooks.example.invalid/y", attempts=1),
                   Due(3, "https://hooks.example.invalid/z", attempts=2)])
    _run(store, answer=500)
    assert sorted(store.failed) == [(1, 500, "answered 500", backoff(1, 2.0)), (2, 500, "answered 500", backoff(2, 2.0)),
                            (3, 500, "answered 500", None)]
    assert backoff(1, 2.0) == 2.0 and backoff(2, 2.0) == 4.0 and backoff(30, 2.0) == 3600.0


def test_a_host_that_now_resolves_inside_is_not_sent_to() -> None:
    """Made by a manager when it resolved outside; now it resolves to 127.0.0.1 or 10.x: nothing
    is sent, the attempt fails (and is retried: DNS may change back)."""
    store = Store([Due(1, "https://rebinding.example.invalid/x"), Due(2, "https://mapped.example.invalid/x"),
                   Due(3, "https://public.example.invalid/x")])
    seen = _run(store, resolve={"rebinding.example.invalid": ["93.184.215.14", "10.0.0.5"],
                                "mapped.example.invalid": ["::ffff:127.0.0.1"]})
    assert [r.headers["host"] for r in seen] == ["public.example.invalid"]
    refused = {f[0]: f for f in store.failed}
    assert set(refused) == {1, 2} and all("private network" in f[2] and f[3] is not None for f in refused.values())


def test_an_administrators_webhook_may_reach_inside() -> None:
    store = Store([Due(1, "http://127.0.0.1:9/hook", allow_private=True)])
    seen = _run(store, resolve={"127.0.0.1": ["127.0.0.1"]})
    assert len(seen) == 1 and store.done == [(1, 204)]


def test_the_checked_address_is_the_one_connected_to() -> None:
    """No second lookup between the check and the connection: the request goes to the address
    that was checked, the host name kept for the Host header and TLS; a resolver that would
    answer 127.0.0.1 the second time (DNS rebinding) is asked once."""
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    store = Store([Due(1, "https://flip.example.invalid:8443/hook?x=1")])

    async def go() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        dispatcher = Dispatcher(store, DispatchSettings(), client, resolve=rebinding)
        await dispatcher.run_once()
        await dispatcher.aclose()

    asyncio.run(go())
    (request,) = seen
    assert calls == ["flip.example.invalid"]
    assert str(request.url) == "https://93.184.215.14:8443/hook?x=1"
    assert request.headers["host"] == "flip.example.invalid:8443"
    assert request.extensions["sni_hostname"] == "flip.example.invalid"
    assert store.done == [(1, 204)]
    v6 = Store([Due(2, "http://v6.example.invalid/h")])
    seen.clear()

    async def go6() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        dispatcher = Dispatcher(v6, DispatchSettings(), client, resolve=lambda h, p: ["2606:2800:220:1::1"])
        await dispatcher.run_once()
        await dispatcher.aclose()

    asyncio.run(go6())
    assert str(seen[0].url) == "http://[2606:2800:220:1::1]/h" and seen[0].headers["host"] == "v6.example.invalid"
    assert "sni_hostname" not in seen[0].extensions
