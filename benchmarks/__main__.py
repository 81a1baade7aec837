"""``python -m benchmarks run [scenario ...] [--seconds N]``: run scenarios, print Markdown,
and keep a copy in ``benchmarks/out/``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

SCENARIOS = ("foundation",)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios")
    run.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []][:-1] or None, default=list(SCENARIOS))
    run.add_argument("--seconds", type=int, default=10, help="duration of each load (default 10)")
    args = parser.parse_args()
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    for name in args.scenarios or SCENARIOS:
        if name == "foundation":
            from benchmarks.foundation import main as scenario
        text = scenario(args.seconds)
        print(text)
        (out_dir / f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}.md").write_text(text)


if __name__ == "__main__":
    main()
