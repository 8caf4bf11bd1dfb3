"""The core cases, each run three ways: by thread processes with the blocking calls, and by an
asyncio task process (default loop, then uvloop) with ``asend``/``arecv``/``aio.receive``.

Sockets are opened inside the body so that the body's process (the test thread, or the loop's
main task) owns them.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path
from typing import Any

import pytest

import genudp
from tests.datagrams import drain, fill
from tests.integration.conftest import Maker
from tests.runtimes import Runtime

LONG = b"L" * 60000


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_send_and_recv(runtime: Runtime, make_pair: Maker, kind: str) -> None:
    async def body() -> None:
        p = make_pair(active=False)
        sizes = [b"", b"a", bytes(range(256))] + ([LONG] if kind in ("inet", "inet6") else [b"m" * 8000])
        for data in sizes:
            await runtime.send(p.sender, data, p.dest)
        for data in sizes:
            assert await runtime.recv(p.receiver, 30) == (p.source, p.source_port, data)
        with pytest.raises(genudp.Timeout):
            await runtime.recv(p.receiver, 0)
        with pytest.raises(genudp.Timeout):
            await runtime.recv(p.receiver, 0.05)

    runtime.run(body)


def test_active_n_then_udp_passive_then_recv(runtime: Runtime, make_pair: Maker) -> None:
    async def body() -> None:
        p = make_pair(active=2)
        for i in range(3):
            await runtime.send(p.sender, b"%d" % i, p.dest)
        r = p.receiver
        assert await runtime.receive(timeout=30) == ("udp", r, p.source, p.source_port, b"0")
        assert await runtime.receive(timeout=30) == ("udp", r, p.source, p.source_port, b"1")
        assert await runtime.receive(timeout=30) == ("udp_passive", r)
        assert await runtime.recv(r, 30) == (p.source, p.source_port, b"2")
        with pytest.raises(genudp.Error) as active:
            r.setopts(active=True)
            await runtime.recv(r, 1)
        assert active.value.reason == "einval"
        r.setopts(active=False)

    runtime.run(body)


def test_selective_receive_keeps_the_others_in_order(runtime: Runtime) -> None:
    async def body() -> None:
        me = genudp.self()
        for message in [("a", 1), ("b", 2), ("a", 3), ("c", 4)]:
            me.send(message)
        assert await runtime.receive(lambda m: m[0] == "c", timeout=5) == ("c", 4)
        assert await runtime.receive(lambda m: m[0] == "b", timeout=5) == ("b", 2)
        with pytest.raises(genudp.Timeout):
            await runtime.receive(lambda m: m[0] == "z", timeout=0.05)
        assert [await runtime.receive(timeout=0) for _ in range(2)] == [("a", 1), ("a", 3)]

    runtime.run(body)


def test_messages_between_this_process_and_a_thread_process(runtime: Runtime) -> None:
    def echo() -> None:
        sender, message = genudp.receive(timeout=30)
        sender.send(("echo", message))

    async def body() -> None:
        pid = genudp.spawn(echo)
        pid.send((genudp.self(), "ping"))
        assert await runtime.receive(timeout=30) == ("echo", "ping")
        assert await runtime.join(pid, 30)

    runtime.run(body)


# -- a full receiver ----------------------------------------------------------------------------


def test_timeout_zero_is_eagain_and_t_is_timeout_and_neither_sends(runtime: Runtime, tmp_sock_dir: Path) -> None:
    async def body() -> None:
        path = str(tmp_sock_dir / "r.sock")
        r = genudp.open(path=path, active=False)
        s = genudp.open(family="local", active=False)
        n = fill(s, path)
        with pytest.raises(genudp.Error) as eagain:
            await runtime.send(s, b"zero", path, timeout=0)
        assert eagain.value.reason == "eagain"
        started = time.monotonic()
        with pytest.raises(genudp.Timeout) as timed_out:
            await runtime.send(s, b"later", path, timeout=0.2)
        assert timed_out.value.reason == "timeout"
        assert 0.15 <= time.monotonic() - started < 10
        assert drain(r) == [b"fill"] * n, "neither refused datagram was sent"

    runtime.run(body)


@pytest.mark.parametrize("how", ["unconnected-path", "unconnected-abstract", "connected", "own-send-buffer"])
def test_a_waiting_send_completes_exactly_once_using_no_cpu(runtime: Runtime, tmp_sock_dir: Path, how: str) -> None:
    async def body() -> None:
        where: Any = f"\0genudp-rt-{time.monotonic_ns()}" if how == "unconnected-abstract" else str(tmp_sock_dir / "r")
        r = genudp.open(path=where, active=False)
        s = genudp.open(family="local", active=False, sndbuf=8192 if how == "own-send-buffer" else None)
        dest = where
        if how == "connected":
            s.connect(where)
            dest = None
        payload = b"x" * 10000 if how == "own-send-buffer" else b"fill"
        n = fill(s, dest, payload)
        pending = await runtime.start_send(s, b"last", dest)
        assert pending.waiting and not pending.done
        cpu = _cpu()
        await runtime.sleep(1.0)  # deliberate: the scenario is a sender kept waiting for a second
        share = _cpu() - cpu
        got = []
        while not pending.done:
            got.append((await runtime.recv(r, 30))[-1])
            if len(got) > n:
                break
        await runtime.outcome(pending)
        got += drain(r)
        assert pending.error is None, pending.error
        assert got == [payload] * n + [b"last"], "every datagram exactly once, the waiting one last"
        assert s.info()["eagain_waits"] == 1
        print(f"{runtime.name} {how}: process CPU {share:.1%} of a core while a send waited 1 s")
        assert share <= 0.05, f"the process used {share:.1%} of a core while a send waited"

    runtime.run(body)


def test_close_wakes_a_waiting_send_and_it_was_not_sent(runtime: Runtime, tmp_sock_dir: Path) -> None:
    async def body() -> None:
        path = str(tmp_sock_dir / "r.sock")
        r = genudp.open(path=path, active=False)
        s = genudp.open(family="local", active=False)
        n = fill(s, path)
        pending = await runtime.start_send(s, b"never", path)
        closed_at = time.monotonic()
        s.close()
        await runtime.outcome(pending)
        woke = time.monotonic() - closed_at
        assert isinstance(pending.error, genudp.Error) and pending.error.reason == "closed", pending.error
        print(f"{runtime.name}: close woke a waiting send after {woke * 1000:.1f} ms")
        assert woke < 5, "close must wake a waiting send promptly (40 ms by design; 5 s for a loaded machine)"
        assert drain(r) == [b"fill"] * n

    runtime.run(body)


def test_close_wakes_a_waiting_recv(runtime: Runtime) -> None:
    async def body() -> None:
        opened: list[genudp.Socket] = []

        def make() -> genudp.Socket:
            sock = genudp.open(ip="127.0.0.1", active=False)
            opened.append(sock)
            return sock

        async def waiting() -> Any:
            return await make().arecv()

        pending = await runtime.start(waiting, lambda: make().recv())
        closed_at = time.monotonic()
        opened[0].close()
        await runtime.outcome(pending)
        woke = time.monotonic() - closed_at
        assert isinstance(pending.error, genudp.Error) and pending.error.reason == "closed", pending.error
        print(f"{runtime.name}: close woke a waiting recv after {woke * 1000:.2f} ms")
        assert woke < 5

    runtime.run(body)


def test_only_the_owner_receives(runtime: Runtime) -> None:
    async def body() -> None:
        sock = genudp.open(ip="127.0.0.1", active=False)

        def other() -> None:
            try:
                sock.recv(0)
            except genudp.Error as exc:
                genudp.send(owner, exc.reason)

        owner = genudp.self()
        assert await runtime.join(genudp.spawn(other), 30)
        assert await runtime.receive(timeout=30) == "not_owner"

    runtime.run(body)


def test_receiver_closed_or_killed_while_a_send_waits(runtime: Runtime, tmp_sock_dir: Path) -> None:
    async def body() -> None:
        # genudp's receiver unlinks its file on close: "enoent". A raw socket closed like a
        # killed process leaves the file: "econnrefused". Either way at once, not sent.
        for how, expected in (("closed", "enoent"), ("killed", "econnrefused")):
            path = str(tmp_sock_dir / f"{how}.sock")
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            receiver = genudp.open(path=path, active=False) if how == "closed" else None
            if receiver is None:
                raw.bind(path)
            s = genudp.open(family="local", active=False)
            fill(s, path)
            pending = await runtime.start_send(s, b"orphan", path)
            gone_at = time.monotonic()
            if receiver is not None:
                receiver.close()
            raw.close()
            await runtime.outcome(pending)
            assert isinstance(pending.error, genudp.Error) and pending.error.reason == expected, pending.error
            assert time.monotonic() - gone_at < 5, "the sender must learn at once (1 s by design)"
            s.close()

    runtime.run(body)


def test_a_waiting_send_reaches_a_new_receiver_bound_at_the_same_path(runtime: Runtime, tmp_sock_dir: Path) -> None:
    async def body() -> None:
        path = str(tmp_sock_dir / "r.sock")
        old = genudp.open(path=path, active=False)
        s = genudp.open(family="local", active=False)
        n = fill(s, path)
        pending = await runtime.start_send(s, b"to the new one", path)
        # The old receiver stays alive and full; a new one takes over the path.
        os.unlink(path)
        new = genudp.open(path=path, active=False)
        await runtime.outcome(pending)
        assert pending.error is None, pending.error
        assert await runtime.recv(new, 30) == (None, 0, b"to the new one")
        assert drain(old) == [b"fill"] * n

    runtime.run(body)


def test_connect_filters_and_sends_without_a_destination(runtime: Runtime, tmp_sock_dir: Path) -> None:
    async def body() -> None:
        r = genudp.open(path=str(tmp_sock_dir / "r.sock"), active=False)
        chosen = genudp.open(path=str(tmp_sock_dir / "chosen.sock"), active=False)
        other = genudp.open(path=str(tmp_sock_dir / "other.sock"), active=False)
        r.connect(str(tmp_sock_dir / "chosen.sock"))
        with pytest.raises(genudp.Error) as refused:
            await runtime.send(other, b"not you", str(tmp_sock_dir / "r.sock"))
        assert refused.value.reason == "eperm"
        await runtime.send(chosen, b"you", str(tmp_sock_dir / "r.sock"))
        assert await runtime.recv(r, 30) == (str(tmp_sock_dir / "chosen.sock"), 0, b"you")
        await runtime.send(r, b"back")  # the connected peer is the default destination
        assert await runtime.recv(chosen, 30) == (str(tmp_sock_dir / "r.sock"), 0, b"back")
        with pytest.raises(genudp.Error) as unconnected:
            await runtime.send(other, b"nowhere")
        assert unconnected.value.reason == "enotconn"

    runtime.run(body)


def test_send_errors_name_what_went_wrong(runtime: Runtime, tmp_sock_dir: Path) -> None:
    async def body() -> None:
        s = genudp.open(family="local", active=False)
        with pytest.raises(genudp.Error) as missing:
            await runtime.send(s, b"x", str(tmp_sock_dir / "nobody.sock"))
        assert missing.value.reason == "enoent"
        r = genudp.open(path=str(tmp_sock_dir / "r.sock"), active=False)
        with pytest.raises(genudp.Error) as big:
            await runtime.send(s, b"x" * 10_000_000, str(tmp_sock_dir / "r.sock"))
        assert big.value.reason == "emsgsize" and "sndbuf" in str(big.value)
        with pytest.raises(TypeError, match="bytes, bytearray or memoryview"):
            await runtime.send(s, "text", str(tmp_sock_dir / "r.sock"))  # type: ignore[arg-type]
        assert drain(r) == []
        u = genudp.open(ip="127.0.0.1", active=False)
        with pytest.raises(genudp.Error) as udp_big:
            await runtime.send(u, b"x" * 70_000, ("127.0.0.1", 9))
        assert udp_big.value.reason == "emsgsize" and "65507" in str(udp_big.value)

    runtime.run(body)


def test_credentials_come_with_recv(runtime: Runtime, tmp_sock_dir: Path) -> None:
    async def body() -> None:
        r = genudp.open(path=str(tmp_sock_dir / "r.sock"), active=False, credentials=True)
        s = genudp.open(path=str(tmp_sock_dir / "s.sock"), active=False)
        await runtime.send(s, b"who", str(tmp_sock_dir / "r.sock"))
        address, port, anc, data = await runtime.recv(r, 30)
        assert (address, port, data) == (str(tmp_sock_dir / "s.sock"), 0, b"who")
        assert anc == {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}

    runtime.run(body)


def test_controlling_process_carries_pending_messages_in_order(runtime: Runtime) -> None:
    def new_owner(parent: genudp.Pid) -> None:
        got = [genudp.receive(timeout=30) for _ in range(4)]
        parent.send(("new owner got", [m[-1] if m[0] == "udp" else m[0] for m in got]))

    async def body() -> None:
        r = genudp.open(ip="127.0.0.1", active=2)
        s = genudp.open(ip="127.0.0.1", active=False)
        for data in (b"1", b"2", b"3"):
            await runtime.send(s, data, r.sockname())
        first = await runtime.receive(timeout=30)
        assert first[-1] == b"1"
        # b"2" and udp_passive sit in this process's mailbox; b"3" is still in the socket.
        assert await runtime.receive(lambda m: m[0] == "udp_passive", timeout=30) == ("udp_passive", r)
        genudp.self().send(("udp_passive", r))  # put it back: it must move, in order
        pid = genudp.spawn(new_owner, genudp.self())
        r.controlling_process(pid)
        r.setopts(active=1)
        got = await runtime.receive(lambda m: m[0] == "new owner got", timeout=30)
        assert got == ("new owner got", [b"2", "udp_passive", b"3", "udp_passive"])
        assert await runtime.join(pid, 30)

    runtime.run(body)


def test_an_active_stream_arrives_whole_and_in_order(runtime: Runtime, make_pair: Maker, kind: str) -> None:
    """The hub delivers into a thread's or a task's mailbox alike: nothing lost or reordered."""

    async def body() -> None:
        p = make_pair(active=True)
        total = 2000 if kind.startswith("local") else 200  # UDP: stay far below the kernel queue

        def stream(sender: genudp.Socket, dest: Any) -> None:
            assert genudp.receive(timeout=60) == "go"  # it owns the sender by then
            for i in range(total):
                sender.send(b"%d" % i, dest)

        # Another process sends (it waits whenever the receiver is full), while this one takes.
        # It starts on "go": a sender done before the hand-over would make that fail (badarg).
        s = p.sender
        s.controlling_process(pid := genudp.spawn(stream, s, p.dest))
        pid.send("go")
        got = [(await runtime.receive(timeout=60))[-1] for _ in range(total)]
        assert got == [b"%d" % i for i in range(total)]
        assert await runtime.join(pid, 60)

    runtime.run(body)


def test_a_local_flood_into_a_slow_owner_is_held_back_and_nothing_is_lost(runtime: Runtime, tmp_sock_dir: Path) -> None:
    """Mailbox watermarks work for a task's mailbox as for a thread's: the hub pauses at the high
    watermark, the sender waits, and taking the mailbox down to the low one resumes reading."""

    async def body() -> None:
        path = str(tmp_sock_dir / "flood.sock")
        high, low, total = 300, 100, 3000
        r = genudp.open(path=path, active=True, high_msgq_watermark=high, low_msgq_watermark=low)

        def flood() -> None:
            with genudp.open(family="local", active=False) as s:
                for i in range(total):
                    s.send(b"%d" % i, path)

        sender = genudp.spawn(flood)
        # Nothing is taken until the hub has paused the socket: the mailbox holds the backlog.
        deadline = time.monotonic() + 30
        while not r.info()["paused"]:
            assert time.monotonic() < deadline, "the hub never paused the flooded socket"
            await runtime.sleep(0.001)  # deliberate: sampling the socket's state until it pauses
        backlog = genudp.self().info()["message_queue_len"]
        assert high <= backlog <= high + 64, backlog
        got = [(await runtime.receive(timeout=60))[-1] for _ in range(total)]
        assert got == [b"%d" % i for i in range(total)]
        assert await runtime.join(sender, 60)
        assert r.info()["pauses"] >= 1 and not r.info()["paused"]

    runtime.run(body)
