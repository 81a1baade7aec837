"""``pytest -p tests.support.faultreport --fault-report FILE``: the "Faults and bad input" table.

One row per test of the fault and bad-input suite: what it injects or sends (its docstring's
first sentence), how many cases, the outcome, and what was lost (nothing, or the failure);
then the requests the test servers answered, by status class. ``scripts/faults`` runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_rows: dict[str, "_Row"] = {}


@dataclass
class _Row:
    area: str
    what: str
    cases: int = 0
    failed: list[str] = field(default_factory=list)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fault-report", default=None, help="write the faults table (Markdown) here")


def _first_sentence(doc: str | None, fallback: str) -> str:
    text = " ".join((doc or "").split())
    if not text:
        return fallback.replace("_", " ").removeprefix("test ")
    text = re.sub(r"^(Defects? [\d.]+( and acceptance \d+)?|Acceptance \d+):\s*", "", text)
    sentence = re.split(r"(?<=[.;])\s", text, maxsplit=1)[0]
    return sentence.rstrip(".;")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        func = getattr(item, "function", None)
        key = f"{item.path.name}::{getattr(func, '__name__', item.name)}"
        if key not in _rows:
            name = getattr(func, "__name__", item.name)
            _rows[key] = _Row(item.path.stem.removeprefix("test_"), _first_sentence(getattr(func, "__doc__", None), name))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.failed or report.skipped):
        return
    key = report.nodeid.split("[")[0]
    key = f"{Path(key.split('::')[0]).name}::{key.split('::')[-1]}"
    row = _rows.get(key)
    if row is None:
        return
    if report.when == "call" or report.skipped:
        row.cases += 1
    if report.failed:
        row.failed.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--fault-report")
    if not target:
        return
    from tests.support.server import Server

    lines = ["| area | fault or bad input | cases | result | lost |", "|---|---|---|---|---|"]
    for row in _rows.values():
        if not row.cases:
            continue
        result = "passed" if not row.failed else f"FAILED ({len(row.failed)})"
        lost = "nothing" if not row.failed else "see the failing test"
        lines.append(f"| {row.area} | {row.what.replace('|', '/')} | {row.cases} | {result} | {lost} |")
    served = ", ".join(f"{k}: {v:,}" for k, v in sorted(Server.served.items())) or "none"
    total = sum(Server.served.values())
    lines += ["", f"Requests answered by the test servers: {total:,} ({served})."]
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text("\n".join(lines) + "\n")
