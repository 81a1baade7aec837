"""The upstream client on asyncio's own streams (upstream/streams.py): it takes effect, and pages,
Range reads, whole files, timeouts and refused certificates behave as they did on httpcore's
default backend, over TLS and plain HTTP, under asyncio's loop and uvloop (the server's). The
upstream is the fake index on 127.0.0.1, over HTTPS with a throw-away certificate authority."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tests.e2e.test_mirror import small_wheel
from tests.support.tls import make_certificate
from tests.support.upstream import FakeUpstream
from wheelcave.errors import UpstreamError, UpstreamTimeout
from wheelcave.upstream.client import Fetched, UpstreamClient
from wheelcave.upstream.streams import AsyncioBackend, use_asyncio_streams

LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": lambda main: uvloop.new_event_loop().run_until_complete(main),
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["https", "http"])
def upstream(request: pytest.FixtureRequest, tls: tuple[Path, Path, Path]) -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    up.ranges = True
    up.add("tls-pkg", small_wheel("tls-pkg", "1.0"))
    up.start(tls if request.param == "https" else None)
    yield up
    up.stop()


def test_every_pool_of_a_client_gets_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # a proxy from the environment: a pool of its own
    monkeypatch.setenv("NO_PROXY", "")
    client = UpstreamClient("https://index.invalid/simple/")
    pools = [client.client._transport, *client.client._mounts.values()]
    assert len(pools) >= 2
    assert all(isinstance(t._pool._network_backend, AsyncioBackend) for t in pools if t is not None)
    assert use_asyncio_streams(client.client) == len([t for t in pools if t is not None])


def test_an_https_proxy_keeps_the_default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS to the proxy, then to the upstream inside it: left to httpcore's own backend."""
    monkeypatch.setenv("HTTPS_PROXY", "https://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    client = UpstreamClient("https://index.invalid/simple/")
    proxies = [t for t in client.client._mounts.values() if t is not None]
    assert proxies and not any(isinstance(t._pool._network_backend, AsyncioBackend) for t in proxies)
    assert isinstance(client.client._transport._pool._network_backend, AsyncioBackend)


@pytest.mark.parametrize("loop", list(LOOPS))
def test_pages_ranges_and_files_through_the_backend(upstream: FakeUpstream, tls: tuple[Path, Path, Path],
                                                      loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))  # the client trusts the test's authority, as pip would
    wheel = upstream.projects["tls-pkg"][0]

    async def main() -> None:
        client = UpstreamClient(upstream.url, timeout=5)
        assert isinstance(client.client._transport._pool._network_backend, AsyncioBackend)
        try:
            fetched = await client.fetch_project("tls-pkg")
            assert isinstance(fetched, Fetched)
            [listed] = fetched.page.files
            assert listed.sha256 == wheel.sha256
            first, total, tail = await client.fetch_range(listed.url, -100, None, 10_000)
            assert (first, total, tail) == (len(wheel.data) - 100, len(wheel.data), wheel.data[-100:])
            digest = hashlib.sha256()
            for _ in range(2):  # the second on a connection kept alive
                async with client.download(listed.url) as response:
                    async for chunk in response.aiter_raw():
                        digest.update(chunk)
            assert digest.hexdigest() == hashlib.sha256(wheel.data * 2).hexdigest()
        finally:
            await client.aclose()
        hasty = UpstreamClient(upstream.url, timeout=0.2)
        upstream.delay = 1  # longer than that client's deadline
        try:
            with pytest.raises(UpstreamTimeout):
                await hasty.fetch_project("tls-pkg")
        finally:
            await hasty.aclose()

    LOOPS[loop](main())


@pytest.mark.parametrize("loop", list(LOOPS))
def test_a_certificate_nobody_vouched_for_is_refused(tls: tuple[Path, Path, Path], loop: str) -> None:
    up = FakeUpstream()
    up.add("tls-pkg", small_wheel("tls-pkg", "1.0"))
    up.start(tls)  # this process's trust store does not know the test's authority

    async def main() -> None:
        client = UpstreamClient(up.url, timeout=5)
        try:
            with pytest.raises(UpstreamError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await client.fetch_project("tls-pkg")
        finally:
            await client.aclose()

    try:
        LOOPS[loop](main())
        assert up.requests == []  # the handshake failed before any request was sent
    finally:
        up.stop()


@pytest.mark.parametrize("loop", list(LOOPS))
def test_nobody_listening_is_an_upstream_error(loop: str) -> None:
    from tests.support.server import free_port

    async def main() -> None:
        client = UpstreamClient(f"http://127.0.0.1:{free_port()}/simple/", timeout=5)
        try:
            with pytest.raises(UpstreamError, match="ConnectError"):
                await client.fetch_project("anything")
        finally:
            await client.aclose()

    LOOPS[loop](main())


def test_h2_receives_data_frames_without_dumping_their_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """h2 builds a trace line for every frame it receives; a DATA frame's must not be a hex dump of
    its payload (upstream/h2frames.py, applied when the upstream client is imported). A real h2
    client and server, in memory: 256 KiB of body in 16 KiB frames."""
    import h2.config
    import h2.connection
    import h2.events
    from hyperframe import frame as frames

    import wheelcave.upstream.client  # noqa: F401 - applies quiet_data_frames

    dumped: list[int] = []
    real = frames._raw_data_repr  # noqa: SLF001
    monkeypatch.setattr(frames, "_raw_data_repr", lambda data: dumped.append(len(data or b"")) or real(data))
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    client.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "up")], end_stream=True)
    server.receive_data(client.data_to_send())
    server.send_headers(1, [(":status", "200")])
    body, received = b"x" * (256 * 1024), bytearray()
    for _ in range(100):  # 16 frames are enough; bounded all the same
        if len(received) == len(body):
            break
        sent = len(received)
        chunk = body[sent:sent + min(server.local_flow_control_window(1), server.max_outbound_frame_size)]
        server.send_data(1, chunk, end_stream=sent + len(chunk) == len(body))
        for event in client.receive_data(server.data_to_send()):
            if isinstance(event, h2.events.DataReceived):
                received += event.data
                client.acknowledge_received_data(event.flow_controlled_length, 1)
        server.receive_data(client.data_to_send())
    assert bytes(received) == body
    assert max(dumped, default=0) < 1024, f"a DATA frame's payload was hex-dumped ({max(dumped)} bytes)"


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_httpcore_takes_a_free_lock_without_a_turn_of_the_loop_and_still_waits_for_a_held_one(loop: str) -> None:
    """upstream/locks.py, applied when the upstream client is imported: a free httpcore lock (or
    semaphore) is taken at once, without letting other tasks run first; a held one is waited for,
    in the order asked, and a waiter can still be cancelled."""
    from httpcore._synchronization import AsyncLock, AsyncSemaphore

    import wheelcave.upstream.client  # noqa: F401 - applies fast_free_locks

    async def main() -> None:
        ran: list[str] = []

        async def other() -> None:
            ran.append("other")

        for guard in (AsyncLock(), AsyncSemaphore(1)):
            ran.clear()
            task = asyncio.get_running_loop().create_task(other())
            if isinstance(guard, AsyncLock):
                async with guard:
                    ran.append("taken")
            else:
                await guard.acquire()
                ran.append("taken")
                await guard.release()
            await task
            assert ran == ["taken", "other"], f"{type(guard).__name__}: a free one let the loop turn first"

        lock, order = AsyncLock(), []

        async def waiter(name: str) -> None:
            async with lock:
                order.append(name)

        async with lock:
            first = asyncio.get_running_loop().create_task(waiter("first"))
            second = asyncio.get_running_loop().create_task(waiter("second"))
            cancelled = asyncio.get_running_loop().create_task(waiter("cancelled"))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert order == []  # held: everyone waits
            cancelled.cancel()
        await asyncio.gather(first, second)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert order == ["first", "second"]

    LOOPS[loop](main())
