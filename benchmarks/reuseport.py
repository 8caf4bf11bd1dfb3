"""What ``reuseport`` and several OS processes buy a CPU-bound UDP service (docs/howto/reuseport.md).

    python benchmarks/reuseport.py [--seconds S] [--runs R] [--work-us U] [--rate D] [--max-workers W]

Workers (1, then 2, ... up to W, interleaved run by run) bind one port with ``reuseport=True``
and spend about U microseconds of Python on each datagram. A load generator in a process of its
own sends from 64 source sockets at a paced rate (--rate, more than the workers can take, so that
the generator itself leaves them the cores) for S seconds (UDP: what the workers cannot take, the
kernel drops). The figure is the datagrams the workers handled per second, and its
ratio to one worker's in the same run. These machines are noisy: compare ratios, not rates.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

WORKER = """
import os, signal, sys, time
import genudp
work_us = float(sys.argv[2])
n = 1000
t = time.perf_counter()
for _ in range(n): pass
per_iter = (time.perf_counter() - t) / n
spin = range(max(1, int(work_us * 1e-6 / per_iter)))
handled = 0
def report(signum, frame):
    print(handled, flush=True)
    os._exit(0)
signal.signal(signal.SIGTERM, report)
sock = genudp.open(int(sys.argv[1]), ip="127.0.0.1", reuseport=True, recbuf=1 << 20)
print(sock.sockname()[1], flush=True)
while True:
    genudp.receive()
    for _ in spin: pass
    handled += 1
"""

GENERATOR = """
import socket, sys, time
port, seconds, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]
for s in socks: s.setblocking(False)
dest = ("127.0.0.1", port)
start = time.monotonic()
end = start + seconds
sent = 0
while (now := time.monotonic()) < end:
    due = int((now - start) * rate)  # paced: the generator leaves the workers their cores
    while sent < due:
        try: socks[sent % 64].sendto(b"x" * 64, dest)
        except BlockingIOError: pass
        sent += 1
    time.sleep(0.001)
"""


def start_worker(port: int, work_us: float) -> tuple[subprocess.Popen[str], int]:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(port), str(work_us)], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    return worker, int(worker.stdout.readline())


def one_run(workers: int, seconds: float, work_us: float, rate: float) -> float:
    first, port = start_worker(0, work_us)
    procs = [first] + [start_worker(port, work_us)[0] for _ in range(workers - 1)]
    generator = subprocess.Popen([sys.executable, "-c", GENERATOR, str(port), str(seconds), str(rate)])
    started = time.monotonic()
    generator.wait(seconds + 30)
    elapsed = time.monotonic() - started
    handled = 0
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        handled += int(out.split()[-1])
    return handled / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work-us", type=float, default=50.0)
    parser.add_argument("--rate", type=float, default=50_000, help="datagrams/s the generator offers (paced)")
    parser.add_argument("--max-workers", type=int, default=min(4, os.cpu_count() or 2))
    args = parser.parse_args()
    counts = range(1, args.max_workers + 1)
    rates: dict[int, list[float]] = {n: [] for n in counts}
    ratios: dict[int, list[float]] = {n: [] for n in counts}
    for _run in range(args.runs):
        for n in counts:
            rates[n].append(one_run(n, args.seconds, args.work_us, args.rate))
        for n in counts:
            ratios[n].append(rates[n][-1] / rates[1][-1])
    print(
        f"{os.cpu_count()} cores, {args.work_us:g} us of Python per datagram, {args.rate:,.0f} datagrams/s offered, "
        f"{args.runs} runs of {args.seconds:g} s"
    )
    for n in counts:
        r = ratios[n]
        print(
            f"  {n} worker process(es): {statistics.median(rates[n]):>9,.0f} datagrams/s  "
            f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})"
        )


if __name__ == "__main__":
    main()
