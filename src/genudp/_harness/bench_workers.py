"""One side of a benchmark scenario, run as a process of its own:

    python -m genudp._harness.bench_workers ROLE PATH N SIZE [CORE] [--chunks C]

A receiver or server binds PATH, prints ``READY`` and serves; a sender or client then runs.
Each prints one line ``RESULT {json}``: ``count``, ``seconds`` (first to last datagram for a
receiver; the whole run for a sender or client) and ``cpu`` (this process's CPU seconds over
the same span). CORE pins the process to one CPU (round trips; see README.md).

With ``--chunks C`` a worker runs in C chunks, a ``RESULT`` for each: a receiver as the
datagrams come; a sender or round-trip client on command, one chunk per line ``GO K`` on stdin
(after it prints ``READY``), until ``END``. The runner uses this to interleave a baseline and a
candidate, all running, chunk by chunk (README.md, "Method").

Raw roles use a plain blocking Python socket: the baseline. genudp roles use the public API only.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import genudp

from . import as_child

_BUF = 65536


def _cpu() -> float:
    # CLOCK_PROCESS_CPUTIME_ID: all threads, to the nanosecond (os.times() counts 10 ms ticks).
    return time.process_time()


def _report(count: int, seconds: float, cpu: float, **extra: Any) -> None:
    print("RESULT " + json.dumps({"count": count, "seconds": seconds, "cpu": cpu, **extra}), flush=True)


def _ready() -> None:
    print("READY", flush=True)


def _bind_raw(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    return sock


# -- chunks ---------------------------------------------------------------------------------
#
# Given ``--chunks C``, a worker runs in C chunks of N // C (README.md, "Method"): a receiver
# reports each chunk as it completes; a sender or round-trip client prints READY once set up and
# then runs one chunk per ``GO K`` line on stdin, reporting each, until ``END``. Without it, one
# chunk of N, as a plain run. Servers of round trips serve N in all either way.

_chunks = 0  # set by main from --chunks


def _chunk_sizes(n: int) -> list[int]:
    return [n // _chunks] * _chunks if _chunks else [n]


def _turns(n: int) -> Iterator[int]:
    """How many to send or ping in each turn: ``n`` once; or, in chunks, K for each ``GO K``
    on stdin, after READY, until ``END``."""
    if not _chunks:
        yield n
        return
    _ready()
    for line in sys.stdin:
        command = line.split()
        if command[0] == "END":
            return
        yield int(command[1])


def _drive(step: Callable[[int], None], n: int) -> None:
    """Run ``step`` (a sender's or client's loop) for each turn, timed."""
    for k in _turns(n):
        t0, c0 = time.perf_counter(), _cpu()
        step(k)
        _report(k, time.perf_counter() - t0, _cpu() - c0)


async def _adrive(step: Callable[[int], Any], n: int) -> None:
    """``_drive`` for a coroutine ``step``. Between turns the loop is idle: reading stdin blocks it."""
    for k in _turns(n):
        t0, c0 = time.perf_counter(), _cpu()
        await step(k)
        _report(k, time.perf_counter() - t0, _cpu() - c0)


# -- receivers: count N datagrams (per chunk), timed from the first ---------------------------


def raw_recv(path: str, n: int, size: int) -> None:
    sock = _bind_raw(path)
    _ready()
    buf = bytearray(_BUF)
    recvfrom_into = sock.recvfrom_into
    for k in _chunk_sizes(n):
        recvfrom_into(buf)
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(k - 1):
            recvfrom_into(buf)
        _report(k, time.perf_counter() - t0, _cpu() - c0)


def genudp_recv(path: str, n: int, size: int) -> None:
    sock = genudp.open(path=path, active=False)
    _ready()
    recv = sock.recv
    for k in _chunk_sizes(n):
        recv()
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(k - 1):
            recv()
        _report(k, time.perf_counter() - t0, _cpu() - c0)


def genudp_active(path: str, n: int, size: int) -> None:
    genudp.open(path=path, active=True)
    _ready()
    receive = genudp.receive
    for k in _chunk_sizes(n):
        receive()
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(k - 1):
            receive()
        _report(k, time.perf_counter() - t0, _cpu() - c0)


def genudp_arecv(path: str, n: int, size: int, loop: str = "asyncio") -> None:
    async def main() -> None:
        sock = genudp.open(path=path, active=False)
        _ready()
        arecv = sock.arecv
        for k in _chunk_sizes(n):
            await arecv()
            t0, c0 = time.perf_counter(), _cpu()
            for _ in range(k - 1):
                await arecv()
            _report(k, time.perf_counter() - t0, _cpu() - c0)

    _run_async(main, loop)


def genudp_arecv_uvloop(path: str, n: int, size: int) -> None:
    genudp_arecv(path, n, size, "uvloop")


def asyncio_endpoint_recv(path: str, n: int, size: int) -> None:
    """asyncio's own datagram transport (loop.create_datagram_endpoint)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        sizes = _chunk_sizes(n)

        class Protocol(asyncio.DatagramProtocol):
            count, chunk, t0, c0 = 0, 0, 0.0, 0.0

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.count += 1
                k = sizes[self.chunk]
                if self.count == 1:
                    self.t0, self.c0 = time.perf_counter(), _cpu()
                if self.count == k:
                    _report(k, time.perf_counter() - self.t0, _cpu() - self.c0)
                    self.count = 0
                    self.chunk += 1
                    if self.chunk == len(sizes) and not done.done():
                        done.set_result(None)

        sock = _bind_raw(path)
        transport, _ = await loop.create_datagram_endpoint(Protocol, sock=sock)
        _ready()
        await done
        transport.close()

    asyncio.run(main())


def asyncio_sock_recvfrom(path: str, n: int, size: int) -> None:
    """asyncio's low-level socket API (loop.sock_recvfrom, Python 3.11)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = _bind_raw(path)
        sock.setblocking(False)
        _ready()
        for k in _chunk_sizes(n):
            await loop.sock_recvfrom(sock, _BUF)
            t0, c0 = time.perf_counter(), _cpu()
            for _ in range(k - 1):
                await loop.sock_recvfrom(sock, _BUF)
            _report(k, time.perf_counter() - t0, _cpu() - c0)

    asyncio.run(main())


# -- senders ------------------------------------------------------------------------------------


def raw_send(path: str, n: int, size: int) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    data = b"x" * size
    sendto = sock.sendto

    def step(k: int) -> None:
        for _ in range(k):
            sendto(data, path)

    _drive(step, n)


def genudp_send(path: str, n: int, size: int) -> None:
    sock = genudp.open(family="local", active=False)
    data = b"x" * size
    send = sock.send

    def step(k: int) -> None:
        for _ in range(k):
            send(data, path)

    _drive(step, n)


def _asend(path: str, n: int, size: int, loop: str, connected: bool = False) -> None:
    async def main() -> None:
        sock = genudp.open(family="local", active=False)
        data = b"x" * size
        asend = sock.asend
        dest: str | None = path
        if connected:
            sock.connect(path)
            dest = None

        async def step(k: int) -> None:
            for _ in range(k):
                await asend(data, dest)

        await _adrive(step, n)

    _run_async(main, loop)


def genudp_asend(path: str, n: int, size: int) -> None:
    _asend(path, n, size, "asyncio")


def genudp_asend_uvloop(path: str, n: int, size: int) -> None:
    _asend(path, n, size, "uvloop")


def genudp_asend_connected(path: str, n: int, size: int) -> None:
    _asend(path, n, size, "asyncio", connected=True)


def asyncio_endpoint_send(path: str, n: int, size: int, connected: bool = True) -> None:
    """asyncio's own datagram transport as a sender: it buffers what the receiver cannot take
    and writes it out when the loop reports POLLOUT (connected: the receiver's room; not
    connected: always, so it spins while the receiver is full); a step ends once its buffer is
    empty (looked at each loop iteration)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if connected:
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=path, family=socket.AF_UNIX
            )
        else:
            transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, family=socket.AF_UNIX)
        buffered = transport.get_write_buffer_size  # type: ignore[attr-defined]
        data = b"x" * size
        dest = None if connected else path

        async def step(k: int) -> None:
            for _ in range(k):
                transport.sendto(data, dest)
                if buffered() > 1 << 16:  # keep the buffer bounded
                    while buffered():
                        await asyncio.sleep(0)
            while buffered():
                await asyncio.sleep(0)

        await _adrive(step, n)
        transport.close()

    asyncio.run(main())


def asyncio_endpoint_sendto(path: str, n: int, size: int) -> None:
    asyncio_endpoint_send(path, n, size, connected=False)


def raw_echo(path: str, n: int, size: int) -> None:
    sock = _bind_raw(path)
    _ready()
    buf = bytearray(_BUF)
    for _ in range(n):
        got, source = sock.recvfrom_into(buf)
        sock.sendto(buf[:got], source)
    _report(n, 0.0, 0.0)


def genudp_echo(path: str, n: int, size: int) -> None:
    sock = genudp.open(path=path, active=False)
    _ready()
    recv, send = sock.recv, sock.send
    for _ in range(n):
        source, _, data = recv()
        send(data, source)
    _report(n, 0.0, 0.0)


def genudp_echo_active(path: str, n: int, size: int) -> None:
    sock = genudp.open(path=path, active=True)
    _ready()
    receive, send = genudp.receive, sock.send
    for _ in range(n):
        _, _, source, _, data = receive()
        send(data, source)
    _report(n, 0.0, 0.0)


def genudp_echo_active_many(path: str, n: int, size: int, sockets: int) -> None:
    """``genudp_echo_active`` by a process that owns ``sockets`` active sockets in all: the
    others are idle (unbound, nobody sends to them), so what grows is only the owner's
    bookkeeping per receive."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < sockets + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, sockets + 64), hard))
    idle = [genudp.open(family="local", active=True) for _ in range(sockets - 1)]
    try:
        genudp_echo_active(path, n, size)
    finally:
        for sock in idle:
            sock.close()


def _run_async(main: Callable[[], Any], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


def asyncio_echo_sock(path: str, n: int, size: int) -> None:
    """asyncio's low-level socket API: loop.sock_recvfrom + loop.sock_sendto."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = _bind_raw(path)
        sock.setblocking(False)
        _ready()
        for _ in range(n):
            data, source = await loop.sock_recvfrom(sock, _BUF)
            await loop.sock_sendto(sock, data, source)
        _report(n, 0.0, 0.0)

    asyncio.run(main())


def _echo_aio(path: str, n: int, loop: str) -> None:
    async def main() -> None:
        sock = genudp.open(path=path, active=False)
        _ready()
        for _ in range(n):
            source, _, data = await sock.arecv()
            await sock.asend(data, source)
        _report(n, 0.0, 0.0)

    _run_async(main, loop)


def genudp_echo_aio(path: str, n: int, size: int) -> None:
    _echo_aio(path, n, "asyncio")


def genudp_echo_uvloop(path: str, n: int, size: int) -> None:
    _echo_aio(path, n, "uvloop")


def _client_path(path: str) -> str:
    return path + ".client"


def raw_ping(path: str, n: int, size: int) -> None:
    sock = _bind_raw(_client_path(path))
    data, buf = b"p" * size, bytearray(_BUF)
    sendto, recv_into = sock.sendto, sock.recv_into

    def step(k: int) -> None:
        for _ in range(k):
            sendto(data, path)
            recv_into(buf)

    _drive(step, n)


def _genudp_ping(path: str, n: int, size: int, active: bool) -> None:
    sock = genudp.open(path=_client_path(path), active=active)
    data = b"p" * size
    send = sock.send
    reply = genudp.receive if active else sock.recv

    def step(k: int) -> None:
        for _ in range(k):
            send(data, path)
            reply()

    _drive(step, n)


def genudp_ping(path: str, n: int, size: int) -> None:
    _genudp_ping(path, n, size, active=False)


def genudp_ping_active(path: str, n: int, size: int) -> None:
    _genudp_ping(path, n, size, active=True)


def asyncio_ping_sock(path: str, n: int, size: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = _bind_raw(_client_path(path))
        sock.setblocking(False)
        data = b"p" * size

        async def step(k: int) -> None:
            for _ in range(k):
                await loop.sock_sendto(sock, data, path)
                await loop.sock_recvfrom(sock, _BUF)

        await _adrive(step, n)

    asyncio.run(main())


def _ping_aio(path: str, n: int, size: int, loop: str) -> None:
    async def main() -> None:
        sock = genudp.open(path=_client_path(path), active=False)
        data = b"p" * size

        async def step(k: int) -> None:
            for _ in range(k):
                await sock.asend(data, path)
                await sock.arecv()

        await _adrive(step, n)

    _run_async(main, loop)


def genudp_ping_aio(path: str, n: int, size: int) -> None:
    _ping_aio(path, n, size, "asyncio")


def genudp_ping_uvloop(path: str, n: int, size: int) -> None:
    _ping_aio(path, n, size, "uvloop")


# -- a sender kept waiting on a full destination ------------------------------------------------


def _wait_until_asleep(tid: int) -> None:
    """Until thread ``tid`` sleeps in the kernel (state S), as /proc reports."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/self/task/{tid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "S":
                return
        time.sleep(0.001)  # sampling /proc until the sender sleeps
    raise RuntimeError("the sender never went to sleep")


def blocked_sender(path: str, n: int, size: int, use_asyncio: bool = False) -> None:
    """Fill a receiver that nobody reads, start a send to it in a thread, and once that thread
    sleeps, measure this whole process's CPU for ``n`` ms: the cost of a waiting sender, as a
    share of one core. Then make room, and check the send completed."""
    receiver = genudp.open(path=path, active=False)
    sender = genudp.open(family="local", active=False)
    while True:
        try:
            sender.send(b"f", path, timeout=0)
        except genudp.Error:
            break
    done = threading.Event()
    tids: list[int] = []

    def send() -> None:
        tids.append(threading.get_native_id())
        if use_asyncio:
            asyncio.run(sender.asend(b"x" * size, path))
        else:
            sender.send(b"x" * size, path)
        done.set()

    threading.Thread(target=send, daemon=True).start()
    while not tids:
        time.sleep(0.001)
    _wait_until_asleep(tids[0])
    t0, c0 = time.perf_counter(), _cpu()
    time.sleep(n / 1000)  # the scenario: nobody reads for n ms
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    receiver.recv(0)
    if not done.wait(30):
        raise RuntimeError("the waiting send did not complete once there was room")
    _report(1, seconds, cpu)


def blocked_sender_aio(path: str, n: int, size: int) -> None:
    blocked_sender(path, n, size, use_asyncio=True)


ROLES: dict[str, Callable[..., None]] = {
    f.__name__: f
    for f in (
        raw_recv,
        genudp_recv,
        genudp_active,
        genudp_arecv,
        genudp_arecv_uvloop,
        asyncio_endpoint_recv,
        asyncio_sock_recvfrom,
        raw_send,
        genudp_send,
        genudp_asend,
        genudp_asend_uvloop,
        genudp_asend_connected,
        asyncio_endpoint_send,
        asyncio_endpoint_sendto,
        raw_echo,
        genudp_echo,
        genudp_echo_active,
        genudp_echo_aio,
        raw_ping,
        genudp_ping,
        genudp_ping_active,
        genudp_ping_aio,
        asyncio_echo_sock,
        asyncio_ping_sock,
        genudp_echo_uvloop,
        genudp_ping_uvloop,
        blocked_sender,
        blocked_sender_aio,
    )
}
for _count in (100, 1_000, 10_000):
    ROLES[f"genudp_echo_active_{_count}"] = functools.partial(genudp_echo_active_many, sockets=_count)


def main(argv: list[str]) -> int:
    global _chunks
    as_child()
    if "--chunks" in argv:
        at = argv.index("--chunks")
        _chunks = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    role, path, n, size = argv[0], argv[1], int(argv[2]), int(argv[3])
    if len(argv) > 4:
        os.sched_setaffinity(0, {int(argv[4])})
    ROLES[role](path, n, size)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
