"""The examples are real programs: run them."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_echo_server_example() -> None:
    namespace = runpy.run_path(str(EXAMPLES / "echo_server.py"))
    assert namespace["main"]() == [b"HELLO", b"GEN_UDP"]
