"""The registry's parts in their own homes (issue 14's structure item): this process's own
changes in the page tokens, and the pool of upstream clients."""

from __future__ import annotations

import asyncio

import anyio

from wheelcave.db.records import IndexRecord
from wheelcave.indexes.changes import LocalChanges
from wheelcave.indexes.fetcher import FileFetcher
from wheelcave.indexes.mirror_config import MirrorConfig
from wheelcave.indexes.upstreams import UpstreamPool


def test_own_changes_settle_on_the_later_token_only_when_they_are_all_there_was() -> None:
    changes = LocalChanges()
    before = (3, 7, changes.count("demo"))
    with changes.own() as own:
        changes.changed("demo")  # the block's own change (a mirror stored the page it reads)
    after = (3, 7, changes.count("demo"))
    assert changes.settle("demo", before, after, own) == after
    changes.changed("demo")  # someone else's change, outside any block
    later = (3, 7, changes.count("demo"))
    assert changes.settle("demo", after, later, {}) == after  # not ours: keep the older token
    assert changes.settle("demo", before, (3, 8, later[-1]), own) == before  # a generation moved
    assert changes.count(None) == 2 and changes.count("other") == 0  # lists count every project


def test_own_changes_are_per_task() -> None:
    changes = LocalChanges()

    async def main() -> tuple[dict[str, int], dict[str, int]]:
        async def one(project: str) -> dict[str, int]:
            with changes.own() as own:
                await asyncio.sleep(0)
                changes.changed(project)
                await asyncio.sleep(0)
            return own

        return tuple(await asyncio.gather(one("a"), one("b")))  # type: ignore[return-value]

    a, b = asyncio.run(main())
    assert a == {"a": 1, "": 1} and b == {"b": 1, "": 1}


def _record(name: str, upstream: str, index_id: int = 1) -> IndexRecord:
    return IndexRecord(id=index_id, name=name, kind="mirror", config={"upstream": upstream}, generation=0)


def test_the_upstream_pool_keeps_one_client_per_mirror_and_retires_changed_ones() -> None:
    async def main() -> None:
        pool = UpstreamPool(FileFetcher())
        first = pool.client("m", MirrorConfig.from_config("m", {"upstream": "http://127.0.0.1:9/simple/"}))
        assert pool.client("m", MirrorConfig.from_config("m", {"upstream": "http://127.0.0.1:9/simple/"})) is first
        other = pool.client("n", MirrorConfig.from_config("n", {"upstream": "http://127.0.0.1:9/simple/"}))
        assert other is not first  # one per mirror, even for the same upstream
        await pool.keep_only([_record("n", "http://127.0.0.1:9/simple/", 2)])  # m was removed
        assert not pool.has_retired  # no download used it: closed at once
        assert pool.client("n", MirrorConfig.from_config("n", {"upstream": "http://127.0.0.1:9/simple/"})) is other
        await pool.close()

    anyio.run(main)
