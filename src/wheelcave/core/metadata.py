"""Core metadata (a wheel's ``METADATA``, an sdist's ``PKG-INFO``): lenient and strict parsing.

Two tiers, as in ``packaging.metadata``: :func:`parse_lenient` for data read from upstreams
(never fails on odd fields) and :func:`parse_strict` for uploads (every field validated).
Strict parsing tolerates one known real-world slip: a field newer than the declared
``Metadata-Version`` (setuptools wrote ``License-File`` under 2.1 for years); it becomes a
warning, as it does on the public index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.version import InvalidVersion, Version

from wheelcave.core.errors import InvalidCoreMetadata

__all__ = ["CoreMetadata", "parse_lenient", "parse_strict"]

JSONValue = str | list[str] | dict[str, str]


@dataclass(frozen=True)
class CoreMetadata:
    """What the index keeps of a distribution's core metadata."""

    name: str
    version: Version
    metadata_version: str
    requires_python: str | None
    summary: str | None
    #: The raw fields (``packaging`` raw names), JSON-serializable, for the JSON API and UI.
    fields: Mapping[str, JSONValue]
    warnings: tuple[str, ...] = field(default=())


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        msg = "core metadata is not valid UTF-8"
        raise InvalidCoreMetadata(msg) from None


def _to_fields(raw: RawMetadata) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = {str(k): str(v) for k, v in value.items()}
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
    return out


def _build(raw: RawMetadata, warnings: tuple[str, ...] = ()) -> CoreMetadata:
    name = raw.get("name")
    version = raw.get("version")
    if not name or not version:
        missing = "Name" if not name else "Version"
        msg = f"core metadata has no {missing} field"
        raise InvalidCoreMetadata(msg)
    try:
        parsed_version = Version(version)
    except (InvalidVersion, ValueError):  # ValueError: a number too long to convert
        msg = f"'{version}' is an invalid value for Version"
        raise InvalidCoreMetadata(msg) from None
    summary = raw.get("summary")
    return CoreMetadata(
        name=name.strip(),
        version=parsed_version,
        metadata_version=raw.get("metadata_version", "1.0"),
        requires_python=(raw.get("requires_python") or None),
        summary=summary.strip() if summary else None,
        fields=_to_fields(raw),
        warnings=warnings,
    )


def parse_lenient(data: bytes) -> CoreMetadata:
    """Parse without validating more than Name and Version (for upstream data)."""
    raw, _unparsed = parse_email(_decode(data))
    return _build(raw)


def _errors(group: BaseExceptionGroup[Exception]) -> list[Exception]:
    out: list[Exception] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_errors(exc))
        else:
            out.append(exc)
    return out


def parse_strict(data: bytes) -> CoreMetadata:
    """Validate every field; raise :class:`InvalidCoreMetadata` naming the first bad ones."""
    text = _decode(data)
    try:
        Metadata.from_email(text, validate=True)
    except ExceptionGroup as group:
        errors = _errors(group)
        late = [e for e in errors if "introduced in metadata version" in str(e)]
        fatal = [e for e in errors if e not in late]
        if fatal:
            described = []
            for exc in fatal[:3]:
                where = exc.field if isinstance(exc, InvalidMetadata) else "metadata"
                described.append(f"{where}: {exc}")
            more = f" (and {len(fatal) - 3} more)" if len(fatal) > 3 else ""
            msg = "Invalid core metadata: " + "; ".join(described) + more
            raise InvalidCoreMetadata(msg) from None
        raw, _ = parse_email(text)
        return _build(raw, tuple(str(e) for e in late))
    raw, _ = parse_email(text)
    return _build(raw)
