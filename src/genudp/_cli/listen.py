"""``genudp listen``: bind an address and print each datagram."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any

import genudp
from genudp import Error, Family

from ._term import ADDRESS_FORMS, parse, usage_error

__all__ = ("add_parser", "run_listen")

_EXAMPLES = """\
examples:
  genudp listen /tmp/app.sock                 print datagrams until Ctrl-C
  genudp listen @metrics --count 10           an abstract name, 10 datagrams
  genudp listen 127.0.0.1:5140 --format json  UDP, one JSON object a line
  genudp listen [::1]:5140 --active once --format hex
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "listen",
        help="bind ADDRESS and print each datagram",
        description=f"Bind ADDRESS and print each datagram with time, sender and length,\n"
        f"until Ctrl-C or --count datagrams; a clean exit unlinks the socket file.\n"
        f"ADDRESS: {ADDRESS_FORMS}.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--count", type=int, metavar="N", help="exit after N datagrams")
    p.add_argument("--active", default="true", metavar="MODE", help="once, true (default) or a count N")
    p.add_argument("--format", choices=("text", "hex", "json"), default="text", help="output format")
    p.set_defaults(run=run_listen)


def run_listen(args: argparse.Namespace) -> int:
    parsed = parse("listen", args.address)
    if parsed is None:
        return 2
    family, address = parsed
    try:
        active = _active_mode(args.active)
    except (TypeError, ValueError) as exc:
        return usage_error("listen", f"--active: {exc}")
    if args.count is not None and args.count < 1:
        return usage_error("listen", "--count must be at least 1")
    try:
        if family == "local":
            sock = genudp.open(path=address, active=active)  # type: ignore[arg-type]
        else:
            assert isinstance(address, tuple)
            sock = genudp.open(address[1], family=family, ip=address[0], active=active)
    except Error as exc:
        print(f"genudp listen: cannot bind {args.address}: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout
    print(f"listening on {args.address} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen = 0
    try:
        with sock:
            while args.count is None or seen < args.count:
                message = genudp.receive()
                match message:
                    case ("udp", s, sender, port, data) if s is sock:
                        seen += 1
                        out.write(_format_datagram(args.format, family, sender, port, data) + "\n")
                        out.flush()
                        if active == "once":
                            sock.setopts(active="once")
                    case ("udp_passive", s) if s is sock:
                        assert type(active) is int
                        sock.setopts(active=active)
                    case _:
                        pass
    except KeyboardInterrupt:
        print(f"\nstopped after {seen} datagram(s)", file=sys.stderr)
    return 0


def _active_mode(text: str) -> Any:
    if text in ("true", "True"):
        return True
    if text == "once":
        return "once"
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"expected once, true or a count N; got {text!r}") from None
    if n < 1:
        raise ValueError(f"a count must be at least 1; got {n}")
    return n


def _format_datagram(style: str, family: Family, sender: Any, port: int, data: bytes) -> str:
    now = datetime.datetime.now()
    who = genudp.format_address(family, sender, port)
    if style == "json":
        return json.dumps(
            {"time": now.isoformat(timespec="microseconds"), "from": who, "length": len(data), "hex": data.hex()}
        )
    head = f"{now:%H:%M:%S.%f} {who} {len(data)} B"
    if style == "hex":
        lines = [head]
        for offset in range(0, len(data), 16):
            chunk = data[offset : offset + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"  {offset:04x}  {chunk.hex(' '):<47}  {text}")
        return "\n".join(lines)
    body = data.decode("utf-8", "backslashreplace")
    printable = "".join(c if c.isprintable() else repr(c)[1:-1] for c in body)
    return f"{head}: {printable}"
