"""The mirrors' upstream HTTP clients: one per (mirror, upstream URL, timeout), shared by the
mirror's page fetches and file downloads, kept while its definition stays, and closed once it
changes and the downloads in flight through it are done."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from wheelcave.db.repository import IndexRecord
from wheelcave.indexes.fetcher import FileFetcher
from wheelcave.indexes.mirror_config import MirrorConfig
from wheelcave.upstream.client import UpstreamClient
from wheelcave.upstream.discovery import PIP_DEFAULT, pip_index_url

__all__ = ["UpstreamPool"]


class UpstreamPool:
    def __init__(self, fetcher: FileFetcher) -> None:
        self.fetcher = fetcher
        self._clients: dict[tuple[str, str, float], UpstreamClient] = {}
        self._retired: list[UpstreamClient] = []
        self._pip_index: str | None = None

    def upstream_url(self, config: MirrorConfig) -> str:
        """The mirror's upstream; the default one is what pip on this machine uses."""
        if config.upstream != PIP_DEFAULT:
            return config.upstream
        if self._pip_index is None:
            self._pip_index = pip_index_url()
        return self._pip_index

    def client(self, name: str, config: MirrorConfig) -> UpstreamClient:
        key = (name, self.upstream_url(config), config.timeout)
        found = self._clients.get(key)
        if found is None:
            found = self._clients[key] = UpstreamClient(key[1], timeout=config.timeout)
        return found

    async def keep_only(self, records: Iterable[IndexRecord]) -> None:
        """Retire the clients no mirror of ``records`` uses any more."""
        wanted = set()
        for record in records:
            if record.kind == "mirror":
                with contextlib.suppress(Exception):
                    config = MirrorConfig.from_config(record.name, dict(record.config))
                    wanted.add((record.name, self.upstream_url(config), config.timeout))
        for key in [k for k in self._clients if k not in wanted]:
            self._retired.append(self._clients.pop(key))
        await self.close_retired()

    @property
    def has_retired(self) -> bool:
        return bool(self._retired)

    async def close_retired(self) -> None:
        """A retired client stays open until its downloads in flight are done."""
        for client in [c for c in self._retired if not self.fetcher.uses(c)]:
            self._retired.remove(client)
            await client.aclose()

    async def close(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()
