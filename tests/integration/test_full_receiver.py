"""Sending to a full receiver: exact results, no spinning, signals, close, vanishing receivers.

The blocked path is forced, never hoped for: ``fill`` stuffs the receiver's queue (11 datagrams
with net.unix.max_dgram_qlen = 10) until the kernel says EAGAIN, and ``wait_blocked`` waits until
the sending thread sleeps in ``poll`` according to /proc, instead of sleeping and hoping.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import genudp
from tests.blocking import wait_blocked, wait_tid_blocked
from tests.datagrams import drain, fill

# The figure is 1 % of a core for a sender blocked 2 s (measured here: 0.3-0.4 %, the
# 25 slice wake-ups a second of a kernel wait); on a loaded 2-core machine this asserts 3 %
# (DESIGN.md §6), which a spinning sender (~100 %) could not meet.
BLOCKED_SECONDS = 2.0


@pytest.fixture
def full_receiver(tmp_sock_dir: Path) -> Iterator[tuple[genudp.Socket, genudp.Socket, str]]:
    path = str(tmp_sock_dir / "full.sock")
    with genudp.open(path=path, active=False) as r, genudp.open(family="local", active=False) as s:
        assert fill(s, path) == 11  # max_dgram_qlen 10 on our machines: the receiver holds 11
        yield r, s, path


def blocked_send(sock: genudp.Socket, data: bytes, dest: Any, out: list[Any], **kw: Any) -> genudp.Pid:
    """Spawn a process that sends once and records ("ok", cpu) or (reason, cpu, when)."""

    def body() -> None:
        cpu = time.thread_time()
        try:
            sock.send(data, dest, **kw)
            out.append(("ok", time.thread_time() - cpu, time.monotonic()))
        except genudp.Error as exc:
            out.append((exc.reason, time.thread_time() - cpu, time.monotonic()))

    return genudp.spawn(body, name="sender")


# -- no spinning ------------------------------------------------------------------------------


def _case_path(tmp: Path) -> tuple[genudp.Socket, genudp.Socket, Any, Callable[[], None]]:
    r = genudp.open(path=str(tmp / "r.sock"), active=False)
    s = genudp.open(family="local", active=False)
    fill(s, str(tmp / "r.sock"))
    return r, s, str(tmp / "r.sock"), lambda: None


def _case_abstract(tmp: Path) -> tuple[genudp.Socket, genudp.Socket, Any, Callable[[], None]]:
    name = f"\0genudp-spin-{os.getpid()}-{time.monotonic_ns()}"
    r = genudp.open(path=name, active=False)
    s = genudp.open(family="local", active=False)
    fill(s, name)
    return r, s, name, lambda: None


def _case_connected(tmp: Path) -> tuple[genudp.Socket, genudp.Socket, Any, Callable[[], None]]:
    r = genudp.open(path=str(tmp / "r.sock"), active=False)
    s = genudp.open(family="local", active=False)
    s.connect(str(tmp / "r.sock"))
    fill(s, None)
    return r, s, None, lambda: None


def _case_own_buffer(tmp: Path) -> tuple[genudp.Socket, genudp.Socket, Any, Callable[[], None]]:
    # Big datagrams through a small send buffer: the queue holds 2 (far from 11), so the EAGAIN
    # is our own buffer's.
    r = genudp.open(path=str(tmp / "r.sock"), active=False)
    s = genudp.open(family="local", active=False, sndbuf=8192)
    n = fill(s, str(tmp / "r.sock"), b"x" * 10000)
    assert n < 11, f"expected the send buffer to fill first, but {n} datagrams fitted"
    return r, s, str(tmp / "r.sock"), lambda: None


@pytest.mark.parametrize(
    "case",
    [_case_path, _case_abstract, _case_connected, _case_own_buffer],
    ids=["unconnected-path", "unconnected-abstract", "connected", "own-send-buffer-full"],
)
def test_a_blocked_sender_uses_no_cpu(case: Any, tmp_sock_dir: Path) -> None:
    r, s, dest, _ = case(tmp_sock_dir)
    payload = b"y" * (10000 if s.getopts("sndbuf")["sndbuf"] <= 16384 else 4)
    with r, s:
        out: list[Any] = []
        pid = blocked_send(s, payload, dest, out)
        wait_blocked(pid)
        time.sleep(BLOCKED_SECONDS)  # deliberate: this is the scenario, a sender blocked for 2 s
        got = drain(r)
        assert pid.join(30)
        got += drain(r)
        status, cpu, _ = out[0]
        assert status == "ok"
        share = cpu / BLOCKED_SECONDS
        print(f"blocked sender CPU: {share:.2%} of a core over {BLOCKED_SECONDS} s")
        assert share <= 0.03, f"a sender blocked {BLOCKED_SECONDS} s used {cpu:.3f} s of CPU ({share:.1%})"
        # Exactly once: the blocked datagram arrives, once, after everything that filled the queue.
        assert got.count(payload) == 1 and got[-1] == payload
        assert s.info()["eagain_waits"] == 1


# -- timeouts ---------------------------------------------------------------------------------


def test_send_timeout_zero_raises_eagain_and_does_not_send(full_receiver: Any) -> None:
    r, s, path = full_receiver
    with pytest.raises(genudp.Error) as info:
        s.send(b"late", path, timeout=0)
    assert info.value.reason == "eagain"
    assert b"late" not in drain(r)


def test_send_timeout_t_raises_timeout_after_t_and_does_not_send(full_receiver: Any) -> None:
    r, s, path = full_receiver
    s.setopts(send_timeout=0.2)
    start = time.monotonic()
    with pytest.raises(genudp.Timeout) as info:
        s.send(b"late", path)
    assert time.monotonic() - start >= 0.2
    assert info.value.reason == "timeout" and isinstance(info.value, TimeoutError)
    assert b"late" not in drain(r)
    assert s.info()["errors"]["timeout"] == 1


def test_per_call_timeout_overrides_the_socket_default(full_receiver: Any) -> None:
    r, s, path = full_receiver
    s.setopts(send_timeout=0)
    with pytest.raises(genudp.Timeout):
        s.send(b"late", path, timeout=0.05)
    with pytest.raises(genudp.Error) as info:
        s.send(b"late", path)
    assert info.value.reason == "eagain"
    assert b"late" not in drain(r)


def test_socket_wide_send_timeout_from_open(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "r.sock")
    with genudp.open(path=path, active=False) as r, genudp.open(family="local", send_timeout=0) as s:
        assert s.getopts("send_timeout") == {"send_timeout": 0.0}
        assert fill(s, path) == 11
        assert len(drain(r)) == 11


# -- close and signals ------------------------------------------------------------------------


def test_close_wakes_a_blocked_send_with_closed_and_it_is_not_sent(full_receiver: Any) -> None:
    r, _s, path = full_receiver
    delays = []
    for _ in range(5):
        out: list[Any] = []
        sender = genudp.open(family="local", active=False)
        pid = blocked_send(sender, b"never", path, out)
        wait_blocked(pid)
        closed_at = time.monotonic()
        sender.close()
        assert pid.join(30)
        assert out[0][0] == "closed"
        delays.append(out[0][2] - closed_at)
    assert b"never" not in drain(r)
    print(f"close -> blocked send raised 'closed' after {statistics.median(delays) * 1000:.2f} ms (median of 5)")
    assert max(delays) < 1.0 and statistics.median(delays) < 0.1, delays


class Interrupted(Exception):
    pass


def test_a_raising_signal_handler_interrupts_send_and_the_datagram_is_not_sent(full_receiver: Any) -> None:
    r, s, path = full_receiver

    def handler(signum: int, frame: object) -> None:
        raise Interrupted

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Interrupted):
            s.send(b"interrupted", path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert signal.getsignal(signal.SIGALRM) is old
    assert b"interrupted" not in drain(r)
    # The socket is intact: the next send goes through.
    s.send(b"after", path)
    assert drain(r) == [b"after"]


def test_a_signal_storm_with_a_returning_handler_changes_nothing(full_receiver: Any) -> None:
    r, s, path = full_receiver
    count = [0]

    def handler(signum: int, frame: object) -> None:
        count[0] += 1

    sender_tid = threading.main_thread().native_id

    def reader() -> None:
        genudp.receive(lambda m: m == "yours", timeout=60)
        got: list[bytes] = []
        while len(got) < 11 + 200:
            if len(got) < 200:
                # Read only once the sender sleeps in its wait: every send blocks in the storm.
                wait_tid_blocked(sender_tid)
            got.append(r.recv(timeout=60)[2])
        me.send(("got", got))

    me = genudp.self()
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)  # 2 kHz
        pid = genudp.spawn(reader)
        r.controlling_process(pid)
        pid.send("yours")
        assert threading.current_thread() is threading.main_thread()
        for i in range(200):
            s.send(b"%d" % i, path)  # this (main) thread runs every handler, mid-wait
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    _, got = genudp.receive(lambda m: m[0] == "got", timeout=60)
    assert got[11:] == [b"%d" % i for i in range(200)]
    assert count[0] > 0
    info = s.info()
    assert info["datagrams_sent"] == 211
    # The storm really interrupted the waits (this thread takes the signals), and each was resumed.
    assert info["eintr_retries"] > 0, info
    print(f"{count[0]} signals, {info['eintr_retries']} interrupted waits resumed")


# -- destinations that go away ----------------------------------------------------------------


def test_receiver_closed_while_a_send_waits_raises_its_error_at_once(full_receiver: Any) -> None:
    r, s, path = full_receiver
    out: list[Any] = []
    pid = blocked_send(s, b"orphan", path, out)
    wait_blocked(pid)
    gone_at = time.monotonic()
    r.close()  # genudp unlinks its file: the path is gone
    assert pid.join(30)
    assert out[0][0] == "enoent"
    assert out[0][2] - gone_at < 1.0


def test_receiver_killed_while_a_send_waits_raises_econnrefused(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "raw.sock")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    raw.bind(path)
    with genudp.open(family="local", active=False) as s:
        fill(s, path)
        out: list[Any] = []
        pid = blocked_send(s, b"orphan", path, out)
        wait_blocked(pid)
        gone_at = time.monotonic()
        raw.close()  # like a killed process: the file stays, nothing is bound
        assert pid.join(30)
        assert out[0][0] == "econnrefused"
        assert out[0][2] - gone_at < 1.0


def test_a_waiting_send_reaches_a_new_receiver_bound_at_the_same_path(full_receiver: Any) -> None:
    old, s, path = full_receiver
    out: list[Any] = []
    pid = blocked_send(s, b"to the new one", path, out)
    wait_blocked(pid)
    # The old receiver stays alive and full; a new one takes over the path.
    os.unlink(path)
    with genudp.open(path=path, active=False) as new:
        assert pid.join(30)
        assert out[0][0] == "ok"
        assert new.recv(timeout=30)[2] == b"to the new one"
    assert b"to the new one" not in drain(old)


# -- many senders -----------------------------------------------------------------------------


def stream_until_gone(path: str, tag: int) -> None:
    """Send numbered datagrams to ``path`` until its receiver goes away. Runs as a thread here and
    as the main code of separate processes (see ``_PROCESS_SENDER``)."""
    with genudp.open(family="local", active=False) as s:
        i = 0
        while True:
            try:
                s.send(b"%d %d" % (tag, i), path)
            except genudp.Error as exc:
                assert exc.reason in ("enoent", "econnrefused"), exc  # the receiver went away
                return
            i += 1


_PROCESS_SENDER = (
    "import sys; from tests.integration.test_full_receiver import stream_until_gone; "
    "stream_until_gone(sys.argv[1], int(sys.argv[2]))"
)
_REPO = Path(__file__).resolve().parents[2]


def test_many_senders_on_one_full_destination_all_make_progress(tmp_sock_dir: Path) -> None:
    """Four threads here and two separate processes stream into one slow receiver: every
    sender gets a share (the spread is printed), and none starves."""
    path = str(tmp_sock_dir / "shared.sock")
    threads, processes, target = 4, 2, 3000
    senders = threads + processes

    with genudp.open(path=path, active=False) as r:
        pids = [genudp.spawn(stream_until_gone, path, n) for n in range(threads)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _PROCESS_SENDER, path, str(threads + n)], stdin=subprocess.DEVNULL, cwd=_REPO
            )
            for n in range(processes)
        ]
        # Warm-up: processes need ~0.1 s to start. Count once every sender has been seen; one
        # that is never seen within the deadline is starved.
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        while len(seen) < senders:
            assert time.monotonic() < deadline, f"senders never seen: {set(range(senders)) - seen}"
            seen.add(int(r.recv(timeout=60)[2].split()[0]))
        counts = [0] * senders
        thirds = [[0] * senders for _ in range(3)]
        for n in range(target):
            tag = int(r.recv(timeout=60)[2].split()[0])
            counts[tag] += 1
            thirds[n * 3 // target][tag] += 1
    # Closing the receiver unlinked its path: every blocked sender ends with "enoent".
    for pid in pids:
        assert pid.join(30)
        assert pid.exit_reason == "normal"
    for proc in procs:
        assert proc.wait(30) == 0
    share = [c / target for c in counts]
    print(f"{senders} senders ({threads} threads, {processes} processes), {target} datagrams: ")
    print(f"shares min {min(share):.1%} max {max(share):.1%} (fair: {1 / senders:.1%}), counts {counts}")
    # Shares are uneven: a thread whose process's main thread is busy receiving (holding the
    # GIL) competes with single-threaded processes; raw blocking sockets show the same. Waiting
    # in the kernel, every sender makes progress (with poll-based waits, a thread here once got
    # 0 of 3000).
    print(f"per third: {thirds}")
    assert min(counts) >= 3, f"a sender starved: {counts}"
