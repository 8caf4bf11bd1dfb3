"""``genudp bench``: the command-line face of the benchmark scenarios in ``benchmarks/``
(``genudp._harness.bench_runner``). Ratios against a baseline measured in the same run;
see benchmarks/README.md."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ("add_parser", "run_cli")

_EXAMPLES = """\
examples:
  genudp bench                     every scenario, 5 repeats (a few minutes)
  genudp bench --quick             small counts, 3 repeats: proves it works (~1 min)
  genudp bench --only rtt-passive --only rtt-active
  genudp bench --json > bench.json
"""


def add_parser(sub: Any) -> None:
    from .._harness.bench_runner import SCENARIOS

    p = sub.add_parser(
        "bench",
        help="benchmark genudp against raw sockets and asyncio, as ratios measured in one run",
        description=(
            "Runs each scenario beside its raw-socket baseline, interleaved, and prints the\n"
            "median ratio over the repeats with its spread, and whether it meets its target.\n"
            f"Scenarios: {', '.join(s.key for s in SCENARIOS)}."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the report")
    p.add_argument("--quick", action="store_true", help="small counts and 3 repeats")
    p.add_argument("--repeats", type=int, metavar="N", help="repeats per scenario (default 5; --quick 3)")
    p.add_argument("--only", action="append", default=[], metavar="SCENARIO", help="run only this scenario")
    p.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    from .._harness.bench_runner import SCENARIOS, Settings, as_json, report, run

    known = {s.key for s in SCENARIOS}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        print(
            f"genudp bench: unknown scenario {unknown[0]!r}; expected one of {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    settings = Settings.quick() if args.quick else Settings()
    if args.repeats is not None:
        if args.repeats < 1:
            print("genudp bench: --repeats must be at least 1", file=sys.stderr)
            return 2
        settings.repeats = args.repeats
    settings.only = tuple(args.only)
    progress = sys.stderr if sys.stderr.isatty() else None
    rows = run(settings, progress)
    if args.json:
        json.dump(as_json(rows, settings), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        report(rows, settings, sys.stdout)
    return 0
