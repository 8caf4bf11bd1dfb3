"""Every hot path written out by hand (a ``# PERF:`` comment names its harness in
``benchmarks/micro/``) gives what its general path gives: the same results, messages and
counters. Each test runs both on the same kind of socket and compares.
"""

from __future__ import annotations

import asyncio
from typing import Any

import genudp
from genudp import _owner_reads, _sendwait
from tests.integration.conftest import Maker

COUNTERS = ("datagrams_sent", "bytes_sent", "datagrams_received", "bytes_received", "truncated", "eagain_waits")


def counts(sock: genudp.Socket) -> dict[str, Any]:
    info = sock.info()
    return {key: info[key] for key in COUNTERS}  # type: ignore[literal-required]


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {key: after[key] - before[key] for key in COUNTERS}


PAYLOADS: list[bytes | bytearray | memoryview] = [
    b"",
    b"a",
    b"x" * 1000,
    bytearray(b"mutable"),
    memoryview(b"view of bytes"),
]


def test_send_fast_and_slow_paths_agree(make_pair: Maker) -> None:
    p = make_pair(active=False)
    got: dict[str, list[Any]] = {}
    counted: dict[str, dict[str, Any]] = {}
    for way in ("fast", "slow"):
        before = counts(p.sender)
        for data in PAYLOADS:
            if way == "fast":
                p.sender.send(data, p.dest)
            else:
                _sendwait.send_slow(p.sender, data, p.dest, _sendwait.UNSET, False)
        counted[way] = delta(counts(p.sender), before)
        got[way] = [p.receiver.recv(timeout=30) for _ in PAYLOADS]
    assert got["fast"] == got["slow"]
    assert [bytes(d) for _, _, d in got["fast"]] == [bytes(d) for d in PAYLOADS]
    assert counted["fast"] == counted["slow"]
    assert counted["fast"]["datagrams_sent"] == len(PAYLOADS)


def test_asend_and_send_agree(make_pair: Maker) -> None:
    p = make_pair(active=False)
    before = counts(p.sender)
    for data in PAYLOADS:
        p.sender.send(data, p.dest)
    sync = delta(counts(p.sender), before)
    sync_got = [p.receiver.recv(timeout=30) for _ in PAYLOADS]

    async def main() -> None:
        for data in PAYLOADS:
            await p.sender.asend(data, p.dest)

    before = counts(p.sender)
    asyncio.run(main())
    assert delta(counts(p.sender), before) == sync
    assert [p.receiver.recv(timeout=30) for _ in PAYLOADS] == sync_got


def test_recv_fast_and_general_paths_agree(make_pair: Maker) -> None:
    p = make_pair(active=False)
    got: dict[str, list[Any]] = {}
    counted: dict[str, dict[str, Any]] = {}
    for way in ("fast", "timeout", "general"):
        for data in PAYLOADS:
            p.sender.send(data, p.dest)
        before = counts(p.receiver)
        if way == "fast":
            got[way] = [p.receiver.recv() for _ in PAYLOADS]
        elif way == "timeout":
            got[way] = [p.receiver.recv(timeout=30) for _ in PAYLOADS]
        else:
            got[way] = [p.receiver._recv(None) for _ in PAYLOADS]
        counted[way] = delta(counts(p.receiver), before)
    assert got["fast"] == got["timeout"] == got["general"]
    assert got["fast"][0][:2] == (p.source, p.source_port)
    assert counted["fast"] == counted["timeout"] == counted["general"]
    assert counted["fast"]["datagrams_received"] == len(PAYLOADS)


def twin(sock: genudp.Socket) -> genudp.Socket:
    """A passive socket like ``sock`` (same family and address shape), for the calling process."""
    name = sock.sockname()
    if sock.family != "local":
        return genudp.open(family=sock.family, ip=name[0], active=False)
    return genudp.open(path=name + (b"-twin" if isinstance(name, bytes) else "-twin"), active=False)


def test_arecv_and_recv_agree(make_pair: Maker) -> None:
    p = make_pair(active=False)
    for data in PAYLOADS:
        p.sender.send(data, p.dest)
    before = counts(p.receiver)
    sync = [p.receiver.recv() for _ in PAYLOADS]
    sync_counted = delta(counts(p.receiver), before)

    async def main() -> tuple[list[Any], dict[str, Any]]:
        receiver = twin(p.receiver)  # the task's own: only the owner may arecv
        for data in PAYLOADS:
            p.sender.send(data, receiver.sockname())
        start = counts(receiver)
        got = [await receiver.arecv(timeout=30) for _ in PAYLOADS]
        return got, delta(counts(receiver), start)

    got, counted = asyncio.run(main())
    assert got == sync
    assert counted == sync_counted


def test_owner_read_and_general_paths_agree(make_pair: Maker) -> None:
    """The owner's interrupt-safe read of one datagram (held, then committed to the mailbox)
    and the hub's general delivery (_deliver_locked) make the same message and the same counts."""
    p = make_pair(active=True)
    messages: dict[str, Any] = {}
    counted: dict[str, dict[str, Any]] = {}
    # Keep the hub from reading these datagrams first: the owner reads them here itself.
    with p.receiver._lock:
        p.receiver._paused = True
        p.receiver._update_registration_locked()
    for way in ("fast", "general"):
        # Once send returns, the datagram is in the receiver's queue (local and loopback alike).
        p.sender.send(b"payload", p.dest)
        before = counts(p.receiver)
        with p.receiver._lock:
            p.receiver._paused = False  # readable again, yet unregistered: nobody else reads it
        if way == "fast":
            _owner_reads.owner_readable(p.receiver, 1)
        else:
            with p.receiver._lock:
                _owner_reads._deliver_locked(p.receiver, 1)
        with p.receiver._lock:
            p.receiver._paused = True
        counted[way] = delta(counts(p.receiver), before)
        messages[way] = genudp.receive(timeout=30)
    assert messages["fast"] == messages["general"]
    assert type(messages["fast"]) is type(messages["general"]) is genudp.Udp
    assert messages["fast"] == ("udp", p.receiver, p.source, p.source_port, b"payload")
    assert counted["fast"] == counted["general"]
    assert counted["fast"]["datagrams_received"] == 1
    with p.receiver._lock:
        p.receiver._paused = False
        p.receiver._update_registration_locked()
