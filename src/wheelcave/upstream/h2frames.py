"""HTTP/2 DATA frames received without a hex dump of each payload.

h2 writes a trace line for every frame it receives and builds that line's text first, whatever
the logger (``H2Connection._receive_frame`` calls ``repr(frame)`` before asking its logger,
whose trace method does nothing unless set up). For a DATA frame, hyperframe's ``repr`` falls
back to copying the whole payload and hex-encoding it: about 3 bytes of work for every byte
received, ~2.7 % of the server's CPU in a cold ``uv pip install`` through a mirror (py-spy,
2026-12-05). :func:`quiet_data_frames` gives DATA frames a ``repr`` that names their length.

Where a newer hyperframe gives DATA frames a ``repr`` of their own, nothing is changed;
``tests/test_upstream_streams.py`` receives a body over h2 and fails if a payload is dumped.
"""

from __future__ import annotations

from hyperframe.frame import DataFrame, Frame

__all__ = ["quiet_data_frames"]


def _data_repr(self: DataFrame) -> str:
    return f"<{len(self.data)} bytes of data>"


def quiet_data_frames() -> bool:
    """Give DATA frames a cheap ``repr`` if they use hyperframe's payload dump; True if done."""
    if DataFrame._body_repr is Frame._body_repr:  # noqa: SLF001 - the fallback this replaces
        DataFrame._body_repr = _data_repr  # type: ignore[method-assign]  # noqa: SLF001
    return DataFrame._body_repr is _data_repr  # noqa: SLF001
