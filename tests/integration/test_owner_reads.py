"""A thread process waiting in ``receive`` reads its own active sockets (no hub hand-off), keeps
them borrowed between waits, and the hub takes back a socket whose owner stays away (_owner_reads.py).

These tests look inside on purpose: at which thread read a datagram, whether the hub thread is
still looking at borrowed sockets, how often a thread woke. What they guard is behaviour a user
sees: a busy owner's datagrams still reach its mailbox, an idle owner costs no wake-ups, and
nothing is lost, duplicated or reordered across the hand-overs.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import genudp
from genudp import _hub, _owner_reads, _socket
from tests.blocking import thread_of, wait_blocked
from tests.integration.conftest import Maker, Pair


def udp(sock: genudp.Socket) -> Callable[[Any], bool]:
    return lambda m: m[0] == "udp" and m[1] is sock


def switches(tid: int | None) -> int:
    """Context switches the thread made so far (voluntary: each sleep it woke from)."""
    assert tid is not None
    with open(f"/proc/self/task/{tid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc status")


def cpu_seconds(tid: int | None) -> float:
    """CPU time the thread used so far (utime + stime, in clock ticks of 10 ms)."""
    assert tid is not None
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def eventually(what: str, check: Callable[[], bool], within: float = 30.0) -> None:
    """Liveness: ``check`` holds within ``within`` seconds (generous, for a loaded machine)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within} s")
        time.sleep(0.002)  # deliberate: sampling state that has no event to wait on


def start_borrowing_owner(p: Pair, then: Callable[[Any], None]) -> genudp.Pid:
    """Spawn an owner of ``p.receiver`` that reads the first datagram itself (asleep in
    receive when it arrives), so that the socket is borrowed; it then calls ``then(first)``."""
    me = genudp.self()

    def owner() -> None:
        # An owner already asleep when it is handed a socket sleeps on, until a message: "go".
        assert genudp.receive(timeout=60) == "go"
        first = genudp.receive(udp(p.receiver), timeout=60)
        me.send(("borrowed", p.receiver._borrower is not None))
        then(first)

    p.receiver.controlling_process(pid := genudp.spawn(owner))
    pid.send("go")
    wait_blocked(pid)  # asleep in poll in receive, so it reads the first datagram itself
    p.sender.send(b"first", p.dest)
    assert genudp.receive(lambda m: m[0] == "borrowed", timeout=60) == ("borrowed", True)
    return pid


@pytest.fixture
def readers() -> Iterator[Counter[str]]:
    """Counts, by thread name, who delivered datagrams: the hub or an owner in receive."""
    counts: Counter[str] = Counter()
    hub_read, owner_read = _socket.Socket._hub_readable, _socket.Socket._owner_readable

    def hub_readable(sock: _socket.Socket) -> None:
        counts["hub"] += 1
        hub_read(sock)

    def owner_readable(sock: _socket.Socket, limit: int) -> None:
        counts["owner"] += 1
        owner_read(sock, limit)

    setattr(_socket.Socket, "_hub_readable", hub_readable)  # noqa: B010 - a method, patched for counting
    setattr(_socket.Socket, "_owner_readable", owner_readable)  # noqa: B010
    try:
        yield counts
    finally:
        setattr(_socket.Socket, "_hub_readable", hub_read)  # noqa: B010
        setattr(_socket.Socket, "_owner_readable", owner_read)  # noqa: B010


def test_an_owner_that_keeps_up_reads_for_itself(make_pair: Maker, readers: Counter[str]) -> None:
    """Ping-pong: each datagram arrives while its owner waits in receive (or is about to)."""
    n = 300
    p = make_pair(active=True)
    me = genudp.self()

    def owner() -> None:
        for i in range(n):
            msg = genudp.receive(udp(p.receiver), timeout=60)
            assert msg == ("udp", p.receiver, p.source, p.source_port, b"%d" % i)
            me.send(("ack", i))

    p.receiver.controlling_process(pid := genudp.spawn(owner))
    for i in range(n):
        p.sender.send(b"%d" % i, p.dest)
        assert genudp.receive(lambda m: m[0] == "ack", timeout=60) == ("ack", i)
    assert pid.join(60) and pid.exit_reason == "normal"
    assert p.receiver.info()["datagrams_received"] == n
    # The hub reads only when the owner was away for a whole lease (a loaded machine).
    assert readers["owner"] >= n * 3 // 4, readers
    assert readers["owner"] + readers["hub"] >= n


def test_a_busy_owner_has_its_socket_taken_back_and_datagrams_reach_its_mailbox(make_pair: Maker) -> None:
    p = make_pair(active=True)
    busy, me = threading.Event(), genudp.self()

    def then(first: Any) -> None:
        busy.wait(60)  # busy: not in receive, for far longer than a lease
        me.send(("got", [first] + [genudp.receive(udp(p.receiver), timeout=60) for _ in range(5)]))

    pid = start_borrowing_owner(p, then)
    for i in range(1, 6):
        p.sender.send(b"%d" % i, p.dest)
    # Nobody is in receive: only the hub, having taken the socket back, can deliver them.
    eventually("the hub delivers to a busy owner", lambda: pid.info()["message_queue_len"] == 5)
    assert p.receiver._borrower is None
    busy.set()
    _, got = genudp.receive(lambda m: m[0] == "got", timeout=60)
    assert [m[4] for m in got] == [b"first"] + [b"%d" % i for i in range(1, 6)]
    assert pid.join(60) and pid.exit_reason == "normal"


def test_an_owner_asleep_in_receive_costs_no_wake_ups(make_pair: Maker) -> None:
    """Once every owner with borrowed sockets sleeps, the hub stops its lease timer."""
    p = make_pair(active=True)
    me = genudp.self()

    def then(first: Any) -> None:
        msg = genudp.receive(timeout=120)  # asleep, its socket borrowed
        assert msg == "stop" or msg[4] == b"late"
        if msg != "stop":
            me.send("late")
            assert genudp.receive(timeout=60) == "stop"

    pid = start_borrowing_owner(p, then)
    wait_blocked(pid)
    hub = _hub.hub()
    lease = _owner_reads.lease()
    eventually("the hub stops looking at an idle owner", lambda: not lease.timed)
    hub_tid, owner_tid = hub._thread.native_id, thread_of(pid).native_id
    hub_before, owner_before = switches(hub_tid), switches(owner_tid)
    time.sleep(0.5)  # deliberate: the span over which nothing may wake up
    # The lease timer would wake the hub 50 times in this span. The hub is the whole test
    # process's: leftovers of earlier tests (a late datagram) may wake it a few times.
    assert switches(hub_tid) - hub_before <= 10
    assert switches(owner_tid) - owner_before <= 2
    # And it still wakes for a datagram, and the hub starts looking again once it left.
    p.sender.send(b"late", p.dest)
    assert genudp.receive(timeout=60) == "late"
    eventually("the hub looks again at an owner that left receive", lambda: lease.timed or not lease._owners)
    pid.send("stop")
    assert pid.join(60) and pid.exit_reason == "normal"


def test_turning_passive_or_closing_under_a_waiting_owner_neither_spins_nor_loses(make_pair: Maker) -> None:
    p = make_pair(active=True)

    def then(first: Any) -> None:
        assert genudp.receive(lambda m: m == "stop", timeout=120) == "stop"

    pid = start_borrowing_owner(p, then)
    wait_blocked(pid)
    tid = thread_of(pid).native_id
    p.receiver.setopts(active=False)  # from another process, while the owner polls the socket
    p.sender.send(b"for a passive socket", p.dest)
    before = cpu_seconds(tid)
    time.sleep(0.5)  # deliberate: a readable socket left in the poll set would spin here
    assert cpu_seconds(tid) - before <= 0.1  # a spin: 0.5 s
    assert pid.info()["message_queue_len"] == 0
    p.receiver.setopts(active=1)  # the hub reads it again: the owner gets it, then udp_passive
    eventually("the datagram reaches the owner", lambda: pid.info()["message_queue_len"] == 2)
    p.receiver.close()  # and closing under the waiting owner wakes it harmlessly
    before = cpu_seconds(tid)
    time.sleep(0.5)  # deliberate: as above
    assert cpu_seconds(tid) - before <= 0.1
    pid.send("stop")
    assert pid.join(60) and pid.exit_reason == "normal"
    got = pid._mailbox.snapshot()
    pid._mailbox.extract(lambda m: True)
    assert got == [("udp", p.receiver, p.source, p.source_port, b"for a passive socket"), ("udp_passive", p.receiver)]


@pytest.mark.parametrize("kind", ["local-path", "local-abstract"])
def test_an_owner_that_comes_and_goes_loses_and_reorders_nothing(
    make_pair: Maker, readers: Counter[str], kind: str
) -> None:
    """Bursts of datagrams, each sent as fast as the sender can (it waits when the queue is
    full), to an owner that alternates waits with busy spells, some longer than a lease: the
    socket passes between owner and hub many times. The owner acks each burst's last datagram,
    so it has caught up (and waits, reading for itself) when the next burst starts."""
    total = 1200
    p = make_pair(active=True)
    me = genudp.self()
    rng = random.Random(7)
    spells = [rng.choice((0.0, 0.0, 0.0, 0.0, 0.001, 0.02)) for _ in range(total)]
    ends = sorted({rng.randrange(total) for _ in range(60)} | {total - 1})

    def owner() -> None:
        assert genudp.receive(timeout=60) == "go"
        got, last = [], set(ends)
        for i in range(total):
            got.append(genudp.receive(udp(p.receiver), timeout=60)[4])
            if i in last:
                me.send(("ack", i))
            if spells[i]:
                time.sleep(spells[i])  # the owner's own work, not synchronisation
        me.send(("got", got))

    p.receiver.controlling_process(pid := genudp.spawn(owner))
    pid.send("go")
    start = 0
    for end in ends:
        for i in range(start, end + 1):
            p.sender.send(b"%d" % i, p.dest)
        assert genudp.receive(lambda m: m[0] == "ack", timeout=60) == ("ack", end)
        start = end + 1
    _, got = genudp.receive(lambda m: m[0] == "got", timeout=300)
    assert got == [b"%d" % i for i in range(total)]
    assert pid.join(60) and pid.exit_reason == "normal"
    assert readers["owner"] > 0 and readers["hub"] > 0, readers


@pytest.mark.parametrize("kind", ["local-path", "local-abstract"])
def test_a_socket_handed_back_and_forth_while_its_owners_wait_loses_and_reorders_nothing(
    make_pair: Maker, kind: str
) -> None:
    """Two owners take turns: the holder receives a few datagrams (reading for itself, its
    socket borrowed), hands the socket over and waits in receive for it to come back. The
    datagrams in flight at each hand-over move with the socket (or are read by the hub or the
    new owner): the concatenation is the stream, once each, in order."""
    total = 1500
    p = make_pair(active=True)
    me = genudp.self()
    rng = random.Random(11)
    turns = [rng.randint(1, 40) for _ in range(total)]

    def owner() -> None:
        got: list[tuple[int, bytes]] = []  # (turn, datagram)
        while True:
            msg = genudp.receive(lambda m: m[0] in ("yours", "done"), timeout=60)
            if msg[0] == "done":
                me.send(("got", genudp.self(), got))
                return
            _, other, taken, turn = msg
            for _ in range(min(turns[turn], total - taken)):
                got.append((turn, genudp.receive(udp(p.receiver), timeout=60)[4]))
                taken += 1
            if taken == total:
                me.send(("finished", genudp.self()))
            else:
                p.receiver.controlling_process(other)
                other.send(("yours", genudp.self(), taken, turn + 1))

    a, b = genudp.spawn(owner), genudp.spawn(owner)
    p.receiver.controlling_process(a)
    a.send(("yours", b, 0, 0))
    for i in range(total):
        p.sender.send(b"%d" % i, p.dest)
    _, last = genudp.receive(lambda m: m[0] == "finished", timeout=300)
    a.send(("done",))
    b.send(("done",))
    shares = [genudp.receive(lambda m: m[0] == "got", timeout=60)[2] for _ in range(2)]
    assert a.join(60) and b.join(60) and a.exit_reason == b.exit_reason == "normal"
    # Turn by turn, the holders' datagrams are the stream.
    in_turn_order = [data for _, data in sorted(shares[0] + shares[1], key=lambda t: t[0])]
    assert in_turn_order == [b"%d" % i for i in range(total)]
    assert last in (a, b)
    assert len({turn for turn, _ in shares[0] + shares[1]}) > 40  # many hand-overs
