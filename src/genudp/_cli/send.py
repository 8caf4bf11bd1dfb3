"""``genudp send``: send messages (or stdin lines, as they arrive) as datagrams; wait for replies."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import genudp
from genudp import Error, Family

from ._term import ADDRESS_FORMS, cli_words, parse, progress_bar, show_address, usage_error
from .listen import format_datagram

__all__ = ("add_parser", "run_send")

_EXAMPLES = """\
examples:
  genudp send /tmp/app.sock hello world       two datagrams: "hello", "world"
  tail -f app.log | genudp send @logs         each line as it is written
  genudp send 127.0.0.1:5140 ping --repeat 1000 --timeout 0.5
  genudp send 127.0.0.1:7 hello --replies 1   an echo server's answer
  genudp send ./peer.sock hi --bind ./me.sock --replies 1 --reply-timeout 2
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "send",
        help="send each MESSAGE (or each stdin line) as a datagram",
        description=f"Send each MESSAGE as one datagram, or each line of stdin as it arrives\n"
        f"when none is given; a full receiver makes it wait (see --timeout). Options\n"
        f"may come anywhere on the line.\n"
        f"ADDRESS: {ADDRESS_FORMS}.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("messages", nargs="*", metavar="MESSAGE")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="give up on a full receiver after SECONDS")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="send each message N times")
    p.add_argument(
        "--bind", metavar="ADDRESS", help="send from ADDRESS (a file it creates is removed at exit); replies come there"
    )
    p.add_argument("--replies", type=int, default=0, metavar="N", help="then wait for up to N replies and print them")
    p.add_argument(
        "--reply-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for each reply (default 5)",
    )
    p.add_argument("--sndbuf", type=int, metavar="BYTES", help="the send buffer (SO_SNDBUF), in bytes")
    p.set_defaults(run=run_send)


def _check(args: argparse.Namespace) -> str | None:
    if args.repeat < 1:
        return "--repeat must be at least 1"
    if args.timeout is not None and not args.timeout >= 0:  # also refuses nan
        return f"--timeout must be a number of seconds, 0 or more; got {args.timeout}"
    if args.replies < 0:
        return "--replies must be 0 or more"
    if not args.reply_timeout >= 0:
        return f"--reply-timeout must be a number of seconds, 0 or more; got {args.reply_timeout}"
    if args.sndbuf is not None and args.sndbuf < 1:
        return "--sndbuf must be a number of bytes, at least 1"
    return None


def _open(args: argparse.Namespace, family: Family) -> genudp.Socket | int:
    """The sending socket: bound where --bind says, or (to get replies) somewhere of its own."""
    options: dict[str, Any] = {"active": False, "send_timeout": args.timeout}
    if args.sndbuf is not None:
        options["sndbuf"] = args.sndbuf
    if args.bind is not None:
        parsed = parse("send", args.bind)
        if parsed is None:
            return 2
        bind_family, where = parsed
        if bind_family != family:
            return usage_error("send", f"--bind {args.bind} is {bind_family}, the destination {family}")
        if family == "local":
            options["path"] = where
        else:
            assert isinstance(where, tuple)
            options["ip"], port = where
            return genudp.open(port, family=family, **options)
    elif family == "local" and args.replies:
        options["path"] = f"\0genudp-send-{os.getpid()}"  # an abstract name: nothing to remove
    return genudp.open(family=family, **options)


def _lines(args: argparse.Namespace) -> Iterator[bytes]:
    """Each message, or each stdin line as soon as it is read (not after stdin ends)."""
    if args.messages:
        for message in args.messages:
            yield os.fsencode(message)
        return
    stdin = sys.stdin.buffer
    while line := stdin.readline():
        yield line.rstrip(b"\n")


def run_send(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        return usage_error("send", problem)
    parsed = parse("send", args.address)
    if parsed is None:
        return 2
    family, address = parsed
    try:
        opened = _open(args, family)
    except Error as exc:
        print(f"genudp send: cannot open the sending socket: {_explain(exc, args.bind)}", file=sys.stderr)
        return 1
    if isinstance(opened, int):
        return opened
    with opened as sock:
        status = _send_all(sock, args, address, _lines(args))
        if status == 0 and args.replies:
            status = _print_replies(sock, args, family)
    return status


def _send_all(sock: genudp.Socket, args: argparse.Namespace, address: Any, lines: Iterable[bytes]) -> int:
    total = len(args.messages) * args.repeat if args.messages else 0
    tty = sys.stderr.isatty()
    sent = size = 0
    for data in lines:
        for _ in range(args.repeat):
            try:
                _send_one(sock, data, address, args, tty)
            except Error as exc:
                if tty:
                    sys.stderr.write("\r\x1b[K")
                print(f"genudp send: {_explain(exc, args.address)} (after {sent} sent)", file=sys.stderr)
                return 1
            sent += 1
            size += len(data)
            if tty and total > 1 and (sent % 100 == 0 or sent == total):
                progress_bar(sent, total)
    if tty and total > 1:
        sys.stderr.write("\r\x1b[K")
    print(f"sent {sent} datagram(s), {size} bytes, to {args.address}", flush=True)
    return 0


def _send_one(sock: genudp.Socket, data: bytes, address: Any, args: argparse.Namespace, tty: bool) -> None:
    if not tty or args.timeout == 0:
        sock.send(data, address)
        return
    try:
        sock.send(data, address, timeout=0)
    except Error as exc:
        if exc.reason != "eagain":
            raise
        # On a terminal, a wait says so (it may be long: the receiver is not reading).
        sys.stderr.write(f"\r\x1b[Kwaiting: {args.address} is full (Ctrl-C to give up)")
        sys.stderr.flush()
        try:
            sock.send(data, address)
        finally:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _print_replies(sock: genudp.Socket, args: argparse.Namespace, family: Family) -> int:
    got = 0
    while got < args.replies:
        try:
            sender, port, data = sock.recv(timeout=args.reply_timeout)
        except genudp.Timeout:
            break
        got += 1
        print(format_datagram("text", family, sender, port, data), flush=True)
    if got < args.replies:
        print(f"genudp send: {got} of {args.replies} replies within {args.reply_timeout:g} s each", file=sys.stderr)
        return 1
    return 0


def _explain(exc: Error, where: str | None) -> str:
    """An OS reason in the command line's words, where the bare errno would mislead."""
    path = where if where and where.startswith(("/", ".")) else None
    if path is None:
        return cli_words(exc)
    if path is not None and exc.reason in ("econnrefused", "eaddrinuse", "enotsock"):
        try:
            st = os.stat(path)
        except OSError:
            return cli_words(exc)
        import stat

        if stat.S_ISREG(st.st_mode):
            return f"{show_address('local', path)} is a regular file, not a socket"
        if stat.S_ISDIR(st.st_mode):
            return f"{show_address('local', path)} is a directory, not a socket"
        if stat.S_ISSOCK(st.st_mode) and exc.reason == "econnrefused":
            return f"nothing is bound at {show_address('local', path)} (a stale socket file)"
    return cli_words(exc)
