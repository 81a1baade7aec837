"""When the rows of early answers are written (wheelcave.indexes.quiet), in process: the wait is
driven by the fetches, the hurry event and a ``since`` in the past, never by sleeping here."""

from __future__ import annotations

import asyncio
import time

from wheelcave.indexes.quiet import Quiet


async def _spin(task: asyncio.Task[None], rounds: int = 20) -> bool:
    """Whether ``task`` finished within a few turns of the event loop."""
    for _ in range(rounds):
        await asyncio.sleep(0)
    return task.done()


def test_nothing_fetched_lately_means_go_at_once() -> None:
    async def main() -> None:
        quiet = Quiet(gap=60, longest=600)
        await asyncio.wait_for(quiet.wait(time.monotonic(), asyncio.Event()), 5)

    asyncio.run(main())


def test_a_fetch_in_flight_holds_the_writes_until_hurried() -> None:
    async def main() -> None:
        quiet = Quiet(gap=60, longest=600)
        hurry = asyncio.Event()
        with quiet.fetching():
            waiting = asyncio.create_task(quiet.wait(time.monotonic(), hurry))
            assert not await _spin(waiting)
        assert not await _spin(waiting)  # just ended: the gap has not passed
        hurry.set()
        assert await _spin(waiting)

    asyncio.run(main())


def test_the_longest_wait_is_bounded_even_while_fetching() -> None:
    async def main() -> None:
        quiet = Quiet(gap=60, longest=600)
        with quiet.fetching():
            # Waiting since longer than ``longest``: go, busy or not.
            await asyncio.wait_for(quiet.wait(time.monotonic() - 601, asyncio.Event()), 5)

    asyncio.run(main())


def test_the_gap_counts_from_the_last_fetch() -> None:
    async def main() -> None:
        quiet = Quiet(gap=0.0, longest=600)
        with quiet.fetching():
            pass
        await asyncio.wait_for(quiet.wait(time.monotonic(), asyncio.Event()), 5)  # a gap of 0 has passed
        nested = Quiet(gap=60, longest=600)
        with nested.fetching():
            with nested.fetching():
                pass
            waiting = asyncio.create_task(nested.wait(time.monotonic(), asyncio.Event()))
            assert not await _spin(waiting)  # one fetch still runs
        waiting.cancel()

    asyncio.run(main())


def test_begin_and_end_hold_like_a_fetch() -> None:
    async def main() -> None:
        quiet = Quiet(gap=0.0, longest=600)
        hurry = asyncio.Event()
        quiet.begin()  # a download: starts here, ends when its bytes are recorded
        waiting = asyncio.create_task(quiet.wait(time.monotonic(), hurry))
        assert not await _spin(waiting)
        quiet.end()
        await asyncio.wait_for(waiting, 5)

    asyncio.run(main())
