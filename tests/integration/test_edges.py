"""Edges of the interrupts issue that need no signal storm: several waiters of one mailbox, a
cancelled or timed-out ``aio.join``, timeouts too long for the platform's own calls, a tiny
send_timeout, and the file-descriptor limit."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import genudp
import genudp.aio
from genudp._options import FOREVER_AFTER, check_timeout
from tests.blocking import wait_blocked


def test_two_tasks_receiving_selectively_each_get_theirs() -> None:
    """While A waits (having rejected an older message), B takes that older message; then A's
    message arrives. A must get it (its saved scan position used to skip it)."""

    async def main() -> tuple[Any, Any]:
        me = genudp.aio.self()
        me.send("x")

        async def a() -> Any:
            return await genudp.aio.receive(lambda m: m == "a", timeout=30)

        async def b() -> Any:
            return await genudp.aio.receive(lambda m: m == "x", timeout=30)

        task_a = asyncio.ensure_future(a())
        await asyncio.sleep(0)  # a yield: A scans "x", rejects it, and waits
        task_b = asyncio.ensure_future(b())
        got_b = await task_b  # B takes the older "x" from under A's scan position
        threading.Thread(target=me.send, args=("a",)).start()
        return await task_a, got_b

    assert asyncio.run(main()) == ("a", "x")


def test_a_receive_inside_match_takes_nothing_twice() -> None:
    """A match that itself receives moves the messages under the outer scan: the outer one must
    still remove the message it matched, and only that one."""
    me = genudp.self()
    for m in ("first", "second", "third"):
        me.send(m)
    inner: list[Any] = []

    def match(m: Any) -> bool:
        if m == "second" and not inner:
            inner.append(genudp.receive(lambda x: x == "first", timeout=0))
        return bool(m == "second")

    assert genudp.receive(match, timeout=0) == "second"
    assert inner == ["first"]
    assert genudp.flush() == ["third"]


@pytest.mark.parametrize("how", ["timeout", "cancelled"])
def test_aio_join_leaves_no_monitor_and_no_down_behind(how: str) -> None:
    stop = threading.Event()
    pid = genudp.spawn(stop.wait, 60)

    async def main() -> list[Any]:
        if how == "timeout":
            assert await genudp.aio.join(pid, 0.01) is False
        else:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(genudp.aio.join(pid), 0.01)
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, pid.join, 30)
        # The DOWN a monitor left behind would be here by now: it is sent before join returns.
        return genudp.aio.self().messages()

    assert asyncio.run(main()) == []
    assert not pid.is_alive()


def test_no_down_arrives_after_demonitor_returns_even_racing_the_exit() -> None:
    me = genudp.self()
    for _ in range(300):
        go = threading.Event()
        pid = genudp.spawn(go.wait, 30)
        ref = genudp.monitor(pid)
        go.set()  # it ends now, while we demonitor
        genudp.demonitor(ref, flush=True)
        assert pid.join(30)
        assert me.messages() == [], "a DOWN arrived after demonitor(flush=True) returned"


def test_timeouts_beyond_what_the_platform_can_express_wait_as_long_as_needed(tmp_sock_dir: Path) -> None:
    assert check_timeout(1e10) is None and check_timeout(FOREVER_AFTER) == FOREVER_AFTER
    me = genudp.self()
    path = str(tmp_sock_dir / "a.sock")
    results: list[Any] = []

    def waiter() -> None:
        with genudp.open(path=path + ".passive", active=False) as passive:
            results.append(passive.recv(timeout=3e6)[2])  # beyond poll's 24.8 days, within FOREVER_AFTER
        results.append(genudp.receive(lambda m: m == "plain", timeout=1e10))
        with genudp.open(path=path, active=True):  # the owner's epoll wait, 35 days
            message = genudp.receive(lambda m: m[0] == "udp", timeout=3e6)
            results.append(message.data)
        me.send("done")

    pid = genudp.spawn(waiter)
    with genudp.open(family="local", active=False) as s:
        for target in (path + ".passive", None, path):
            if target is None:
                pid.send("plain")  # a mailbox wait sleeps on a futex, which wait_blocked does not tell
            else:
                wait_blocked(pid)  # asleep in poll, then in epoll_wait, 35 days long
                s.send(b"late", target)
    assert genudp.receive(timeout=60) == "done"
    assert pid.join(60) and pid.exit_reason == "normal"
    assert results == [b"late", "plain", b"late"]
    assert pid.join(1e10)


def test_a_tiny_send_timeout_does_not_make_a_waiting_send_wake_every_microsecond(tmp_sock_dir: Path) -> None:
    """send(timeout=None) on a socket whose send_timeout is 1 us waits in slices of 40 ms (the
    kernel's SO_SNDTIMEO), not 1 us: read back while it waits."""
    path = str(tmp_sock_dir / "full.sock")
    with genudp.open(path=path, active=False) as r, genudp.open(family="local", active=False, send_timeout=1e-6) as s:
        while True:  # fill the receiver's queue
            try:
                s.send(b"x", path, timeout=0)
            except genudp.Error as exc:
                assert exc.reason == "eagain"
                break
        done = threading.Event()

        def waiting_send() -> None:
            s.send(b"last", path, timeout=None)
            done.set()

        own = s._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)  # 1 us, in jiffies
        pid = genudp.spawn(waiting_send)
        wait_blocked(pid)
        seconds, micros = struct.unpack("ll", s._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16))
        assert seconds + micros / 1e6 >= 0.03, (seconds, micros)
        while not done.is_set():
            r.recv(timeout=30)
        assert pid.join(30) and pid.exit_reason == "normal"
        assert s._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16) == own, "its own slice was not set back"
        while True:
            try:
                r.recv(timeout=0)
            except genudp.Timeout:
                break


def test_at_the_fd_limit_every_call_says_emfile_and_leaves_nothing(tmp_sock_dir: Path) -> None:
    program = textwrap.dedent(
        """
        import os, resource, socket, sys
        import genudp
        path = sys.argv[1]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 64, hard))

        def hog(leave):
            taken = []
            try:
                while True:
                    taken.append(socket.socket())
            except OSError:
                pass
            for _ in range(leave):
                taken.pop().close()
            return taken

        def outcome(call):
            try:
                call()
                return "no error"
            except genudp.Error as exc:
                return exc.reason
            except Exception as exc:
                return repr(exc)

        # One fd free, no hub yet: the socket is made and bound, then starting the hub fails.
        taken = hog(1)
        first = outcome(lambda: genudp.open(path=path, active=True))
        print(first, os.path.exists(path))
        for s in taken:
            s.close()
        # An active socket, then no fd free: receive needs an eventfd and an epoll set.
        sock = genudp.open(path=path + ".a", active=True)
        taken = hog(0)
        print(outcome(lambda: genudp.receive(timeout=0.01)), outcome(lambda: genudp.open(path=path, active=False)))
        for s in taken:
            s.close()
        sock.send(b"again", path + ".a")  # and it works again
        print(genudp.receive(timeout=30).data)
        sock.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_sock_dir / "e.sock")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["emfile False", "emfile emfile", "b'again'"], done.stdout + done.stderr
