"""``genudp bench``: every scenario beside its raw baseline, in the same run, as ratios.

These machines are noisy (absolute numbers swing 2-5x between runs), so nothing here compares
across runs. In each repeat every pair of a scenario (the baseline, the candidate, the others)
is started at once, and the runner has the pairs take turns in chunks: a chunk's ratio compares
the candidate with the baseline measured a fraction of a second before or after it, and a
repeat's ratio is the median of its chunks'. The report gives the median ratio over the repeats
and its spread (lowest-highest), with the median absolute figures for orientation only.

See benchmarks/README.md for the scenarios, the targets, and how to read the output.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import child_env

SIZES = (64, 1024)


@dataclass(frozen=True)
class Pair:
    """The two processes of one measurement: a server (receiver, echo; None: none) and a
    client (sender, pinger)."""

    label: str
    server: str | None
    client: str


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    kind: str  # "throughput" (higher is better), "roundtrip" (lower), "cpu" (share of a core)
    baseline: Pair | None
    candidate: Pair
    #: ("min", r): candidate/baseline must be >= r; ("max", r): <= r; for cpu, the share <= r.
    target: tuple[str, float]
    others: tuple[Pair, ...] = ()
    sizes: tuple[int, ...] = SIZES


RAW_THROUGHPUT = Pair("raw blocking socket", "raw_recv", "raw_send")
RAW_ROUNDTRIP = Pair("raw blocking socket", "raw_echo", "raw_ping")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "recv",
        "passive recv, one way",
        "throughput",
        RAW_THROUGHPUT,
        Pair("genudp recv", "genudp_recv", "raw_send"),
        ("min", 0.9),
    ),
    Scenario(
        "active",
        "active delivery into a mailbox, one way",
        "throughput",
        RAW_THROUGHPUT,
        Pair("genudp active=True + receive", "genudp_active", "raw_send"),
        ("min", 0.7),
    ),
    Scenario(
        "send",
        "send, one way",
        "throughput",
        RAW_THROUGHPUT,
        Pair("genudp send", "raw_recv", "genudp_send"),
        # Settled by the team at 0.8x: every guarantee kept, no compiled code (benchmarks/README.md).
        ("min", 0.8),
    ),
    Scenario(
        "rtt-passive",
        "round trip, passive (send + recv)",
        "roundtrip",
        RAW_ROUNDTRIP,
        Pair("genudp send + recv", "genudp_echo", "genudp_ping"),
        ("max", 1.3),
    ),
    Scenario(
        "rtt-active",
        "round trip, active (send + receive)",
        "roundtrip",
        RAW_ROUNDTRIP,
        Pair("genudp send + receive", "genudp_echo_active", "genudp_ping_active"),
        ("max", 2.0),
    ),
    Scenario(
        "owner-sockets",
        "round trip, active, by an owner of 1 / 100 / 1,000 / 10,000 sockets",
        "roundtrip",
        Pair("genudp send + receive, 1 socket", "genudp_echo_active", "genudp_ping_active"),
        Pair("... 10,000 sockets", "genudp_echo_active_10000", "genudp_ping_active"),
        # The cost of a receive must not grow with the sockets its process owns.
        ("max", 1.25),
        others=(
            Pair("... 100 sockets", "genudp_echo_active_100", "genudp_ping_active"),
            Pair("... 1,000 sockets", "genudp_echo_active_1000", "genudp_ping_active"),
        ),
        sizes=(64,),
    ),
    Scenario(
        "aio-recv",
        "asyncio: arecv, one way",
        "throughput",
        RAW_THROUGHPUT,
        Pair("genudp arecv", "genudp_arecv", "raw_send"),
        ("min", 0.6),
        others=(
            Pair("asyncio datagram endpoint", "asyncio_endpoint_recv", "raw_send"),
            Pair("asyncio loop.sock_recvfrom", "asyncio_sock_recvfrom", "raw_send"),
        ),
    ),
    Scenario(
        "aio-send",
        "asyncio: asend, one way",
        "throughput",
        RAW_THROUGHPUT,
        Pair("genudp asend", "raw_recv", "genudp_asend"),
        ("min", 0.6),
        others=(
            Pair("genudp asend -> arecv", "genudp_arecv", "genudp_asend"),
            Pair("genudp asend, uvloop", "raw_recv", "genudp_asend_uvloop"),
            Pair("genudp asend -> arecv, uvloop", "genudp_arecv_uvloop", "genudp_asend_uvloop"),
            Pair("genudp asend, connected", "raw_recv", "genudp_asend_connected"),
            Pair("asyncio endpoint, connected", "raw_recv", "asyncio_endpoint_send"),
            Pair("asyncio endpoint, sendto", "raw_recv", "asyncio_endpoint_sendto"),
        ),
    ),
    Scenario(
        "aio-rtt",
        "asyncio: round trip (asend + arecv)",
        "roundtrip",
        RAW_ROUNDTRIP,
        Pair("genudp asend + arecv", "genudp_echo_aio", "genudp_ping_aio"),
        ("max", 2.5),
        others=(
            Pair("genudp asend + arecv, uvloop", "genudp_echo_uvloop", "genudp_ping_uvloop"),
            Pair("asyncio sock_recvfrom/sock_sendto", "asyncio_echo_sock", "asyncio_ping_sock"),
        ),
    ),
    Scenario(
        "blocked-cpu",
        "CPU of a sender waiting on a full destination",
        "cpu",
        None,
        Pair("genudp send (thread)", None, "blocked_sender"),
        ("max", 0.01),
        others=(Pair("genudp asend (asyncio)", None, "blocked_sender_aio"),),
        sizes=(64,),
    ),
)


@dataclass
class Settings:
    throughput_n: int = 100_000
    roundtrip_n: int = 20_000  # per pair and repeat, in ``chunks`` turns
    blocked_ms: int = 1000
    repeats: int = 5
    chunks: int = 10
    only: tuple[str, ...] = ()

    @classmethod
    def quick(cls) -> Settings:
        return cls(throughput_n=5_000, roundtrip_n=2_000, blocked_ms=300, repeats=3, chunks=4)


@dataclass
class Measurement:
    value: float  # datagrams/s, µs per round trip, or share of a core
    # Throughput only: each side's CPU seconds per datagram.
    receiver_cpu: float | None = None
    sender_cpu: float | None = None


@dataclass
class Row:
    scenario: Scenario
    size: int
    label: str
    is_candidate: bool
    values: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    # Throughput only: each side's CPU seconds per datagram, per repeat.
    receiver_cpu: list[float] = field(default_factory=list)
    sender_cpu: list[float] = field(default_factory=list)


def _worker(
    role: str, path: str, n: int, size: int, core: int | None, extra: list[str] | None = None
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "genudp._harness.bench_workers", role, path, str(n), str(size)]
    if core is not None:
        argv.append(str(core))
    argv += extra or []
    return subprocess.Popen(
        argv,
        env=child_env(),
        process_group=0,  # the terminal's Ctrl-C is the parent's to answer (as_child)
        stdin=subprocess.PIPE if extra else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expect(proc: subprocess.Popen[str], prefix: str, role: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(prefix):
        _, err = proc.communicate(timeout=30)
        raise RuntimeError(f"benchmark worker {role} failed: {line!r} {err.strip()}")
    return line[len(prefix) :].strip()


def _result_line(proc: subprocess.Popen[str], role: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(_expect(proc, "RESULT ", role))
    return value


def _result(proc: subprocess.Popen[str], role: str, timeout: float) -> dict[str, Any]:
    value = _result_line(proc, role)
    proc.wait(timeout)
    return value


def measure_cpu(pair: Pair, size: int, settings: Settings) -> Measurement:
    """The CPU scenario: one process, once (throughput and round trips: ``measure_chunked``)."""
    with tempfile.TemporaryDirectory(prefix="genudp-bench-") as tmp:
        client = _worker(pair.client, str(Path(tmp) / "s.sock"), settings.blocked_ms, size, None)
        try:
            out = _result(client, pair.client, 300)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
            for stream in (client.stdout, client.stderr):
                if stream is not None:
                    stream.close()
    return Measurement(out["cpu"] / out["seconds"])


def measure_chunked(
    scenario: Scenario,
    pairs: list[Pair],
    size: int,
    settings: Settings,
    tick: Callable[[int], None] | None = None,
) -> list[list[Measurement]]:
    """One repeat of a throughput or round-trip scenario: every pair's two processes run at
    once, and the pairs take turns, ``settings.chunks`` times, each sending or pinging its
    share while the others wait, asleep (a client reads its next command; a receiver or
    server waits for the next datagram). Returns each pair's measurements, chunk by chunk.

    The order of the turns alternates from chunk to chunk, so that no pair always goes first.
    ``tick(chunk)`` is called after each round of turns (progress).
    """
    roundtrip = scenario.kind == "roundtrip"
    # Round trips are bimodal when both processes share a core: pin them apart (DESIGN.md §5).
    pin = roundtrip and len(os.sched_getaffinity(0)) >= 2
    n = settings.roundtrip_n if roundtrip else settings.throughput_n
    per_chunk = max(2, n // settings.chunks)
    total = per_chunk * settings.chunks
    chunks = ["--chunks", str(settings.chunks)]
    procs: list[subprocess.Popen[str]] = []
    got: list[list[Measurement]] = [[] for _ in pairs]
    with tempfile.TemporaryDirectory(prefix="genudp-bench-") as tmp:
        try:
            started = []
            for i, pair in enumerate(pairs):
                assert pair.server is not None
                path = str(Path(tmp) / f"s{i}.sock")
                server = _worker(pair.server, path, total, size, 1 if pin else None, chunks)
                procs.append(server)
                _expect(server, "READY", pair.server)
                client = _worker(pair.client, path, total, size, 0 if pin else None, chunks)
                procs.append(client)
                _expect(client, "READY", pair.client)
                started.append((server, client))
            for chunk in range(settings.chunks):
                order = list(range(len(pairs)))
                if chunk % 2:
                    order.reverse()
                for i in order:
                    server, client = started[i]
                    assert client.stdin is not None
                    client.stdin.write(f"GO {per_chunk}\n")
                    client.stdin.flush()
                    out = _result_line(client, pairs[i].client)
                    if roundtrip:
                        got[i].append(Measurement(out["seconds"] / out["count"] * 1e6))
                    else:
                        back = _result_line(server, pairs[i].server or "")
                        rate = (back["count"] - 1) / back["seconds"]
                        sender = out["cpu"] / out["count"]
                        got[i].append(Measurement(rate, back["cpu"] / (back["count"] - 1), sender))
                if tick is not None:
                    tick(chunk + 1)
            for (server, client), pair in zip(started, pairs, strict=True):
                assert client.stdin is not None
                client.stdin.write("END\n")
                client.stdin.flush()
                client.wait(60)
                if roundtrip:
                    back = _result(server, pair.server or "", 60)
                    if back["count"] != total:
                        raise RuntimeError(f"{pair.server} served {back['count']} round trips, not {total}")
                else:
                    server.wait(60)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                for stream in (proc.stdin, proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()
    return got


def _runnable(pair: Pair) -> bool:
    """uvloop is a development dependency, not genudp's: without it its pairs are left out."""
    return "uvloop" not in pair.client or importlib.util.find_spec("uvloop") is not None


def run(settings: Settings, progress: TextIO | None = None) -> list[Row]:
    scenarios = [s for s in SCENARIOS if not settings.only or s.key in settings.only]
    plan = [(s, size) for s in scenarios for size in s.sizes]
    rows: list[Row] = []
    started = time.monotonic()
    for step, (scenario, size) in enumerate(plan, 1):
        pairs = [p for p in (scenario.baseline, scenario.candidate, *scenario.others) if p is not None and _runnable(p)]
        mine = [Row(scenario, size, p.label, p is scenario.candidate) for p in pairs]
        rows.extend(mine)
        for repeat in range(1, settings.repeats + 1):

            def tick(
                chunk: int, repeat: int = repeat, where: str = f"{step}/{len(plan)} {scenario.key} {size} B"
            ) -> None:
                if progress is not None:
                    elapsed = time.monotonic() - started
                    part = f", chunk {chunk}/{settings.chunks}" if chunk else ""  # 0: not in chunks
                    progress.write(f"\r  {where}: repeat {repeat}/{settings.repeats}{part}; {elapsed:.0f} s{'':<20}")
                    progress.flush()

            if scenario.kind == "cpu":
                tick(0)
                measured = [[measure_cpu(pair, size, settings)] for pair in pairs]
            else:
                measured = measure_chunked(scenario, pairs, size, settings, tick)
            # A repeat's figure is the median of its chunks; its ratio, the median of the
            # chunks' ratios, each against the baseline's chunk taken just before or after it.
            for row, series in zip(mine, measured, strict=True):
                row.values.append(statistics.median(m.value for m in series))
                receiver = [m.receiver_cpu for m in series if m.receiver_cpu is not None]
                sender = [m.sender_cpu for m in series if m.sender_cpu is not None]
                if receiver and sender:
                    row.receiver_cpu.append(statistics.median(receiver))
                    row.sender_cpu.append(statistics.median(sender))
                if scenario.baseline is not None:
                    base = measured[0]
                    row.ratios.append(statistics.median([m.value / b.value for m, b in zip(series, base, strict=True)]))
    if progress is not None:
        progress.write("\r" + " " * 100 + "\r")
        progress.flush()
    return rows


def _verdict(row: Row) -> str:
    if not row.is_candidate:
        return ""
    kind, bound = row.scenario.target
    figure = statistics.median(row.ratios) if row.scenario.kind != "cpu" else statistics.median(row.values)
    ok = figure >= bound if kind == "min" else figure <= bound
    sign = ">=" if kind == "min" else "<="
    shown = f"{bound:.0%}" if row.scenario.kind == "cpu" else f"{bound:g}x"
    return f"{'ok' if ok else 'MISSED'} (target {sign} {shown})"


def report(rows: list[Row], settings: Settings, out: TextIO) -> None:
    cpus = len(os.sched_getaffinity(0))
    try:
        qlen = Path("/proc/sys/net/unix/max_dgram_qlen").read_text().strip()
    except OSError:
        qlen = "?"
    out.write(
        f"genudp bench: {settings.repeats} repeat{'s' if settings.repeats != 1 else ''}, medians (spread "
        f"lowest-highest); {cpus} CPUs, "
        f"net.unix.max_dgram_qlen {qlen}; Unix-domain path, separate processes\n"
    )
    if importlib.util.find_spec("uvloop") is None:
        out.write("(uvloop is not installed: its comparisons are left out; pip install uvloop)\n")
    current = None
    for row in rows:
        key = (row.scenario.key, row.size)
        if key != current:
            current = key
            unit = {"throughput": "datagrams/s", "roundtrip": "us per round trip", "cpu": "share of a core"}
            pinned = ", pinned to 2 cores" if row.scenario.kind == "roundtrip" and cpus >= 2 else ""
            out.write(f"\n{row.scenario.title}, {row.size} B ({unit[row.scenario.kind]}{pinned})\n")
        value = statistics.median(row.values)
        shown = (
            f"{value:>9.1%}" if row.scenario.kind == "cpu" else f"{value:>9,.0f}" if value > 100 else f"{value:>9.1f}"
        )
        ratio = ""
        if row.ratios:
            lo, hi = min(row.ratios), max(row.ratios)
            ratio = f"{statistics.median(row.ratios):5.2f}x ({lo:.2f}-{hi:.2f})"
        cpu = ""
        if row.sender_cpu:
            sender = statistics.median(row.sender_cpu) * 1e6
            receiver = statistics.median(row.receiver_cpu) * 1e6
            cpu = f"  CPU/dgram: sender {sender:.1f} us, receiver {receiver:.1f} us"
        out.write(f"  {row.label:<34}{shown}  {ratio:<20}{_verdict(row)}{cpu}\n")


def as_json(rows: list[Row], settings: Settings) -> dict[str, Any]:
    return {
        "settings": {
            "throughput_n": settings.throughput_n,
            "roundtrip_n": settings.roundtrip_n,
            "blocked_ms": settings.blocked_ms,
            "repeats": settings.repeats,
            "chunks": settings.chunks,
            "cpus": len(os.sched_getaffinity(0)),
        },
        "results": [
            {
                "scenario": row.scenario.key,
                "kind": row.scenario.kind,
                "size": row.size,
                "label": row.label,
                "candidate": row.is_candidate,
                "values": row.values,
                "median": statistics.median(row.values),
                "ratios": row.ratios,
                "median_ratio": statistics.median(row.ratios) if row.ratios else None,
                "target": list(row.scenario.target) if row.is_candidate else None,
                "verdict": _verdict(row).split(" ")[0] or None,
                "receiver_cpu_seconds_per_datagram": row.receiver_cpu,
                "sender_cpu_seconds_per_datagram": row.sender_cpu,
            }
            for row in rows
        ],
    }
