"""Why ``arecv`` writes its common steps out by hand.

    python benchmarks/micro/aio_rtt.py [--rounds R] [--n N]

A child process echoes each datagram (a raw socket); this process's asyncio task pings it with
``asend`` (the two processes pinned to different cores) and takes each reply two ways,
interleaved: ``arecv`` as it is (the read, the wait on
the loop the socket is registered with and the counting inline), and composed from the general
steps (a look with ``recv(timeout=0)``, then ``_aio_io.readable`` until the socket may be
readable). Time per round trip. tests/integration/test_fast_paths.py holds ``arecv`` to
``recv``'s results and counters.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from typing import Any

import _ab

import genudp
from genudp import _aio_io


async def _composed(sock: genudp.Socket) -> Any:
    while True:
        try:
            return sock.recv(timeout=0)
        except genudp.Timeout:
            await _aio_io.readable(sock, None)


def main() -> int:
    args = _ab.arguments(__doc__ or "", 5_000)
    with tempfile.TemporaryDirectory(prefix="genudp-micro-") as tmp:
        path = os.path.join(tmp, "echo.sock")
        with _ab.echo_peer(path):
            loop = asyncio.new_event_loop()
            data = b"p" * 64

            async def make() -> genudp.Socket:
                return genudp.open(path=os.path.join(tmp, "me.sock"), active=False)

            # A task that outlives each round: the socket's owner.
            holder: dict[str, Any] = {}
            go: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
            done: asyncio.Queue[float] = asyncio.Queue()

            async def owner() -> None:
                sock = await make()
                holder["sock"] = sock
                while True:
                    n, inline = await go.get()
                    if n < 0:
                        sock.close()
                        return
                    t0 = time.perf_counter()
                    for _ in range(n):
                        await sock.asend(data, path)
                        if inline:
                            await sock.arecv()
                        else:
                            await _composed(sock)
                    done.put_nowait(time.perf_counter() - t0)

            task = loop.create_task(owner())

            def variant(inline: bool) -> _ab.Variant:
                def run(n: int) -> float:
                    go.put_nowait((n, inline))
                    return loop.run_until_complete(done.get())

                return run

            _ab.run(
                "asyncio round trip, asend + receive",
                {"arecv (inline)": variant(True), "composed (recv(0) + readable)": variant(False)},
                args.rounds,
                args.n,
            )
            go.put_nowait((-1, True))
            loop.run_until_complete(task)
            loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
