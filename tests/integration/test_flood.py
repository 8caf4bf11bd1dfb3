"""Flow control of active mode: a flood into an owner that does not read stays bounded.

At ``high_msgq_watermark`` messages in the owner's mailbox the hub stops reading the socket; the
kernel queue fills; local senders wait (nothing lost), UDP drops (each drop counted by the
kernel); the owner's catching up to ``low_msgq_watermark`` resumes reading.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import genudp
from tests.blocking import wait_blocked

BATCH = 64  # the hub reads at most this many datagrams per wake-up


def flood(path: str, total: int) -> None:
    """Send ``total`` numbered datagrams to ``path``, waiting whenever it is full."""
    with genudp.open(family="local", active=False) as s:
        for i in range(total):
            s.send(b"%d" % i, path)


def paused(sock: genudp.Socket) -> bool:
    """Wait (up to 30 s) until the hub has paused ``sock``."""
    deadline = time.monotonic() + 30
    while not sock.info()["paused"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)  # deliberate: sampling the socket's state until the hub pauses it
    return True


def test_a_local_flood_is_held_back_and_nothing_is_lost(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "flood.sock")
    high, low, total = 300, 100, 5000
    with genudp.open(path=path, active=True, high_msgq_watermark=high, low_msgq_watermark=low) as r:
        sender = genudp.spawn(flood, path, total)
        # We do not read: the hub pauses at the high watermark, the kernel queue fills, and the
        # sender waits.
        assert paused(r)
        wait_blocked(sender)
        backlog = genudp.self().info()["message_queue_len"]
        assert high <= backlog <= high + BATCH, backlog
        # Catching up resumes reading; every datagram arrives, in order.
        got = [genudp.receive(timeout=60)[4] for _ in range(total)]
        assert got == [b"%d" % i for i in range(total)]
        assert sender.join(60)
        info = r.info()
        assert info["pauses"] >= 1 and not info["paused"]
        assert info["kernel_drops"] is None


def test_a_udp_flood_is_bounded_and_every_datagram_is_delivered_or_counted_as_dropped() -> None:
    high, low, total = 200, 50, 5000
    with (
        genudp.open(ip="127.0.0.1", active=True, high_msgq_watermark=high, low_msgq_watermark=low) as r,
        genudp.open(ip="127.0.0.1", active=False) as s,
    ):
        for i in range(total):
            s.send(b"%d" % i, r.sockname())  # UDP: never waits for the receiver
        assert paused(r)
        backlog = genudp.self().info()["message_queue_len"]
        assert high <= backlog <= high + BATCH, backlog
        drops = r.info()["kernel_drops"]
        assert drops is not None and drops > 0
        # Catch up: every datagram the kernel did not drop arrives, in order.
        got: list[int] = []
        deadline = time.monotonic() + 60
        while len(got) + (r.info()["kernel_drops"] or 0) < total:
            assert time.monotonic() < deadline, (len(got), r.info())
            message: Any = genudp.receive(timeout=60)
            got.append(int(message[4]))
        assert got == sorted(got) and len(set(got)) == len(got)
        assert len(got) + (r.info()["kernel_drops"] or 0) == total
        print(f"UDP flood of {total}: {len(got)} delivered, {r.info()['kernel_drops']} dropped by the kernel")


def test_handing_over_a_paused_socket_resumes_it_for_the_new_owner(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "handover.sock")
    total = 200
    with genudp.open(path=path, active=True, high_msgq_watermark=20, low_msgq_watermark=10) as r:
        sender = genudp.spawn(flood, path, total)
        assert paused(r)
        wait_blocked(sender)
        collected: list[bytes] = []
        me = genudp.self()

        def new_owner() -> None:
            genudp.receive(lambda m: m == "go", timeout=30)
            while len(collected) < total:
                collected.append(genudp.receive(timeout=30)[4])
            me.send("done")

        child = genudp.spawn(new_owner)
        # The messages already delivered move along; the paused socket resumes for the new owner.
        r.controlling_process(child)
        child.send("go")
        assert genudp.receive(lambda m: m == "done", timeout=60) == "done"
        assert collected == [b"%d" % i for i in range(total)]
        assert child.join(30) and sender.join(30)


def test_watermarks_are_checked_as_a_pair() -> None:
    import pytest

    with pytest.raises(ValueError, match="must not exceed"):
        genudp.open(ip="127.0.0.1", high_msgq_watermark=10, low_msgq_watermark=20)
    with pytest.raises(TypeError, match="high_msgq_watermark must be an int"):
        genudp.open(ip="127.0.0.1", high_msgq_watermark="many")  # type: ignore[arg-type]
