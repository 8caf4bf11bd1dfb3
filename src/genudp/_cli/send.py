"""``genudp send``: send messages (or stdin lines) as datagrams."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import genudp
from genudp import Error

from ._term import ADDRESS_FORMS, parse, progress_bar, usage_error

__all__ = ("add_parser", "run_send")

_EXAMPLES = """\
examples:
  genudp send /tmp/app.sock hello world       two datagrams: "hello", "world"
  printf 'a\\nb\\n' | genudp send @metrics      one datagram per line of stdin
  genudp send 127.0.0.1:5140 ping --repeat 1000 --timeout 0.5
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "send",
        help="send each MESSAGE (or each stdin line) as a datagram",
        description=f"Send each MESSAGE as one datagram, or each line of stdin when none is\n"
        f"given; a full receiver makes it wait (see --timeout).\n"
        f"ADDRESS: {ADDRESS_FORMS}.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("messages", nargs="*", metavar="MESSAGE")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="give up on a full receiver after SECONDS")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="send everything N times")
    p.set_defaults(run=run_send)


def run_send(args: argparse.Namespace) -> int:
    parsed = parse("send", args.address)
    if parsed is None:
        return 2
    family, address = parsed
    if args.repeat < 1:
        return usage_error("send", "--repeat must be at least 1")
    if args.timeout is not None and not args.timeout >= 0:  # also refuses nan
        return usage_error("send", f"--timeout must be a number of seconds, 0 or more; got {args.timeout}")
    messages = [m.encode() for m in args.messages] if args.messages else None
    if messages is None:
        messages = [line.rstrip(b"\n") for line in sys.stdin.buffer]
    total = len(messages) * args.repeat
    tty = sys.stderr.isatty()
    sent = size = 0
    with genudp.open(family=family, active=False, send_timeout=args.timeout) as sock:
        for _ in range(args.repeat):
            for data in messages:
                try:
                    sock.send(data, address)
                except Error as exc:
                    if tty:
                        sys.stderr.write("\r\x1b[K")
                    print(f"genudp send: {exc} (after {sent} sent)", file=sys.stderr)
                    return 1
                sent += 1
                size += len(data)
                if tty and total > 1 and (sent % 100 == 0 or sent == total):
                    progress_bar(sent, total)
    if tty and total > 1:
        sys.stderr.write("\r\x1b[K")
    print(f"sent {sent} datagram(s), {size} bytes, to {args.address}")
    return 0
