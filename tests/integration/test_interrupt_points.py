"""An exception at each point of a genudp call in turn, deterministically (``sys.settrace``).

The storms (test_interrupts, test_interrupt_accounting) raise at random moments; these raise at
the first point of genudp a call reaches where a signal handler can run, then the second, and so
on through every such point the call passes, one call per point.
After every cut the same accounting must hold: each datagram or message
arrives exactly once and in order, later; nothing stray; no lock held (the next call works).
"""

from __future__ import annotations

import dis
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import genudp
from tests.integration.test_interrupts import GENUDP, Boom

Tracer = Callable[[FrameType, str, Any], Any]


#: Instructions after which CPython checks for pending signals and asynchronous exceptions, when
#: the callee was C code (a Python callee is checked at its start, not at its return).
CALLS = frozenset(("CALL", "CALL_FUNCTION_EX", "CALL_KW"))


def _in_finalizer(frame: FrameType | None) -> bool:
    """A frame run by the garbage collector (a ``__del__``, and what it calls): where Python
    only prints what a handler raises, as the storms' handler also leaves be."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def points_in_genudp(call: Callable[[], object], raise_at: int = 0, handler: Callable[[], object] | None = None) -> int:
    """Run ``call`` traced; count the points inside genudp's own frames where a signal handler
    can run (the start of a function, the back edge of a loop, the return from a C call: where
    CPython's eval breaker is checked), and at the ``raise_at``-th (0: never) raise Boom, or run
    ``handler`` there as a signal handler would run (its own calls are not traced).
    Returns how many there were.

    Not line events: those fall between any two statements, including inside a ``with``
    block's exit before ``__exit__`` runs, where no handler can ever run (a Boom there would
    leak the lock, which no signal can do)."""
    count = 0
    last: dict[FrameType, str] = {}
    python_callee: set[FrameType] = set()
    tables: dict[Any, dict[int, str]] = {}

    def point() -> None:
        nonlocal count
        count += 1
        if count == raise_at:
            if handler is not None:
                handler()
                return
            raise Boom

    def local(frame: FrameType, event: str, arg: Any) -> Tracer | None:
        if event == "opcode":
            table = tables.get(frame.f_code)
            if table is None:
                table = tables[frame.f_code] = {i.offset: i.opname for i in dis.get_instructions(frame.f_code)}
            op = table.get(frame.f_lasti, "")
            previous = last.get(frame)
            last[frame] = op
            returned_from_python = frame in python_callee
            python_callee.discard(frame)
            if (previous in CALLS and not returned_from_python) or op == "JUMP_BACKWARD":
                point()
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Tracer | None:
        if frame.f_back is not None:
            python_callee.add(frame.f_back)  # the caller resumes after a Python return: no check
        if not frame.f_code.co_filename.startswith(GENUDP) or _in_finalizer(frame):
            return None
        frame.f_trace_opcodes = True
        point()  # the function's start (RESUME)
        return local

    sys.settrace(calls)
    try:
        call()
    finally:
        sys.settrace(None)
    return count


def each_point(call: Callable[[], object], before: Callable[[], object]) -> Iterator[bool]:
    """Cut ``call`` at each of its genudp points in turn (``before`` readies the next round);
    yields whether that round was cut. Ends when a round runs through without a cut."""
    n = 1
    while True:
        before()
        try:
            points_in_genudp(call, raise_at=n)
        except Boom:
            yield True
            n += 1
            continue
        yield False
        return


@pytest.fixture
def sender(tmp_sock_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_sock_dir / "r.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
        tx.setblocking(False)
        yield tx, path


@pytest.mark.parametrize("mode", [True, "once", 3, False], ids=lambda m: f"active={m}")
def test_a_receive_cut_at_any_line_loses_nothing(mode: Any, sender: tuple[socket.socket, str]) -> None:
    tx, path = sender
    sock = genudp.open(path=path, active=mode)
    try:
        _cut_receives(sock, tx, path, mode)
    finally:
        sock.close()


def _cut_receives(sock: genudp.Socket, tx: socket.socket, path: str, mode: Any) -> None:
    sent: list[int] = []
    got: list[int] = []

    rearm: list[bool] = []

    def take(message: Any) -> None:
        if message[0] == "udp_passive":
            rearm.append(True)  # active N ran out
        else:
            got.append(int(message[-1]))
            if mode == "once":
                rearm.append(True)

    def receive_one() -> None:
        # Only the receive is traced (cut); what the test does with its result is not.
        if mode is False:
            got.append(int(sock.recv(timeout=30)[2]))
        else:
            received.append(genudp.receive(timeout=30))

    received: list[Any] = []

    def settle() -> None:
        while received:
            take(received.pop(0))
        if rearm:
            rearm.clear()
            sock.setopts(active=mode)

    def send_next() -> None:
        settle()
        try:  # a passive receiver cut many times in a row fills up (11 datagrams): then wait
            tx.sendto(b"%d" % len(sent), path)
        except BlockingIOError:
            return
        sent.append(len(sent))

    rounds = list(each_point(receive_one, send_next))
    assert rounds.count(True) >= 10, f"only {rounds.count(True)} points of genudp passed: not the path meant"
    # Untraced now: what the cut calls left (held, in the mailbox, in the kernel) comes in order.
    settle()
    while len(got) < len(sent):
        receive_one()
        settle()
    assert got == sent
    left = genudp.flush() if mode is not False else []
    assert all(m == ("udp_passive", sock) for m in left), f"strays: {left!r}"
    if mode is False:
        with pytest.raises(genudp.Timeout):
            sock.recv(timeout=0)


def test_a_message_send_or_receive_cut_at_any_line_loses_nothing() -> None:
    me = genudp.self()
    sent: list[int] = []
    raised: list[int] = []
    got: list[int] = []

    def send_next() -> None:
        sent.append(len(sent) + len(raised))
        me.send(sent[-1])

    # The taking side cut at each line.
    rounds = list(each_point(lambda: got.append(genudp.receive(timeout=30)), send_next))
    assert rounds.count(True) >= 5
    while len(got) < len(sent):
        got.append(genudp.receive(timeout=30))
    assert got == sent

    # The sending side cut at each line: a message whose send raised may have arrived (the
    # window), at most once; every other one arrives once, in order.
    got.clear()
    sent.clear()
    n = 1
    while True:
        value = len(sent) + len(raised)
        try:
            points_in_genudp(lambda v=value: me.send(v), raise_at=n)  # type: ignore[misc]
        except Boom:
            raised.append(value)
            n += 1
            continue
        sent.append(value)
        break
    assert len(raised) >= 3
    got = genudp.flush()
    assert [m for m in got if m in sent] == sent
    assert len(got) == len(set(got)) and set(got) <= set(sent) | set(raised)


def asleep(tid: int) -> None:
    """Until thread ``tid`` sleeps in the kernel (in epoll, a read, or on a lock: an owner whose
    socket the hub reads waits on its mailbox's semaphore)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/self/task/{tid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/self/task/{tid}/wchan") as f:
            wchan = f.read()
        if state == "S" and any(w in wchan for w in ("poll", "wait_for_more_packets", "futex")):
            return
        time.sleep(0.001)  # deliberate: sampling /proc until the thread is asleep
    raise AssertionError("the receiver never went to sleep")


@pytest.mark.parametrize("mode", [True, False], ids=lambda m: f"active={m}")
def test_a_receive_cut_while_its_datagram_arrives_loses_nothing(mode: Any, sender: tuple[socket.socket, str]) -> None:
    """As above, but each datagram is sent only once the receiver sleeps in the kernel, so that
    the cuts fall on the waiting path: the owner's own read (active) or the blocking read."""
    tx, path = sender
    sock = genudp.open(path=path, active=mode)
    main_tid = threading.get_native_id()
    sent: list[int] = []
    got: list[int] = []
    helpers: list[threading.Thread] = []
    lock = threading.Lock()

    def send_when_asleep() -> None:
        asleep(main_tid)
        with lock:
            tx.sendto(b"%d" % len(sent), path)
            sent.append(len(sent))

    def before() -> None:
        if len(helpers) <= len(got) + 1:  # one datagram on its way at a time, mostly
            helper = threading.Thread(target=send_when_asleep, daemon=True)
            helpers.append(helper)
            helper.start()

    def receive_one() -> None:
        if mode is False:
            got.append(int(sock.recv(timeout=60)[2]))
        else:
            got.append(int(genudp.receive(timeout=60)[4]))

    try:
        rounds = list(each_point(receive_one, before))
        assert rounds.count(True) >= 10, f"only {rounds.count(True)} points of genudp passed"
        while len(got) < len(helpers):
            receive_one()
        for helper in helpers:
            helper.join(60)
        assert got == sent == list(range(len(helpers)))
    finally:
        sock.close()
