"""``genudp repro``: placeholder until the full-receiver scenario lands."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("repro", help="run the full-receiver scenario")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print("genudp repro: not implemented yet")
    return 2
