"""``python -m benchmarks run [scenario ...]``: run scenarios, print Markdown, keep a copy in
``benchmarks/out/``.

With no scenario: every peer scenario (hot, warm, cold, scale, upload) for every server, and the
table is also written to ``benchmarks/RESULTS.md``. ``foundation``, ``indexes``, ``mirror`` and
``auth`` measure wheelcave alone against a reference in the same run.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

PEER_SCENARIOS = ("hot", "warm", "cold", "scale", "upload")
OWN_SCENARIOS = ("foundation", "indexes", "mirror", "auth", "durability", "fill", "pages", "cold-mirror", "engines", "replicas", "storage")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios")
    run.add_argument("scenarios", nargs="*", help=f"any of {', '.join(PEER_SCENARIOS + OWN_SCENARIOS)} (default: the peer scenarios)")
    run.add_argument("--seconds", type=int, default=10, help="duration of each load (default 10)")
    run.add_argument("--runs", type=int, default=3, help="repetitions of each measurement (default 3)")
    run.add_argument("--no-network", action="store_true", help="mirror scenario: skip what needs the live public index")
    args = parser.parse_args()
    unknown = [s for s in args.scenarios if s not in PEER_SCENARIOS + OWN_SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}: use {', '.join(PEER_SCENARIOS + OWN_SCENARIOS)}")
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    own = [s for s in args.scenarios if s in OWN_SCENARIOS]
    peers = [s for s in args.scenarios if s in PEER_SCENARIOS] or ([] if own else list(PEER_SCENARIOS))
    for name in own:
        if name == "foundation":
            from benchmarks.foundation import main as foundation

            text = foundation(args.seconds)
        elif name == "cold-mirror":
            from benchmarks.cold import main as cold_mirror

            text = cold_mirror(args.runs)
        elif name == "storage":
            from benchmarks.storage import main as storage

            text = storage()
        elif name == "replicas":
            from benchmarks.replicas import main as replicas

            text = replicas(args.seconds)
        elif name == "engines":
            from benchmarks.engines import main as engines

            text = engines(args.runs, args.seconds)
        elif name == "pages":
            from benchmarks.pages import main as pages

            text = pages()
        elif name == "fill":
            from benchmarks.fill import main as fill

            text = fill()
        elif name == "durability":
            from benchmarks.durability import main as durability

            text = durability(args.runs)
        elif name == "auth":
            from benchmarks.auth import main as auth

            text = auth(args.seconds)
        elif name == "indexes":
            from benchmarks.indexes import main as indexes

            text = indexes(args.seconds)
        else:
            from benchmarks.mirror import main as mirror

            text = mirror(args.seconds, network=not args.no_network, runs=args.runs)
        print(text)
        (out_dir / f"{name}-{stamp}.md").write_text(text)
        if name in ("fill", "pages"):  # goals stated beside the peers' table (issues 11 and 12)
            _write_results(None, (name, text))
    if peers:
        from benchmarks.compare import main as compare

        partial = out_dir / f"peers-{stamp}.md"
        text = compare(peers, runs=args.runs, seconds=args.seconds, progress=partial.write_text)
        print(text, flush=True)
        partial.write_text(text)
        if peers == list(PEER_SCENARIOS):
            _write_results(text, None)


_OWN = "<!-- wheelcave alone: sections kept when the peers' table is rewritten -->"


def _write_results(peers: str | None, own: tuple[str, str] | None) -> None:
    """RESULTS.md: the peers' table, then one section per own scenario that states goals there
    (each replaced by its next run, all kept when the peers' table is rewritten)."""
    path = Path(__file__).parent / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    head, _, tail = old.partition(_OWN)
    sections: dict[str, str] = {}
    for chunk in tail.split("<!-- scenario: ")[1:]:
        key, _, body = chunk.partition(" -->\n")
        sections[key] = body.strip()
    if own is not None:
        sections[own[0]] = "\n".join("#" + line if line.startswith("# ") else line for line in own[1].strip().splitlines())
    text = (peers if peers is not None else head).rstrip() + "\n\n" + _OWN + "\n"
    for key in sorted(sections):
        text += f"\n<!-- scenario: {key} -->\n{sections[key]}\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
