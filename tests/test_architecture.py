"""The layering of architecture §2, checked: imports only point downward; and no module past ~600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "wheelcave"

# layer -> wheelcave packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "storage": {"core"},
    "db": {"core"},
    "upstream": {"core", "errors"},
    "indexes": {"core", "db", "storage", "errors", "upstream", "metrics"},
    "auth": {"core", "db", "errors", "metrics"},
    "jobs": {"core", "db", "storage", "indexes", "errors"},
    "web": {"core", "db", "storage", "indexes", "auth", "errors", "config", "services", "jobs", "__init__",
            "metrics", "upstream"},
    "cli": {"core", "db", "storage", "indexes", "auth", "errors", "config", "services", "jobs", "web", "__init__",
            "metrics", "upstream"},
}
# The core is pure: no I/O, no frameworks.
CORE_FORBIDDEN = {"os", "pathlib", "socket", "sqlalchemy", "starlette", "httpx", "anyio", "asyncio", "subprocess", "io"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports(layer: str) -> None:
    for path in (SRC / layer).rglob("*.py"):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "wheelcave" and len(parts) > 1 and parts[1] != layer:
                assert parts[1] in ALLOWED[layer], f"{path.relative_to(SRC)} imports {name}"
            if layer == "core":
                assert parts[0] not in CORE_FORBIDDEN, f"{path.relative_to(SRC)} imports {name}"


#: Rule 7: a module is split by concept at about 600 lines; this is the line past which it must be.
MAX_MODULE_LINES = 650


def test_no_module_grows_into_a_grab_bag() -> None:
    too_long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"split these modules by concept: {too_long}"
