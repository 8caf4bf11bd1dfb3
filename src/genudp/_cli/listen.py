"""``genudp listen``: bind an address and print each datagram."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any

import genudp
from genudp import Error, Family

from ._term import ADDRESS_FORMS, Stop, cli_words, parse, printable, show_address, usage_error

__all__ = ("add_parser", "format_datagram", "run_listen")

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
        description=f"Bind ADDRESS and print each datagram with time, sender and length, until\n"
        f"Ctrl-C, SIGTERM, SIGHUP or --count datagrams; each is a normal stop: the socket\n"
        f"file is removed, a summary printed, the exit status 0. The first line on stderr\n"
        f"gives the address bound (the real port for :0).\n"
        f"ADDRESS: {ADDRESS_FORMS}.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--count", type=int, metavar="N", help="exit after N datagrams")
    p.add_argument("--active", default="true", metavar="MODE", help="once, true (default) or a count N")
    p.add_argument("--format", choices=("text", "hex", "json"), default="text", help="output format")
    p.add_argument("--unlink-stale", action="store_true", help="replace a stale socket file at ADDRESS")
    p.add_argument("--credentials", action="store_true", help="show each local sender's pid, uid and gid")
    p.add_argument("--recbuf", type=int, metavar="BYTES", help="the receive buffer (SO_RCVBUF), in bytes")
    p.set_defaults(run=run_listen)


def _open(args: argparse.Namespace, family: Family, address: Any, active: Any) -> genudp.Socket:
    options: dict[str, Any] = {"active": active}
    if args.recbuf is not None:
        options["recbuf"] = args.recbuf
    if family == "local":
        return genudp.open(path=address, unlink_stale=args.unlink_stale, credentials=args.credentials, **options)
    return genudp.open(address[1], family=family, ip=address[0], **options)


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
    if args.recbuf is not None and args.recbuf < 1:
        return usage_error("listen", "--recbuf must be a number of bytes, at least 1")
    if args.credentials and family != "local":
        return usage_error("listen", "--credentials is for local addresses (/path, ./path, @name)")
    try:
        sock = _open(args, family, address, active)
    except Error as exc:
        print(f"genudp listen: cannot bind {printable(args.address)}: {cli_words(exc)}", file=sys.stderr)
        return 1
    bound = sock.sockname()
    where = show_address(family, *(bound if family != "local" else (bound,)))
    print(f"listening on {where} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen = 0
    drops = Drops(sock)
    stopped = False
    with sock:
        try:
            while args.count is None or seen < args.count:
                try:
                    message = genudp.receive(timeout=1.0)
                except genudp.Timeout:
                    drops.report()
                    continue
                match message:
                    case ("udp", s, sender, port, *anc, data) if s is sock:
                        seen += 1
                        line = format_datagram(args.format, family, sender, port, data, anc[0] if anc else None)
                        sys.stdout.write(line + "\n")
                        sys.stdout.flush()
                        if seen % 256 == 0:
                            drops.report()
                        if active == "once":
                            sock.setopts(active="once")
                    case ("udp_passive", s) if s is sock:
                        assert type(active) is int
                        sock.setopts(active=active)
                    case _:
                        pass
        except (KeyboardInterrupt, Stop):
            stopped = True  # a normal stop: the file goes with the socket, the summary follows
        drops.report()
    what = "\nstopped after" if stopped else "received"
    print(f"{what} {seen} datagram(s){drops.summary()}", file=sys.stderr)
    return 0


class Drops:
    """Datagrams the kernel dropped for a full receive queue (UDP, SO_RXQ_OVFL): reported on
    stderr as they are noticed, and in the summary."""

    def __init__(self, sock: genudp.Socket) -> None:
        self.sock = sock
        self.reported = 0

    def report(self) -> None:
        drops: int | None = self.sock.info()["kernel_drops"]
        if drops and drops > self.reported:
            print(f"genudp listen: the kernel dropped {drops - self.reported} datagram(s): queue full", file=sys.stderr)
            self.reported = drops

    def summary(self) -> str:
        return f"; the kernel dropped {self.reported}" if self.reported else ""


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


def format_datagram(
    style: str, family: Family, sender: Any, port: int, data: bytes, anc: dict[str, int] | None = None
) -> str:
    """One datagram as ``listen`` prints it (``send --replies`` too)."""
    who = show_address(family, sender, port)
    if style == "json":
        now = datetime.datetime.now(datetime.UTC)
        record: dict[str, Any] = {
            "time": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "from": None if sender is None else who,
            "length": len(data),
            "hex": data.hex(),
        }
        try:
            record["text"] = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        if anc is not None:
            record.update(anc)
        return json.dumps(record)
    cred = f" pid={anc['pid']} uid={anc['uid']} gid={anc['gid']}" if anc is not None else ""
    head = f"{datetime.datetime.now():%H:%M:%S.%f} {who}{cred} {len(data)} B"
    if style == "hex":
        lines = [head]
        for offset in range(0, len(data), 16):
            chunk = data[offset : offset + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"  {offset:04x}  {chunk.hex(' '):<47}  {text}")
        return "\n".join(lines)
    return f"{head}: {printable(data.decode('utf-8', 'backslashreplace'))}"
