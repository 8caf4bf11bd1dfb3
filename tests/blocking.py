"""Waiting until a thread really sleeps in the kernel: the blocked path is forced, not hoped for."""

from __future__ import annotations

import threading
import time

import pytest

import genudp

#: Where a genudp waiter sleeps in the kernel: poll (a recv with a timeout, UDP sends), recvmsg
#: (a recv without one: __skb_wait_for_more_packets) or, for a local send, the peer's queue
#: (unix_wait_for_peer) or its own send buffer (sock_alloc_send_pskb).
BLOCKING_WCHANS = ("poll", "unix_wait_for_peer", "sock_alloc_send_pskb", "wait_for_more_packets")


def thread_of(pid: genudp.Pid) -> threading.Thread:
    return next(t for t in threading.enumerate() if t.name.startswith(f"genudp-{pid._id}"))


def wait_blocked(pid: genudp.Pid) -> None:
    """Wait until ``pid``'s thread sleeps in a genudp wait (as /proc reports); fail after 30 s."""
    wait_tid_blocked(thread_of(pid).native_id)


def wait_tid_blocked(tid: int | None) -> None:
    assert tid is not None, "the thread has not started"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/self/task/{tid}/wchan") as f:
                wchan = f.read()
        except FileNotFoundError:
            pytest.fail("the sender ended instead of blocking")
        if state == "S" and any(w in wchan for w in BLOCKING_WCHANS):
            return
        time.sleep(0.001)  # deliberate: sampling /proc until the thread is asleep
    pytest.fail("the sender never blocked")
