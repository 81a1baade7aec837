"""Project and index names.

>>> normalize("Foo_Bar.baz")
'foo-bar-baz'
>>> validate_index_name("team.dev-1")
'team.dev-1'
"""

from __future__ import annotations

import re

from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from wheelcave.core.errors import InvalidIndexName, InvalidProjectName

__all__ = ["NormalizedName", "is_valid_project_name", "normalize", "validate_index_name", "validate_project_name"]

_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_MAX_PROJECT_NAME = 200


def normalize(name: str) -> NormalizedName:
    """PEP 503 normalization, without validation (for names read from upstreams)."""
    return canonicalize_name(name)


def validate_project_name(name: str) -> NormalizedName:
    """Normalize ``name``, refusing what is not a valid distribution name."""
    if len(name) > _MAX_PROJECT_NAME:
        msg = f"'{name[:40]}...' is an invalid value for Name: longer than {_MAX_PROJECT_NAME}"
        raise InvalidProjectName(msg)
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        msg = (
            f"'{name}' is an invalid value for Name: start and end with a letter or numeral "
            "and contain only ASCII numerals, letters, '.', '_' and '-'"
        )
        raise InvalidProjectName(msg) from None


def is_valid_project_name(name: str) -> bool:
    """True for a valid distribution name (any spelling); never raises.

    >>> is_valid_project_name("Foo_Bar"), is_valid_project_name("Foo Bar!")
    (True, False)
    """
    try:
        validate_project_name(name)
    except InvalidProjectName:
        return False
    return True


def validate_index_name(name: str) -> str:
    """Return ``name`` if it is a valid index name (``[a-z0-9][a-z0-9._-]*``, at most 64)."""
    if not _INDEX_NAME.fullmatch(name):
        msg = f"invalid index name {name!r}: use lowercase letters, digits, '.', '_' and '-'"
        raise InvalidIndexName(msg)
    return name
