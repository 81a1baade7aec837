"""Single-flight downloads (wheelcave.indexes.fetcher), in process: the upstream is an
httpx MockTransport streaming bytes we control, the blob store a temporary folder."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from wheelcave.errors import UpstreamError
from wheelcave.indexes.fetcher import DownloadSpec, FileFetcher
from wheelcave.storage.filesystem import FilesystemBlobStore
from wheelcave.upstream.client import UpstreamClient

DATA = bytes(range(256)) * 4096  # 1 MiB


class Gate:
    """An upstream that sends ``DATA`` (or wrong bytes) a chunk at a time, when told to."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.allowed = asyncio.Event()

    def transport(self) -> httpx.MockTransport:
        gate = self

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                half = len(gate.data) // 2
                yield gate.data[:half]
                await gate.allowed.wait()
                yield gate.data[half:]

        return httpx.MockTransport(lambda request: httpx.Response(
            200, headers={"content-length": str(len(gate.data))}, stream=Body()))


async def _drain(download: object, fd: int, into: list[bytes]) -> None:
    async for chunk in download.follow(fd):  # type: ignore[attr-defined]
        into.append(chunk)


def _setup(tmp_path: Path, data: bytes) -> tuple[Gate, UpstreamClient, FilesystemBlobStore, DownloadSpec]:
    gate = Gate(data)
    client = UpstreamClient("http://upstream.test/simple/", transport=gate.transport())
    spec = DownloadSpec("http://upstream.test/files/x.whl", hashlib.sha256(DATA).hexdigest(), "x.whl", len(DATA))
    return gate, client, FilesystemBlobStore(tmp_path / "blobs"), spec


async def _committed(_: object) -> None:
    return None


@pytest.mark.parametrize("wrong", [False, True])
def test_followers_never_get_the_last_byte_before_the_hash_holds(tmp_path: Path, wrong: bool) -> None:
    async def go() -> None:
        data = bytes([DATA[0] ^ 0xFF]) + DATA[1:] if wrong else DATA
        gate, client, store, spec = _setup(tmp_path, data)
        fetcher = FileFetcher()
        received: list[list[bytes]] = [[] for _ in range(5)]
        followers = []
        for into in received:
            download, fd, _ = fetcher.get(spec, store, client, _committed)
            followers.append(asyncio.create_task(_drain(download, fd, into)))
        for _ in range(200):  # until every follower has what the upstream sent so far
            await asyncio.sleep(0.005)
            if all(sum(map(len, r)) >= len(DATA) // 2 - 1 for r in received):
                break
        # half the file is there; each follower holds at most all but the last byte of it
        assert all(len(DATA) // 2 - 1 <= sum(map(len, r)) < len(DATA) // 2 for r in received)
        gate.allowed.set()
        results = await asyncio.gather(*followers, return_exceptions=True)
        for into, result in zip(received, results, strict=True):
            if wrong:
                assert isinstance(result, UpstreamError) and "does not match" in str(result)
                assert sum(map(len, into)) < len(DATA)  # never a complete body of wrong bytes
            else:
                assert result is None and b"".join(into) == DATA
        assert store.exists(spec.sha256) == (not wrong)
        await fetcher.close()
        await client.aclose()

    asyncio.run(go())


def test_a_cancelled_download_fails_its_followers(tmp_path: Path) -> None:
    """A shutdown cancels the download: followers end with an error instead of waiting forever."""
    async def go() -> None:
        gate, client, store, spec = _setup(tmp_path, DATA)
        fetcher = FileFetcher()
        download, fd, _ = fetcher.get(spec, store, client, _committed)
        into: list[bytes] = []
        follower = asyncio.create_task(_drain(download, fd, into))
        await asyncio.sleep(0.05)
        await fetcher.close()  # what the app's shutdown does
        with pytest.raises(UpstreamError, match="cancelled"):
            await asyncio.wait_for(follower, 5)
        assert not store.exists(spec.sha256) and list((tmp_path / "blobs" / "tmp").iterdir()) == []
        await client.aclose()
        del gate

    asyncio.run(go())
