"""Change notifications on PostgreSQL: a replica LISTENs on ``wheelcave_changes`` (sent by the
triggers of migration 0009 at each commit that changes index generations or grants) and is told
the kind of change ('index' or 'auth') at once, instead of at its next poll.

One connection of its own, kept open; when it drops, :attr:`ChangeListener.listening` is false
until it is back (reconnecting with a growing wait) and the caller polls meanwhile. After a
reconnect every kind is reported once, as changes may have been missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.engine import make_url

__all__ = ["CHANNEL", "KINDS", "ChangeListener"]

CHANNEL = "wheelcave_changes"
KINDS = ("index", "auth")
log = logging.getLogger("wheelcave.notify")


class ChangeListener:
    def __init__(self, database_url: str, on_change: Callable[[str], None],
                 on_state: Callable[[bool], None] | None = None) -> None:
        url = make_url(database_url)
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_change = on_change
        self.on_state = on_state or (lambda listening: None)
        self.listening = False

    def _set(self, listening: bool) -> None:
        if listening != self.listening:
            self.listening = listening
            self.on_state(listening)

    async def run(self) -> None:
        """Until cancelled: listen, and reconnect when the connection drops."""
        import asyncpg

        wait = 0.5
        while True:
            lost = asyncio.Event()
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                conn.add_termination_listener(lambda _conn: lost.set())
                await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: self.on_change(str(payload)))
                self._set(True)
                for kind in KINDS:  # what changed while nobody listened
                    self.on_change(kind)
                wait = 0.5
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), 30)
                    except TimeoutError:
                        await conn.execute("SELECT 1")  # notices a connection gone quiet
                log.warning("notify.disconnected: the listening connection was closed; polling until reconnected")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database is away: poll until it is back
                log.warning("notify.disconnected: %s: %s; polling until reconnected", type(exc).__name__, exc)
            finally:
                self._set(False)
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(wait)
            wait = min(wait * 2, 30.0)
