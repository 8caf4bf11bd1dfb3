"""Why ``Socket.send`` (and ``asend``) write their common case out by hand.

    python benchmarks/micro/send_paths.py [--rounds R] [--n N]

One process sends 64-byte datagrams to a raw receiver in a child process (which drains them),
and counts the sending thread's CPU time per datagram (the receiver, not the sender, sets the
pace, so wall time would hide the sender's cost), three ways, interleaved: a raw blocking
``sendto`` (the baseline), ``send`` as it is (the syscall inline, counting by one deque append),
and the general path ``send`` would take without its inline copy (``_sendwait.send_slow``,
behind the same fd guard). The inline copy is kept while it is measurably cheaper;
tests/integration/test_fast_paths.py holds the two to the same results and counters.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time

import _ab

import genudp
from genudp import _sendwait


def _drain(receiver: socket.socket) -> None:
    """The child: read until the parent is gone."""
    buf = bytearray(65536)
    while True:
        receiver.recv_into(buf)


def main() -> int:
    args = _ab.arguments(__doc__ or "", 20_000)
    with tempfile.TemporaryDirectory(prefix="genudp-micro-") as tmp:
        path = os.path.join(tmp, "r.sock")
        receiver = _ab.bound(path)
        with _ab.child(lambda: _drain(receiver)):
            receiver.close()
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock = genudp.open(family="local", active=False)
            data = b"x" * 64

            def raw_loop(n: int) -> float:
                sendto = raw.sendto
                t0 = time.thread_time()
                for _ in range(n):
                    sendto(data, path)
                return time.thread_time() - t0

            def inline(n: int) -> float:
                send = sock.send
                t0 = time.thread_time()
                for _ in range(n):
                    send(data, path)
                return time.thread_time() - t0

            def general(n: int) -> float:
                slow, users, unset = _sendwait.send_slow, sock._users, _sendwait.UNSET
                t0 = time.thread_time()
                for _ in range(n):
                    try:
                        users.append(None)
                        slow(sock, data, path, unset, False)
                    finally:
                        users.pop()
                return time.thread_time() - t0

            _ab.run(
                "send, 64 B to a raw receiver (CPU time of the sender)",
                {"raw sendto": raw_loop, "send (inline)": inline, "send without it (send_slow)": general},
                args.rounds,
                args.n,
            )
            sock.close()
            raw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
