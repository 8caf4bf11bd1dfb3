"""The A/B driver every harness here uses: variants run in turns, round after round, in one
process, the order reversed every round, so each ratio compares figures taken moments apart
(these machines swing 2-5x between runs: DESIGN.md §5). Prints the median ratio of each variant
to the first, with the spread over the rounds."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
from collections.abc import Callable, Iterator

#: A variant: given a count, run that many operations and return the seconds they took.
Variant = Callable[[int], float]


def arguments(description: str, n: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=21, help="rounds of every variant (default 21)")
    parser.add_argument("--n", type=int, default=n, help=f"operations per variant and round (default {n})")
    return parser.parse_args()


def run(
    title: str, variants: dict[str, Variant], rounds: int, n: int, lower_is_better: bool = True
) -> dict[str, float]:
    """Interleave the variants; print and return each one's median ratio to the first (time per
    operation over the first's: above 1 is slower)."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(2):  # warm-up, not counted: imports, buffers, the specializing interpreter
        for name in names:
            variants[name](max(1, n // 10))
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(variants[name](n))
    first = names[0]
    print(f"{title}: {rounds} rounds of {n}, time per operation as a ratio to {first!r} (median, spread)")
    out: dict[str, float] = {}
    for name in names:
        ratios = [t / b for t, b in zip(times[name], times[first], strict=True)]
        out[name] = statistics.median(ratios)
        per_op = statistics.median(times[name]) / n * 1e6
        print(f"  {name:<44} {per_op:8.2f} us  {out[name]:5.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
    return out


def pin(core: int) -> None:
    """Round trips are bimodal when both sides share a core (DESIGN.md §5): pin them apart."""
    if len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {core})


@contextlib.contextmanager
def child(body: Callable[[], None]) -> Iterator[int]:
    """Run ``body`` in a forked child while the block runs; the child is killed at its end (a
    body that fails, or whose peer is gone past its 5 s socket timeout, just exits)."""
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(0)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def bound(path: str) -> socket.socket:
    """A raw Unix-domain datagram socket bound at ``path``, with a 5 s timeout (a child's)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock


@contextlib.contextmanager
def echo_peer(path: str) -> Iterator[None]:
    """A raw echo server at ``path`` in a forked child pinned to core 1, with this process
    pinned to core 0, for as long as the block runs."""
    server = bound(path)
    with child(lambda: echo(server)):
        server.close()
        pin(0)
        yield


def echo(server: socket.socket) -> None:
    """A child's body: send every datagram back to its sender."""
    pin(1)
    while True:
        data, source = server.recvfrom(65536)
        server.sendto(data, source)
