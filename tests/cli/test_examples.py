"""The examples are real programs: run each one, and check what it returns."""

from __future__ import annotations

import asyncio
import os
import re
import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str) -> Any:
    return runpy.run_path(str(EXAMPLES / name))["main"]


def test_echo_server_example() -> None:
    assert run("echo_server.py")() == [b"HELLO", b"GEN_UDP"]


def test_udp_echo_example() -> None:
    assert run("udp_echo.py")() == [b"HELLO", b"UDP"]


def test_asyncio_echo_example() -> None:
    assert asyncio.run(run("asyncio_echo.py")()) == [b"HELLO", b"ASYNCIO"]


def test_flow_control_example() -> None:
    got, rearmed = run("flow_control.py")()
    assert got == list(range(30))
    assert rearmed >= 5  # both ways of asking for more (udp_passive after N, and once) ran


def test_handover_example() -> None:
    assert run("handover.py")() == [b"first", True, b"worker got second"]


def test_credentials_example() -> None:
    assert run("credentials.py")() == [(True, os.getuid(), b"reload"), (True, os.getuid(), b"status")]


def test_syslog_receiver_example() -> None:
    if shutil.which("logger") is None:
        if os.environ.get("CI"):
            pytest.fail("util-linux's logger is missing in CI")
        pytest.skip("SKIPPED: util-linux's logger is not installed")
    assert run("syslog_receiver.py")() == [(1, "notice", "backup done"), (19, "warning", "disk 91% full")]


def test_every_example_is_tested() -> None:
    tested = set(re.findall(r'run\("(\w+\.py)"\)', Path(__file__).read_text()))
    assert tested == {p.name for p in EXAMPLES.glob("*.py")}
