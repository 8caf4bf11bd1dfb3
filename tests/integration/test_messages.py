"""Messages are typed tuples (they match and compare as before), and a process's mailbox can be
looked into and emptied through the public API (``Pid.messages()``, ``genudp.flush()``)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

import genudp


def test_a_datagram_message_is_a_udp_tuple(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "r.sock")
    with genudp.open(path=path, active=True) as r, genudp.open(family="local", active=False) as s:
        s.send(b"hello", path)
        message: genudp.Udp = genudp.receive(timeout=30)
        assert type(message) is genudp.Udp
        assert (message.socket, message.address, message.port, message.data) == (r, None, 0, b"hello")
        assert message == ("udp", r, None, 0, b"hello")  # equal to the plain tuple
        match message:
            case ("udp", sock, address, port, data):
                assert (sock, address, port, data) == (r, None, 0, b"hello")
            case _:
                raise AssertionError(f"did not match: {message!r}")


def test_udp_passive_and_down_messages_are_typed(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "r.sock")
    with genudp.open(path=path, active=1) as r, genudp.open(family="local", active=False) as s:
        s.send(b"only", path)
        assert genudp.receive(timeout=30).data == b"only"
        passive = genudp.receive(timeout=30)
        assert type(passive) is genudp.UdpPassive and passive == ("udp_passive", r)
    pid = genudp.spawn(lambda: None)
    assert pid.join(30)
    ref = genudp.monitor(pid)
    down: genudp.Down = genudp.receive(timeout=30)
    assert type(down) is genudp.Down
    assert (down.ref, down.pid, down.reason) == (ref, pid, "noproc")
    assert down == ("DOWN", ref, "process", pid, "noproc")


def test_messages_is_a_snapshot_and_flush_takes_everything_in_order() -> None:
    me = genudp.self()
    for n in range(5):
        me.send(("n", n))
    assert me.messages() == [("n", n) for n in range(5)]
    assert me.messages() == [("n", n) for n in range(5)]  # a snapshot took nothing
    assert genudp.flush() == [("n", n) for n in range(5)]
    assert me.messages() == [] and genudp.flush() == []


def test_messages_of_another_process() -> None:
    def process() -> None:
        genudp.receive(lambda m: m == "stop", timeout=60)
        assert genudp.flush() == ["first", "second"]

    pid = genudp.spawn(process)
    pid.send("first")
    pid.send("second")
    assert pid.messages()[:2] == ["first", "second"]
    pid.send("stop")
    assert pid.join(30) and pid.exit_reason == "normal"


def eventually(what: str, check: Callable[[], bool], within: float = 30.0) -> None:
    """Liveness: ``check`` holds within ``within`` seconds (generous, for a loaded machine)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.002)  # deliberate: sampling state that has no event to wait on


def has_messages(pid: genudp.Pid, count: int) -> bool:
    return len(pid.messages()) == count


def test_flush_resumes_a_socket_paused_for_a_full_mailbox(tmp_sock_dir: Path) -> None:
    """flush() takes the mailbox below the low watermark: a socket paused for it reads again."""
    path = str(tmp_sock_dir / "r.sock")
    me = genudp.self()
    with (
        genudp.open(path=path, active=True, high_msgq_watermark=4, low_msgq_watermark=2) as r,
        genudp.open(family="local", active=False) as s,
    ):
        for n in range(4):  # one at a time: each is read while the mailbox is below 4
            s.send(str(n).encode(), path)
            eventually(f"the hub delivers {n}", functools.partial(has_messages, me, n + 1))
        for n in range(4, 7):
            s.send(str(n).encode(), path)
        eventually("the hub pauses at the high watermark", lambda: r.info()["paused"])
        first = [m.data for m in genudp.flush()]
        assert first == [str(n).encode() for n in range(4)]
        rest = [genudp.receive(timeout=30).data for _ in range(3)]
        assert rest == [str(n).encode() for n in range(4, 7)]
        assert not r.info()["paused"]
