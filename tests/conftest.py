"""Fixtures shared by every test.

Two are automatic. After each test, no process created during it, nor the test's own thread,
may hold a message in its mailbox: a leaked internal message (OTP-19332's ``{inet_reply, ...}``)
or a datagram nobody expected fails the test that caused it. And none of them may still own an
open socket: a test closes what it opens (or lets its processes end, which closes theirs).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import genudp
from genudp import _process
from tests.runtimes import Runtime, uvloop_available
from tests.runtimes import make as make_runtime


@pytest.fixture(autouse=True)
def no_stray_messages() -> Iterator[list[genudp.Pid]]:
    created: list[genudp.Pid] = []
    previous = _process._creation_hook
    _process._creation_hook = created.append
    me = genudp.self()
    before = me.messages()
    assert before == [], f"the test thread's mailbox was not empty before the test: {before!r}"
    try:
        yield created
    finally:
        _process._creation_hook = previous
    strays = {pid: pid.messages() for pid in [me, *created]}
    strays = {pid: msgs for pid, msgs in strays.items() if msgs}
    genudp.flush()
    left_open = [sock for pid in [me, *created] for sock in list(pid._sockets) if not sock.closed]
    for sock in left_open:
        sock.close()  # so that the next test starts clean
    assert not strays, f"messages left in mailboxes: {strays!r}"
    assert not left_open, f"sockets left open by the test: {left_open!r}"


@pytest.fixture
def tmp_sock_dir() -> Iterator[Path]:
    # Short paths: sun_path holds 107 bytes, and pytest's tmp_path can be longer than that.
    with tempfile.TemporaryDirectory(prefix="genudp-") as d:
        yield Path(d)


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(params=["threads", "asyncio", "uvloop"])
def runtime(request: pytest.FixtureRequest) -> Runtime:
    """Run a test body with thread processes and blocking calls, or with asyncio (and uvloop)
    task processes and awaitable calls: see tests/runtimes.py."""
    name: str = request.param
    if name == "uvloop" and not uvloop_available():
        if os.environ.get("CI"):
            pytest.fail("uvloop is missing in CI: it is in the dev extra")
        pytest.skip("SKIPPED: uvloop is not installed (pip install uvloop); CI installs it")
    return make_runtime(name)
