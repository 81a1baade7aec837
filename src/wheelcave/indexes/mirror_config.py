"""A mirror index's settings (``indexes.config`` of a mirror), checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wheelcave.errors import BadRequest
from wheelcave.upstream.discovery import PIP_DEFAULT

__all__ = ["MirrorConfig"]


@dataclass(frozen=True)
class MirrorConfig:
    upstream: str
    ttl: float = 600.0
    offline: bool = False
    keep_removed: bool = True
    timeout: float = 30.0
    #: Seconds during which newly uploaded upstream files stay hidden (0: off).
    cooldown: float = 0.0
    cooldown_exempt: tuple[str, ...] = ()
    #: Fetch the pages of a served metadata file's unconditional dependencies (indexes/ahead.py).
    #: Off by default: no gain measured against the upstream here (README, Performance).
    fetch_ahead: bool = False

    @classmethod
    def from_config(cls, name: str, config: dict[str, Any]) -> MirrorConfig:
        upstream = config.get("upstream")
        if not isinstance(upstream, str) or not (upstream == PIP_DEFAULT or upstream.startswith(("http://", "https://"))):
            raise BadRequest(f"Mirror index {name!r} needs an http(s) upstream URL.")
        try:
            return cls(
                upstream=upstream,
                ttl=float(config.get("ttl", 600)),
                offline=bool(config.get("offline", False)),
                keep_removed=bool(config.get("keep_removed", True)),
                timeout=float(config.get("timeout", 30)),
                cooldown=float(config.get("cooldown", 0)),
                cooldown_exempt=tuple(str(x) for x in config.get("cooldown_exempt", [])),
                fetch_ahead=bool(config.get("fetch_ahead", False)),
            )
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"Mirror index {name!r} has a bad setting: {exc}") from None
