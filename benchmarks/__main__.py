"""``python -m benchmarks run [scenario ...] [--seconds N]``: run scenarios, print Markdown,
and keep a copy in ``benchmarks/out/``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

SCENARIOS = ("foundation", "indexes", "mirror")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios")
    run.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    run.add_argument("--seconds", type=int, default=10, help="duration of each load (default 10)")
    run.add_argument("--runs", type=int, default=3, help="repetitions of each install (default 3)")
    run.add_argument("--no-network", action="store_true", help="skip what needs the live public index")
    args = parser.parse_args()
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    for name in args.scenarios or SCENARIOS:
        if name == "foundation":
            from benchmarks.foundation import main as foundation

            text = foundation(args.seconds)
        elif name == "indexes":
            from benchmarks.indexes import main as indexes

            text = indexes(args.seconds)
        elif name == "mirror":
            from benchmarks.mirror import main as mirror

            text = mirror(args.seconds, network=not args.no_network, runs=args.runs)
        else:
            parser.error(f"unknown scenario {name!r}: use {', '.join(SCENARIOS)}")
        print(text)
        (out_dir / f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}.md").write_text(text)


if __name__ == "__main__":
    main()
