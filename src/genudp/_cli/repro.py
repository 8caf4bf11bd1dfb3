"""``genudp repro``: the full-receiver scenario on this machine, as a table and a verdict.

It runs the scenario of ``genudp._harness.scenario`` in each send mode (wait, eagain, timeout, and wait with
the receiver killed twice) and prints what was attempted, sent, raised, delivered, lost,
duplicated, what leaked into mailboxes and the CPU senders used. The exit status is 0 only when
genudp's promise held in every mode. ``--compare`` runs the same receiver through asyncio's
datagram endpoint and Erlang/OTP gen_udp (both backends) where installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from .._harness.scenario import Config, Result, max_dgram_qlen, run

__all__ = ("add_parser", "run_cli", "MODES")

#: (column title, config) for each mode, in table order.
MODES: tuple[tuple[str, Config], ...] = (
    ("wait", Config(send_timeout=None)),
    ("eagain", Config(send_timeout=0)),
    ("timeout 5ms", Config(send_timeout=0.005)),
    ("wait+2 kills", Config(send_timeout=None, restarts=2)),
)

_EXAMPLES = """\
examples:
  genudp repro                 the four modes, as a table (about 20 s)
  genudp repro --json          the same, as JSON
  genudp repro --compare       also run asyncio and Erlang/OTP gen_udp
  genudp repro --datagrams 2000 --signal-hz 2000
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "repro",
        help="run the full-receiver scenario and print the books",
        description=(
            "Senders (3 threads and 1 process) push sequence-numbered datagrams to a slow\n"
            "Unix-domain receiver whose queue is full most of the time, under a SIGALRM\n"
            "storm, in each send mode; then every datagram is accounted for. Exit status 0\n"
            "only when nothing was lost, duplicated or leaked and blocked senders slept."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--compare", action="store_true", help="also run asyncio and Erlang/OTP gen_udp (if installed)")
    p.add_argument("--datagrams", type=int, default=10_000, metavar="N", help="datagrams per mode (default 10000)")
    p.add_argument("--signal-hz", type=int, default=1000, metavar="HZ", help="SIGALRM rate (default 1000; 0: none)")
    p.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    if args.datagrams < 4:
        print("genudp repro: --datagrams must be at least 4 (one per sender)", file=sys.stderr)
        return 2
    if args.signal_hz < 0:
        print("genudp repro: --signal-hz must be 0 or more", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty() and not args.json
    results: list[tuple[str, Result]] = []
    for n, (title, base) in enumerate(MODES, 1):
        config = Config(**{**base.__dict__, "per_sender": args.datagrams // base.senders, "signal_hz": args.signal_hz})
        progress = _progress(f"[{n}/{len(MODES)}] {title}") if tty else None
        results.append((title, run(config, progress)))
        if tty:
            sys.stderr.write("\r\x1b[K")
    peers = []
    if args.compare:
        from .._harness import compare as _compare

        if tty:
            sys.stderr.write("running the peers (asyncio, Erlang/OTP) ...")
            sys.stderr.flush()
        peers = _compare.run_peers()
        if tty:
            sys.stderr.write("\r\x1b[K")
    ok = all(not r.problems() for _, r in results)
    if args.json:
        json.dump(
            {
                "max_dgram_qlen": max_dgram_qlen(),
                "runs": [{"title": t, **r.summary()} for t, r in results],
                "peers": [p.summary() for p in peers],
                "verdict": "ok" if ok else "FAIL",
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        _print_table(results, sys.stdout)
        if peers:
            _print_peers(peers, sys.stdout)
    return 0 if ok else 1


def _progress(label: str) -> Any:
    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r\x1b[K{label}: {done}/{total} delivered")
        sys.stderr.flush()

    return show


def _print_table(results: list[tuple[str, Result]], out: TextIO) -> None:
    first = results[0][1]
    cfg = first.config
    out.write(
        f"genudp repro: {cfg.senders} senders ({cfg.threads} threads + {cfg.processes} process) -> "
        f"a slow Unix-domain receiver\n"
        f"net.unix.max_dgram_qlen = {first.qlen}: the receiver holds {first.qlen + 1} datagrams; "
        f"SIGALRM {cfg.signal_hz} Hz\n\n"
    )
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, values: list[Any]) -> None:
        rows.append((label, [str(v) for v in values]))

    rs = [r for _, r in results]
    row("send_timeout", ["None" if r.config.send_timeout is None else f"{r.config.send_timeout:g}" for r in rs])
    row("attempted", [r.attempted for r in rs])
    row("sent (returned)", [r.sent for r in rs])
    reasons = sorted({reason for r in rs for reason in r.raised})
    if not reasons:
        row("raised", [0 for _ in rs])
    for reason in reasons:
        row(f"raised: {reason}", [r.raised.get(reason, 0) for r in rs])
    row("delivered", [len(r.delivered) for r in rs])
    row("lost", [f"{r.lost} (<={r.loss_allowance()})" if r.restarts_done else r.lost for r in rs])
    row("duplicated", [r.duplicated for r in rs])
    row("raised, yet delivered", [r.phantom for r in rs])
    row("out of order", [r.reordered for r in rs])
    row("stray messages", [r.strays for r in rs])
    row("sender CPU % of wall", [f"{r.max_cpu_share * 100:.1f}" for r in rs])
    row("CPU % while blocked", [f"{r.max_blocked_cpu_share * 100:.1f}" + ("" if r.cpu_judged else "*") for r in rs])
    row("eagain waits", [r.eagain_waits for r in rs])
    row("direct sends", [r.direct_sends for r in rs])
    row("eintr retries", [r.eintr_retries for r in rs])
    row("signals handled", [r.signals for r in rs])
    row("seconds", [f"{r.wall:.1f}" for r in rs])
    row("verdict", ["ok" if not r.problems() else "FAIL" for r in rs])
    width = 22
    col = max(12, *(len(t) + 1 for t, _ in results))
    out.write(" " * width + "".join(t.rjust(col) for t, _ in results) + "\n")
    for label, values in rows:
        out.write(label.ljust(width) + "".join(v.rjust(col) for v in values) + "\n")
    out.write(
        "\nlost: sends that returned but never arrived; a killed receiver takes its queue\n"
        "and its mailbox window with it. CPU: the most any one sender used; the storm's\n"
        "handler runs on each process's main thread. CPU while blocked: per second a\n"
        "send waited; with direct sends (straight into a blocking call once the\n"
        "destination was full) all of the sender's CPU counts, an upper bound. eintr\n"
        "retries: waits a signal interrupted and genudp resumed.\n"
    )
    if not all(r.cpu_judged for r in rs):
        out.write("*: blocked under 1 s per sender: too short to hold to the 5 % bound.\n")
    problems = [(t, p) for t, r in results for p in r.problems()]
    if problems:
        out.write("\nverdict: FAIL\n")
        for title, problem in problems:
            out.write(f"  {title}: {problem}\n")
    else:
        out.write("\nverdict: ok: every datagram is accounted for, in every mode.\n")


def _print_peers(peers: list[Any], out: TextIO) -> None:
    out.write("\nThe same slow receiver, one sender each (2000 datagrams):\n\n")
    head = f"{'peer':20}{'returned':>9}{'raised':>8}{'delivered':>10}{'lost':>6}{'strays':>7}{'CPU %':>7}"
    out.write(head + "\n")
    for p in peers:
        if p.skipped:
            out.write(f"{p.name:20}  skipped\n{'':4}{p.skipped}"[:80] + "\n")
            continue
        strays = "-" if p.strays is None else str(p.strays)
        raised = sum(p.raised.values())
        out.write(
            f"{p.name:20}{len(p.returned):>9}{raised:>8}{len(p.delivered):>10}{p.lost:>6}{strays:>7}"
            f"{p.cpu_share * 100:>7.1f}\n"
        )
        for note in [*(f"raised {k}: {v}" for k, v in p.raised.items()), *p.notes]:
            out.write(f"{'':4}{note}"[:80] + "\n")
    out.write("\nCPU %: CPU of the whole sender process while sending, as a share of one core.\n")
