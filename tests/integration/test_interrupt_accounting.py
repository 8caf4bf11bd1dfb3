"""The accounting storm: a signal handler that raises, at kHz, in the receiving process and in
the sending process (a separate OS process), while numbered datagrams flow between them through
genudp, in every receive mode (active true, once, N, passive), with threads and with asyncio.

Every datagram is accounted by its number: each one whose ``send`` returned arrives exactly once
(lost 0, duplicated 0); one whose ``send`` raised may or may not have been sent, the window the
README documents, and is counted apart; nothing else arrives (strays 0); and nothing hangs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import genudp
import genudp.aio
from tests.integration.test_interrupts import Boom, raising_storm

COUNT = 2000
#: CPython 3.13 (3.13.0 here): under this storm a socket's lock stays held after an exception a
#: handler raised inside ``setopts``' ``with self._lock`` block, as if ``__exit__`` never ran
#: (seen in about one run in three, on the tree before re-entrancy too, where it hangs in
#: setopts). It looks like python/cpython#130279 (3.13 skips except/finally blocks for an
#: exception raised at some eval-breaker points); not confirmed. 3.11 and 3.12 hold.
pytestmark = pytest.mark.skipif(
    sys.version_info[:2] == (3, 13),
    reason="CPython 3.13 can skip a with-block's __exit__ for an exception a signal handler raises "
    "(python/cpython#130279, it seems): the raising-storm accounting is checked on 3.11 and 3.12",
)

MODES: list[Any] = [True, "once", 5, False]

#: The sending process: sends 0..COUNT-1 once each under its own raising storm, and reports
#: which sends returned and which raised.
SENDER = textwrap.dedent(
    """
    import asyncio, json, re, signal, sys, time
    from pathlib import Path
    import genudp

    path, count, use_asend = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "asend"
    GENUDP = str(Path(genudp.__file__).parent)
    LIBRARY = re.compile(r"/(asyncio|collections|ctypes)/|/(selectors|socket|threading|contextlib|functools)\\.py$")

    class Boom(Exception):
        pass

    def handler(signum, frame):
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(GENUDP):
                raise Boom
            if name == "<string>" or frame.f_code.co_name == "__del__" or not LIBRARY.search(name):
                return
            frame = frame.f_back

    ok, raised = [], []
    sock = genudp.open(family="local", active=False)

    async def send_all():
        for n in range(count):
            try:
                await sock.asend(b"%d" % n, path, timeout=60)
                ok.append(n)
            except Boom:
                raised.append(n)

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 1 / 4000, 1 / 4000)
    if use_asend:
        loop = asyncio.new_event_loop()
        task = loop.create_task(send_all())
        while not task.done():
            try:
                loop.run_until_complete(asyncio.wait([task], timeout=0.05))
            except Boom:
                pass
        task.result()
    else:
        for n in range(count):
            try:
                sock.send(b"%d" % n, path, timeout=60)
                ok.append(n)
            except Boom:
                raised.append(n)
    signal.setitimer(signal.ITIMER_REAL, 0)
    sock.close()
    print(json.dumps({"ok": ok, "raised": raised}))
    """
)


def start_sender(path: str, use_asend: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, path, str(COUNT), "asend" if use_asend else "send"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def is_ours(message: Any, sock: genudp.Socket) -> bool:
    return isinstance(message, tuple) and len(message) >= 2 and message[1] is sock


def account(got: list[int], report: dict[str, list[int]], cut: int, strays: list[Any]) -> None:
    ok, raised = set(report["ok"]), set(report["raised"])
    assert len(ok) + len(raised) == COUNT
    lost = sorted(ok - set(got))
    twice = sorted(n for n in set(got) if got.count(n) > 1)
    unknown = sorted(set(got) - ok - raised)
    window = sorted(set(got) & raised)
    summary = (
        f"received {len(got)}, lost {len(lost)} {lost[:5]}, duplicated {len(twice)} {twice[:5]}, "
        f"strays {len(strays) + len(unknown)}; sends that raised {len(raised)}, of which delivered "
        f"(the documented window) {len(window)}; receiver calls cut {cut}"
    )
    print(summary)
    assert not lost and not twice and not unknown and not strays, summary
    assert got == sorted(got), "out of order: " + summary
    assert cut > 0, "the storm never landed inside genudp in the receiver: " + summary
    assert report["raised"], "the storm never cut a send in the sender: " + summary


class Receiver:
    """The receiving side's bookkeeping: what arrived, strays, re-arming, and when to stop."""

    def __init__(self, mode: Any) -> None:
        self.mode = mode
        self.got: list[int] = []
        self.strays: list[Any] = []
        self.cut = 0
        self.rearm = False
        self.report: dict[str, list[int]] | None = None
        self.sender: subprocess.Popen[str] | None = None
        self.err = ""

    def take(self, message: Any, sock: genudp.Socket) -> None:
        if not is_ours(message, sock):
            self.strays.append(message)
        elif message[0] == "udp_passive":
            self.rearm = True  # active N ran out
        else:
            self.got.append(int(message[4]))
            self.rearm = self.rearm or self.mode == "once"  # once: passive after each message

    def sender_done(self) -> bool:
        """The sender has ended, and every datagram whose send returned has arrived (the rest
        is drained with the storm stopped)."""
        if self.report is None:
            if self.sender is None or self.sender.poll() is None:
                return False
            out, self.err = self.sender.communicate(timeout=120)
            assert self.sender.returncode == 0, self.err
            self.report = json.loads(out)
        return set(self.report["ok"]) <= set(self.got)

    def finish(self) -> None:
        if self.report is None:
            assert self.sender is not None
            out, self.err = self.sender.communicate(timeout=120)
            assert self.sender.returncode == 0, self.err
            self.report = json.loads(out)
        account(self.got, self.report, self.cut, self.strays)


def _step_threads(r: Receiver, sock: genudp.Socket, timeout: float) -> bool:
    """One receive; False when it timed out."""
    if r.rearm:
        sock.setopts(active=r.mode)
        r.rearm = False
    try:
        if r.mode is False:
            r.got.append(int(sock.recv(timeout=timeout)[2]))
        else:
            r.take(genudp.receive(timeout=timeout), sock)
    except genudp.Timeout:
        return False
    return True


@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"active={m}")
def test_threads(mode: Any, tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "r.sock")
    sock = genudp.open(path=path, active=mode)
    r = Receiver(mode)
    r.sender = start_sender(path, use_asend=False)
    deadline = time.monotonic() + 90
    try:
        with raising_storm():
            while not r.sender_done() and time.monotonic() < deadline:
                try:
                    _step_threads(r, sock, 0.5)
                except Boom:
                    r.cut += 1
        while _step_threads(r, sock, 2):  # the storm over: what the window let through
            pass
    finally:
        sock.close()
    r.finish()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Booms in loop callbacks
@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"active={m}")
def test_asyncio(mode: Any, tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "r.sock")
    r = Receiver(mode)
    sockets: list[genudp.Socket] = []
    storm = {"on": True}
    deadline = time.monotonic() + 90

    async def step(sock: genudp.Socket, timeout: float) -> bool:
        if r.rearm:
            sock.setopts(active=r.mode)
            r.rearm = False
        try:
            if r.mode is False:
                r.got.append(int((await sock.arecv(timeout=timeout))[2]))
            else:
                r.take(await genudp.aio.receive(timeout=timeout), sock)
        except genudp.Timeout:
            return False
        return True

    async def owner(ready: asyncio.Event) -> None:
        # A plain task, which becomes a process on first use (see test_interrupts.test_arecv).
        sock = genudp.open(path=path, active=mode)
        sockets.append(sock)
        ready.set()
        while storm["on"]:
            try:
                await step(sock, 0.5)
            except Boom:
                r.cut += 1
        while await step(sock, 2):  # the storm over: what the window let through
            pass

    loop = asyncio.new_event_loop()
    try:
        ready = asyncio.Event()
        task = loop.create_task(owner(ready))
        loop.run_until_complete(ready.wait())
        r.sender = start_sender(path, use_asend=True)
        with raising_storm():
            while not r.sender_done() and time.monotonic() < deadline:
                try:  # a Boom in genudp's callbacks stops the loop, as Ctrl-C would: run it again
                    loop.run_until_complete(asyncio.wait([task], timeout=0.05))
                except Boom:
                    r.cut += 1
        storm["on"] = False
        loop.run_until_complete(asyncio.wait_for(task, 60))
    finally:
        loop.close()
        for sock in sockets:
            sock.close()
    r.finish()
