"""The ``genudp`` command: a thin layer over the public API.

``main(argv) -> int`` parses arguments and calls only ``genudp``'s public functions, so tests can
call ``main([...])`` directly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

__all__ = ("main",)

_DESCRIPTION = """\
genudp: Erlang/OTP's gen_udp for Python, with exact send results.

commands:
  repro     run the full-receiver scenario: senders under a signal storm push
            sequence-numbered datagrams to a slow Unix-domain receiver; prints
            what was sent, delivered, lost, duplicated and the CPU it took
  doctor    what limits datagram IPC on this machine, and what to change
  listen    bind an address and print each datagram
  send      send messages (or stdin lines) as datagrams
  bench     benchmark against raw sockets and asyncio: ratios measured in one run

addresses: /path, ./path, @abstract, host:port, [v6addr]:port
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genudp",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import bench, doctor, listen, repro, send

    for command in (repro, doctor, listen, send, bench):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Ctrl-C, SIGTERM and SIGHUP end any command with one line and the usual status (130, 143,
    129), never a traceback; ``listen`` takes them as its normal stop (status 0)."""
    parser = _parser()
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if extra:
        # Options anywhere on the line: what follows an option is more MESSAGEs for send.
        if args.command == "send" and not any(e.startswith("-") and e != "-" for e in extra):
            args.messages += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        from genudp import __version__

        print(f"genudp {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    from ._term import Stop, raise_stop

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, raise_stop)
    try:
        result: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (genudp doctor | head): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    except KeyboardInterrupt:
        print(f"\ngenudp {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Stop as stop:
        print(f"genudp {args.command}: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return result
