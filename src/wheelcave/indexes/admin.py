"""Creating and changing index definitions, with every check before anything is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wheelcave.core.errors import CoreError
from wheelcave.core.names import validate_index_name
from wheelcave.db.repository import IndexRecord, Repository
from wheelcave.errors import BadRequest, Conflict, NotFound
from wheelcave.indexes.hosted import HostedPolicy
from wheelcave.indexes.mirror_config import MirrorConfig
from wheelcave.core.redact import mask_url

__all__ = ["KINDS", "IndexAdmin", "default_grants"]

KINDS = ("hosted", "mirror", "virtual")
_MIRROR_KEYS = {"upstream", "ttl", "offline", "keep_removed", "timeout", "cooldown", "cooldown_exempt", "fetch_ahead"}
_VIRTUAL_KEYS = {"members", "upload_to", "allow_upstream", "cooldown", "cooldown_exempt"}


def default_grants(kind: str, *, private: bool = False) -> list[tuple[str, str]]:
    """The access list a new index starts with: readable by anyone, and for a hosted index,
    uploads by any signed-in user (project ownership then decides who publishes to which
    project). A ``private`` index starts with none: only administrators, until grants are made."""
    if private:
        return []
    return [("anonymous", "read"), *([("authenticated", "upload")] if kind == "hosted" else [])]


class IndexAdmin:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    async def _check(self, name: str, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        records = {r.name: r for r in await self.repo.list_indexes()}
        if kind == "hosted":
            HostedPolicy.from_config(name, config)
            return dict(config)
        if kind == "mirror":
            unknown = set(config) - _MIRROR_KEYS
            if unknown:
                raise BadRequest(f"Unknown settings for a mirror index: {', '.join(sorted(unknown))}.")
            MirrorConfig.from_config(name, dict(config))
            if float(config.get("ttl", 600)) < 0 or float(config.get("timeout", 30)) <= 0:
                raise BadRequest("ttl must be 0 or more and timeout more than 0 seconds.")
            return dict(config)
        if kind == "virtual":
            return self._check_virtual(name, config, records)
        raise BadRequest(f"Unknown index kind {kind!r}: use one of {', '.join(KINDS)}.")

    def _check_virtual(self, name: str, config: Mapping[str, Any], records: dict[str, IndexRecord]) -> dict[str, Any]:
        unknown = set(config) - _VIRTUAL_KEYS
        if unknown:
            raise BadRequest(f"Unknown settings for a virtual index: {', '.join(sorted(unknown))}.")
        members = list(config.get("members", []))
        if not members or not all(isinstance(m, str) for m in members):
            raise BadRequest("A virtual index needs a list of member indexes.")
        for member in members:
            if member not in records and member != name:
                raise BadRequest(f"Member {member!r} is not an index.")
        graph = {n: list(r.config.get("members", [])) for n, r in records.items() if r.kind == "virtual"}
        graph[name] = members
        _refuse_cycles(name, graph)
        for key in ("allow_upstream", "cooldown_exempt"):
            value = config.get(key, [])
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise BadRequest(f"{key} must be a list of project names.")
        cooldown = config.get("cooldown", 0)
        if not isinstance(cooldown, (int, float)) or isinstance(cooldown, bool) or cooldown < 0:
            raise BadRequest("cooldown must be a number of seconds, 0 or more.")
        upload_to = config.get("upload_to")
        if upload_to is not None:
            target = records.get(upload_to)
            if target is None or target.kind != "hosted":
                raise BadRequest(f"upload_to {upload_to!r} must name a hosted index.")
        return dict(config)

    async def create(
        self, name: str, kind: str, config: Mapping[str, Any], *, actor: str | None = None,
        grants: Sequence[tuple[str, str]] | None = None,
    ) -> IndexRecord:
        """Create an index with its first access list (default: :func:`default_grants`)."""
        try:
            validate_index_name(name)
        except CoreError as exc:
            raise BadRequest(str(exc)) from None
        checked = await self._check(name, kind, config)
        if grants is None:
            grants = default_grants(kind)
        record = await self.repo.create_index(name, kind, checked, exist_ok=True, grants=grants)
        if record is None:
            raise Conflict(f"Index {name!r} exists already.", code="index-exists")
        await self.repo.audit({"actor": actor, "action": "index.create", "index_name": name,
                               "detail": {"kind": kind, "config": _masked(checked)}})
        return record

    async def apply_declared(self, declared: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Create or update the indexes a config file declares (the file wins at start-up;
        indexes made at run time and not declared are left alone). Virtual indexes last, so
        their members exist."""
        done = []
        order = sorted(declared.items(), key=lambda item: item[1]["kind"] == "virtual")
        for name, spec in order:
            kind, config = spec["kind"], dict(spec.get("config", {}))
            record = await self.repo.find_index(name)
            if record is None:
                await self.create(name, kind, config, actor="config")
                done.append(f"created {name}")
            elif record.kind != kind:
                raise BadRequest(f"Index {name!r} is {record.kind} here but {kind} in the config file.")
            elif dict(record.config) != await self._check(name, kind, config):
                await self.repo.update_index_config(name, await self._check(name, kind, config))
                await self.repo.audit({"actor": "config", "action": "index.update", "index_name": name,
                                       "detail": {"config": _masked(config)}})
                done.append(f"updated {name}")
        return done

    async def delete(self, name: str, *, actor: str | None = None) -> None:
        records = await self.repo.list_indexes()
        if not any(r.name == name for r in records):
            raise NotFound(f"No index named {name!r}.")
        users = [r.name for r in records if r.kind == "virtual" and
                 (name in r.config.get("members", []) or r.config.get("upload_to") == name)]
        if users:
            raise Conflict(f"Index {name!r} is used by {', '.join(users)}; change those first.", code="index-in-use")
        await self.repo.delete_index(name, {"actor": actor, "action": "index.delete", "index_name": name})

    async def update(self, name: str, changes: Mapping[str, Any], *, actor: str | None = None) -> IndexRecord:
        record = await self.repo.find_index(name)
        if record is None:
            raise NotFound(f"No index named {name!r}.")
        config = {**record.config, **{k: v for k, v in changes.items() if v is not None}}
        checked = await self._check(name, record.kind, config)
        updated = await self.repo.update_index_config(name, checked)
        await self.repo.audit({"actor": actor, "action": "index.update", "index_name": name,
                               "detail": {"changes": _masked(dict(changes))}})
        return updated


def _masked(config: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(config)
    if isinstance(out.get("upstream"), str):
        out["upstream"] = mask_url(out["upstream"])
    return out


def _refuse_cycles(start: str, graph: Mapping[str, Sequence[str]]) -> None:
    def visit(node: str, path: tuple[str, ...]) -> None:
        if node in path:
            raise BadRequest(f"Members would form a cycle: {' -> '.join((*path, node))}.")
        for nxt in graph.get(node, ()):
            visit(nxt, (*path, node))

    visit(start, ())
