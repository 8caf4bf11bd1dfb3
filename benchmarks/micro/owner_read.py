"""Why the owner's read of the datagram that woke it (``_owner_reads.owner_readable``) writes the
common case out by hand.

    python benchmarks/micro/owner_read.py [--rounds R] [--n N]

A child process echoes each datagram back (a raw socket); this process pings it through an
active genudp socket and takes each reply with ``genudp.receive()``, the owner reading for
itself (the two processes pinned to different cores). Two ways, interleaved: as it is, and with
every read going through the general delivery (``_deliver_locked``: budgets, transitions,
batches). Time per round trip. tests/integration/test_fast_paths.py holds the two to the same
messages and counters.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

import _ab

import genudp
from genudp import _owner_reads, _socket


def _general(sock: _socket.Socket, limit: int, hand: bool = False) -> Any:
    with sock._lock:
        _owner_reads._deliver_locked(sock, limit)
    return None


def main() -> int:
    args = _ab.arguments(__doc__ or "", 5_000)
    with tempfile.TemporaryDirectory(prefix="genudp-micro-") as tmp:
        path = os.path.join(tmp, "echo.sock")
        with _ab.echo_peer(path):
            sock = genudp.open(path=os.path.join(tmp, "me.sock"), active=True)
            data = b"p" * 64
            inline_read = _socket.Socket._owner_readable

            def ping(n: int) -> float:
                send, receive = sock.send, genudp.receive
                t0 = time.perf_counter()
                for _ in range(n):
                    send(data, path)
                    receive()
                return time.perf_counter() - t0

            def general(n: int) -> float:
                setattr(_socket.Socket, "_owner_readable", _general)  # noqa: B010
                try:
                    return ping(n)
                finally:
                    setattr(_socket.Socket, "_owner_readable", inline_read)  # noqa: B010

            _ab.run(
                "round trip, active, the owner reading",
                {"owner_readable (inline)": ping, "through _deliver_locked": general},
                args.rounds,
                args.n,
            )
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
