"""Processes and mailboxes (threads, no sockets)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genudp


def test_receive_takes_oldest_match_and_keeps_the_rest_in_order() -> None:
    me = genudp.self()
    for m in [1, "a", 2, "b", 3]:
        me.send(m)
    assert genudp.receive(lambda m: isinstance(m, str)) == "a"
    assert genudp.receive(lambda m: m == 3) == 3
    assert [genudp.receive(timeout=0) for _ in range(3)] == [1, 2, "b"]


@given(st.lists(st.integers(0, 9), max_size=40), st.integers(0, 9))
@settings(deadline=None)
def test_selective_receive_is_a_save_queue(messages: list[int], wanted: int) -> None:
    me = genudp.self()
    for m in messages:
        me.send(m)
    taken = []
    while True:
        try:
            taken.append(genudp.receive(lambda m: m == wanted, timeout=0))
        except genudp.Timeout:
            break
    rest = [genudp.receive(timeout=0) for _ in range(len(messages) - len(taken))]
    assert taken == [m for m in messages if m == wanted]
    assert rest == [m for m in messages if m != wanted]


def test_receive_timeout_zero_polls_and_raises_timeout() -> None:
    with pytest.raises(genudp.Timeout) as info:
        genudp.receive(timeout=0)
    assert isinstance(info.value, TimeoutError)
    assert info.value.reason == "timeout"


def test_receive_timeout_waits_at_least_that_long() -> None:
    start = time.monotonic()
    with pytest.raises(genudp.Timeout):
        genudp.receive(timeout=0.05)
    assert time.monotonic() - start >= 0.05


def test_receive_wakes_for_a_match_sent_from_another_thread() -> None:
    me = genudp.self()

    def sender() -> None:
        me.send("skip")
        me.send(("hello", 1))

    p = genudp.spawn(sender)
    assert genudp.receive(lambda m: isinstance(m, tuple), timeout=30) == ("hello", 1)
    assert genudp.receive(timeout=0) == "skip"
    assert p.join(30)


def test_a_match_that_sends_to_its_own_mailbox_does_not_deadlock() -> None:
    me = genudp.self()
    me.send("x")

    def match(m: object) -> bool:
        if m == "x":
            me.send("y")
        return m == "y"

    assert genudp.receive(match, timeout=30) == "y"
    assert genudp.receive(timeout=0) == "x"


def test_spawn_runs_with_its_own_mailbox_and_self() -> None:
    parent = genudp.self()

    def child(tag: str, *, extra: int) -> None:
        parent.send((tag, extra, genudp.self()))
        msg = genudp.receive(timeout=30)
        parent.send(("echo", msg))

    pid = genudp.spawn(child, "hi", extra=7, name="child")
    tag, extra, reported = genudp.receive(timeout=30)
    assert (tag, extra, reported) == ("hi", 7, pid)
    genudp.send(pid, "ping")
    assert genudp.receive(timeout=30) == ("echo", "ping")
    assert pid.join(30) is True
    assert not pid.is_alive()
    assert pid.exit_reason == "normal"
    assert "child" in repr(pid)


def test_sending_to_an_ended_process_is_dropped() -> None:
    pid = genudp.spawn(lambda: None)
    assert pid.join(30)
    pid.send("lost")
    assert pid.info()["message_queue_len"] == 0


def test_monitor_reports_normal_exit_and_exceptions() -> None:
    release = threading.Event()
    ok = genudp.spawn(release.wait)
    boom = ValueError("boom")

    def crash() -> None:
        release.wait()
        raise boom

    bad = genudp.spawn(crash)
    r1, r2 = genudp.monitor(ok), genudp.monitor(bad)
    release.set()
    downs = {}
    for _ in range(2):
        tag, ref, kind, pid, reason = genudp.receive(timeout=30)
        assert (tag, kind) == ("DOWN", "process")
        downs[ref] = (pid, reason)
    assert downs == {r1: (ok, "normal"), r2: (bad, boom)}


def test_monitor_of_an_ended_process_says_noproc() -> None:
    pid = genudp.spawn(lambda: None)
    pid.join(30)
    ref = genudp.monitor(pid)
    assert genudp.receive(timeout=30) == ("DOWN", ref, "process", pid, "noproc")


def test_demonitor_stops_the_down_message() -> None:
    release = threading.Event()
    pid = genudp.spawn(release.wait)
    ref = genudp.monitor(pid)
    genudp.demonitor(ref)
    release.set()
    assert pid.join(30)
    with pytest.raises(genudp.Timeout):
        genudp.receive(timeout=0)


def test_a_plain_thread_becomes_a_process_and_ends_with_its_thread() -> None:
    found: list[genudp.Pid] = []
    ready, go = threading.Event(), threading.Event()

    def body() -> None:
        found.append(genudp.self())
        assert genudp.self() is found[0]
        ready.set()
        go.wait()

    t = threading.Thread(target=body)
    t.start()
    assert ready.wait(30)
    pid = found[0]
    ref = genudp.monitor(pid)
    assert pid.is_alive()
    go.set()
    t.join()
    assert genudp.receive(timeout=30) == ("DOWN", ref, "process", pid, "normal")


def test_blocked_receive_uses_no_cpu() -> None:
    out: list[float] = []

    def body() -> None:
        start = time.thread_time()
        with pytest.raises(genudp.Timeout):
            genudp.receive(timeout=0.5)
        out.append(time.thread_time() - start)

    genudp.spawn(body).join(30)
    assert out and out[0] < 0.05, f"a 0.5 s receive used {out[0]:.3f} s of CPU"


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda: genudp.send("nope", 1), "send needs a Pid; got str"),  # type: ignore[arg-type]
        (lambda: genudp.monitor(1), "monitor needs a Pid; got int"),  # type: ignore[arg-type]
        (lambda: genudp.spawn(42), "spawn needs a callable; got int"),  # type: ignore[arg-type]
        (lambda: genudp.receive(match=3), "match must be a callable"),  # type: ignore[arg-type]
        (lambda: genudp.receive(timeout="1"), "timeout must be None or a number"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_raise_type_errors_naming_what_was_expected(call: object, text: str) -> None:
    assert callable(call)
    with pytest.raises(TypeError, match=text):
        call()


def test_receive_inside_an_event_loop_is_refused_with_a_clear_error() -> None:
    import asyncio

    async def main() -> None:
        with pytest.raises(RuntimeError, match="stall the running event loop"):
            genudp.receive(timeout=1)

    asyncio.run(main())
