"""A signal handler that calls genudp (``close``, ``send``, ``info``) at any point of a genudp call.

A handler runs in the main thread between two bytecodes of whatever it interrupted, which may be
genudp's own code holding one of its locks. Before, a SIGTERM handler that closed the socket (or
sent its process a message, or asked ``info()``) while the main thread was inside that socket's
lock waited on itself forever. Here the handler's calls run at each point of a genudp call in
turn, deterministically (``sys.settrace``, as in test_interrupt_points), and in a real signal
storm in a child process. After every round: nothing hung, a close made by the handler is
complete (fd released, file unlinked), each message and datagram the handler sent arrived
exactly once, and the interrupted call's own datagram arrived exactly once unless the handler
closed its socket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import genudp
from genudp import _deferred
from tests.integration.test_interrupt_points import points_in_genudp

#: Generous (under pytest-timeout's 120 s): a round takes milliseconds; only a deadlock nears it.
DEADLINE = 90.0


@dataclass
class Round:
    """One traced call and what a handler does at one of its points."""

    sock: genudp.Socket
    path: str
    sink: str
    me: genudp.Pid
    other: genudp.Pid
    k: int
    outcome: list[Any] = field(default_factory=list)
    closed_at_once: list[bool] = field(default_factory=list)
    parked: list[bool] = field(default_factory=list)
    info: list[dict[str, Any]] = field(default_factory=list)


def _swallow_closed(call: Callable[[], object]) -> object:
    try:
        return call()
    except genudp.Error as exc:
        if exc.reason != "closed":
            raise
        return None


def _send_and_receive(r: Round) -> object:
    r.me.send(("own", r.k))
    return genudp.receive(timeout=30)


def _toggle(r: Round) -> None:
    r.sock.setopts(active=True)
    r.sock.setopts(active=False)


#: What the interrupted call is: its socket's mode, and the call (its result kept in outcome).
WORKLOADS: dict[str, tuple[Any, Callable[[Round], object]]] = {
    "receive on an active socket": (True, lambda r: genudp.receive(timeout=30)),
    "receive on an active-once socket": ("once", lambda r: genudp.receive(timeout=30)),
    "recv": (False, lambda r: _swallow_closed(lambda: r.sock.recv(timeout=30))),
    "send": (False, lambda r: _swallow_closed(lambda: r.sock.send(b"w%d" % r.k, r.sink))),
    "message send and receive": (False, _send_and_receive),
    "setopts": (False, lambda r: _swallow_closed(lambda: _toggle(r))),
    "controlling_process": (False, lambda r: _swallow_closed(lambda: r.sock.controlling_process(r.other))),
    "info": (False, lambda r: r.sock.info()),
}


def handler_close(r: Round) -> None:
    r.sock.close()
    r.closed_at_once.append(r.sock.closed)
    r.me.send(("closed", r.k))  # what wakes a receive whose datagram went with the socket


def handler_send(r: Round) -> None:
    r.me.send(("signal", r.k))
    r.parked.append(bool(r.me._mailbox._parked))
    r.sock.send(b"s%d" % r.k, r.sink)


def handler_info(r: Round) -> None:
    r.info.append(dict(r.sock.info()))
    r.info.append(r.me.info())
    r.info.append({"messages": r.me.messages()})


HANDLERS: dict[str, Callable[[Round], None]] = {"close": handler_close, "send": handler_send, "info": handler_info}


@contextlib.contextmanager
def raw_sink(path: str) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setblocking(False)
    try:
        yield s
    finally:
        s.close()


def drain(s: socket.socket) -> list[bytes]:
    out: list[bytes] = []
    with contextlib.suppress(BlockingIOError, TimeoutError):
        while True:
            out.append(s.recv(100))
    return out


def run_rounds(workload: str, handler_name: str, tmp: Path) -> dict[str, int]:
    """Every point of the workload's call, each with the handler run there once. In this thread:
    the caller runs it in a thread of its own and fails on the deadline (a deadlock)."""
    mode, call = WORKLOADS[workload]
    handler = HANDLERS[handler_name]
    me = genudp.self()
    other = genudp.spawn(lambda: genudp.receive(match=lambda m: m == "stop"))
    stats = {"rounds": 0, "deferred": 0, "parked": 0}
    with raw_sink(str(tmp / "sink.sock")) as sink:
        k = 0
        while True:
            k += 1
            path = str(tmp / f"r{k}.sock")
            sock = genudp.open(path=path, active=mode)
            r = Round(sock, path, str(tmp / "sink.sock"), me, other, k)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
                tx.sendto(b"d%d" % k, path)
            if workload == "controlling_process":
                # A message for the hand-over to look at under the mailbox's lock: where a
                # handler's send must park (the mailbox is otherwise empty here).
                me.send(("keep", k))

            def traced(r: Round = r) -> None:
                r.outcome.append(call(r))

            seen = points_in_genudp(traced, raise_at=k, handler=lambda r=r: handler(r))  # type: ignore[misc]
            assert _deferred.wait_all(60), "a deferred call never finished"
            check_round(r, workload, handler_name, sink, ran=seen >= k)
            stats["rounds"] += 1
            stats["deferred"] += r.closed_at_once.count(False)
            stats["parked"] += r.parked.count(True)
            sock.close()
            if seen < k:
                break
    other.send("stop")
    assert other.join(30)
    return stats


def check_round(r: Round, workload: str, handler_name: str, sink: socket.socket, ran: bool) -> None:
    sock, k = r.sock, r.k
    closed = handler_name == "close" and ran
    # Passive now: a datagram the hub or the owner delivered is in the mailbox already (the mode
    # changes under the socket's lock, in the same stretch as the delivery); else in the kernel.
    passive = not sock.closed and sock.info()["active"] is False
    received: list[Any] = []  # what the interrupted call itself returned
    if r.outcome and (workload.startswith("receive") or workload == "message send and receive"):
        received = [r.outcome[0]]
    messages = genudp.flush() + received
    udp = [m for m in messages if isinstance(m, tuple) and len(m) == 5 and m[0] == "udp"]
    if workload == "recv" and r.outcome and r.outcome[0] is not None:
        udp.append(("udp", sock, *r.outcome[0]))
    datagrams = [m[-1] for m in udp if m[1] is sock]
    if not datagrams and not sock.closed and sock.owner is r.me:
        # Still in the kernel (or on its way to the mailbox): take it now, untraced.
        if passive:
            datagrams.append(sock.recv(timeout=30)[-1])
        else:
            datagrams.append(genudp.receive(match=lambda m: m[0] == "udp" and m[1] is sock, timeout=30)[-1])
    if closed or sock.owner is not r.me:
        assert datagrams in ([], [b"d%d" % k]), f"{workload} cut at point {k}: datagrams {datagrams!r}"
    else:
        assert datagrams == [b"d%d" % k], f"{workload} cut at point {k}: datagrams {datagrams!r}"
    if workload == "message send and receive":
        assert messages.count(("own", k)) == 1, f"point {k}: own message in {messages!r}"
    sunk = drain(sink)
    if workload == "send":
        assert sunk.count(b"w%d" % k) == (0 if closed and b"w%d" % k not in sunk else 1), sunk
    if not ran:
        return
    if handler_name == "close":
        assert sock.closed, f"{workload}: the handler's close at point {k} never completed"
        assert sock.fileno() == -1, f"{workload}: fd still open after the handler's close at point {k}"
        assert not os.path.exists(r.path), f"{workload}: {r.path} left behind"
        assert messages.count(("closed", k)) == 1, messages
    elif handler_name == "send":
        assert messages.count(("signal", k)) == 1, f"{workload} point {k}: {messages!r}"
        assert sunk.count(b"s%d" % k) == 1, f"{workload} point {k}: handler's datagram {sunk!r}"
    else:
        assert len(r.info) == 3 and isinstance(r.info[0]["datagrams_sent"], int)
        assert r.info[1]["alive"] is True


@pytest.mark.parametrize("handler_name", sorted(HANDLERS))
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_a_handler_may_call_genudp_at_any_point(workload: str, handler_name: str, tmp_sock_dir: Path) -> None:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["stats"] = run_rounds(workload, handler_name, tmp_sock_dir)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), f"{workload}: a {handler_name} from a handler deadlocked"
    if "error" in result:
        raise result["error"]
    stats = result["stats"]
    assert stats["rounds"] >= 5, f"only {stats['rounds']} points of genudp passed: not the path meant"
    exercised = EXERCISED.get((workload, handler_name))
    if exercised:
        assert stats[exercised] > 0, f"no round took the {exercised} path: the test no longer reaches it"


#: Where the deferrals are known to happen (_deferred, rules 1 and 2): a lock held at a point.
EXERCISED = {
    ("setopts", "close"): "deferred",
    ("info", "close"): "deferred",
    ("controlling_process", "send"): "parked",
}


def test_a_close_from_inside_the_sockets_lock_is_made_by_a_helper(tmp_sock_dir: Path) -> None:
    """The deferral is real: a close that finds its lock held by its own thread returns at once,
    and the helper finishes it as soon as the lock is let go."""
    path = str(tmp_sock_dir / "held.sock")
    sock = genudp.open(path=path)
    with sock._lock:  # what the interrupted code holds
        sock.close()
        assert not sock.closed
    assert _deferred.wait_all(60)
    # The handler's close may have been made by a helper a moment after it returned; a close
    # outside the handler finishes it (or finds it finished) before it returns.
    sock.close()
    assert sock.closed and sock.fileno() == -1 and not os.path.exists(path)


def test_a_message_sent_from_inside_its_mailbox_lock_keeps_its_order() -> None:
    me = genudp.self()
    mailbox = me._mailbox
    with mailbox._lock:
        me.send(1)
        me.send(2)
        assert mailbox._parked == [1, 2]
    me.send(3)  # a later put takes the parked ones in first
    assert genudp.flush() == [1, 2, 3]
    assert _deferred.wait_all(60)
    assert genudp.flush() == []


STORM = textwrap.dedent(
    """
    import itertools, os, signal, socket, sys, threading, time
    import genudp

    path, sink_path = sys.argv[1], sys.argv[2]
    sock = genudp.open(path=path, active=True)
    me = genudp.self()
    counter = itertools.count()
    ticks, sent = [], []

    def on_alarm(signum, frame):
        n = next(counter)  # one C call: a nested handler takes the next number
        ticks.append(n)
        me.send(("tick", n))
        try:
            sock.send(b"%d" % n, sink_path)
            sent.append(n)
        except genudp.Error as exc:
            assert exc.reason == "closed", exc
        sock.info()

    def on_term(signum, frame):
        signal.setitimer(signal.ITIMER_REAL, 0)
        sock.close()
        me.send(("term",))

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)

    def feed():
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
            i = 0
            while i < 2000 or len(ticks) < 500:  # traffic all through a storm of 500 handlers
                try:
                    tx.sendto(b"d%d" % i, path)
                    i += 1
                except BlockingIOError:
                    time.sleep(0.0005)  # deliberate: a raw feeder backing off a full receiver
        os.kill(os.getpid(), signal.SIGTERM)

    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
    threading.Thread(target=feed, daemon=True).start()
    got, others = [], []
    while True:
        m = genudp.receive(timeout=60)
        if m == ("term",):
            break
        if m[0] == "udp":
            got.append(int(m[-1][1:]))
        else:
            others.append(m)
    for m in genudp.flush():  # delivered before the close, or a handler that ran after "term"
        (got.append(int(m[-1][1:])) if m[0] == "udp" else others.append(m))
    assert sorted(m[1] for m in others if m[0] == "tick") == sorted(ticks), "a handler's message lost or doubled"
    assert not [m for m in others if m[0] != "tick"], others
    # The handler's close may have been made by a helper a moment after it returned; a close
    # outside the handler finishes it (or finds it finished) before it returns.
    sock.close()
    assert sock.closed and sock.fileno() == -1 and not os.path.exists(path)
    assert got == list(range(len(got))), "datagrams out of order, doubled or skipped"
    print(len(ticks), len(got), ",".join(map(str, sent)))
    """
)


def test_a_signal_storm_whose_handler_calls_genudp_never_hangs(tmp_sock_dir: Path) -> None:
    """Real signals, 2 kHz, in a child: the handler sends its process a message, sends a datagram
    and reads info(); SIGTERM's handler closes the socket, as a service does."""
    sink = str(tmp_sock_dir / "storm-sink.sock")
    sunk: list[bytes] = []
    stop = threading.Event()
    with raw_sink(sink) as rx:
        rx.settimeout(0.05)

        def drain_forever() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    sunk.append(rx.recv(100))

        drainer = threading.Thread(target=drain_forever, daemon=True)
        drainer.start()
        try:
            done = subprocess.run(
                [sys.executable, "-c", STORM, str(tmp_sock_dir / "storm.sock"), sink],
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=False,
            )
        finally:
            stop.set()
            drainer.join(30)
        sunk += drain(rx)
    assert done.returncode == 0, done.stderr[-3000:]
    ticks, got, sent = done.stdout.split()
    assert int(ticks) >= 500 and int(got) >= 100, (ticks, got)
    assert sorted(int(d) for d in sunk) == sorted(int(n) for n in sent.split(",")), (
        "a handler's datagram lost or doubled"
    )
