"""Why ``Socket.recv`` without a timeout is written out by hand.

    python benchmarks/micro/recv_paths.py [--rounds R] [--n N]

A child process keeps a Unix-domain receiver's queue full; this process takes N datagrams and
counts its thread's CPU time per datagram, three ways, interleaved: a raw blocking
``recvfrom_into`` (the baseline), ``recv()`` as it is (one blocking syscall inline), and the
general path (``_recvwait.recv_slow``: buffers, credentials and loop checks, the result built by
``_result``). tests/integration/test_fast_paths.py holds them to the same results and counters.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time

import _ab

import genudp


def _flood(path: str) -> None:
    """The child: send until the receiver is gone."""
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.settimeout(5)
    data = b"y" * 64
    while True:
        sender.sendto(data, path)


def main() -> int:
    args = _ab.arguments(__doc__ or "", 20_000)
    with tempfile.TemporaryDirectory(prefix="genudp-micro-") as tmp:
        path = os.path.join(tmp, "r.sock")
        sock = genudp.open(path=path, active=False)
        with _ab.child(lambda: _flood(path)):
            fd = os.dup(sock.fileno())  # the raw baseline reads the same queue
            raw = socket.socket(fileno=fd)
            buf = bytearray(65536)

            def raw_loop(n: int) -> float:
                recvfrom_into = raw.recvfrom_into
                t0 = time.thread_time()
                for _ in range(n):
                    recvfrom_into(buf)
                return time.thread_time() - t0

            def inline(n: int) -> float:
                recv = sock.recv
                t0 = time.thread_time()
                for _ in range(n):
                    recv()
                return time.thread_time() - t0

            def general(n: int) -> float:
                slow = sock._recv
                t0 = time.thread_time()
                for _ in range(n):
                    slow(None)
                return time.thread_time() - t0

            _ab.run(
                "recv, 64 B from a full queue (CPU time of the receiver)",
                {"raw recvfrom_into": raw_loop, "recv() (inline)": inline, "recv without it (recv_slow)": general},
                args.rounds,
                args.n,
            )
            raw.close()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
