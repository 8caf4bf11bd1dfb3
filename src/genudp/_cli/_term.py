"""What every command shares: address parsing, colour, wrapping, one-line usage errors.

Output fits 80 columns; colour only on a TTY and never with ``NO_COLOR``. A user error (a bad
address, a bad number) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TextIO

import genudp
from genudp import Address, Family

__all__ = (
    "ADDRESS_FORMS",
    "Stop",
    "cli_words",
    "colour",
    "paint",
    "parse",
    "printable",
    "progress_bar",
    "raise_stop",
    "show_address",
    "usage_error",
    "wrap",
)

#: The address forms every command takes.
ADDRESS_FORMS = "/path, ./path, @abstract, host:port, [v6addr]:port"


class Stop(BaseException):
    """SIGTERM or SIGHUP arrived: the command ends as Ctrl-C ends it (``main`` installs the
    handlers that raise it; ``listen`` treats it as a normal stop)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def raise_stop(signum: int, frame: object) -> None:
    raise Stop(signum)


def colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, code: str, stream: TextIO) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour(stream) else text


def usage_error(command: str, message: str) -> int:
    print(f"genudp {command}: {message}", file=sys.stderr)
    return 2


#: Spellings other tools use, and what to write instead.
_FOREIGN = (
    (("udp://", "udp4://", "udp6://"), "write host:port without the scheme, e.g. 127.0.0.1:5140"),
    (("unix://", "unix:", "unix-sendto:", "unix-recvfrom:", "unix-connect:"), "write the path itself, e.g. ./app.sock"),
    (("abstract:", "abstract-sendto:", "abstract-recvfrom:"), "write an abstract name as @name"),
    (("udp:", "udp4:", "udp6:", "udp-sendto:", "udp-recvfrom:", "udp-listen:"), "write host:port, e.g. 127.0.0.1:5140"),
)


def parse(command: str, text: str) -> tuple[Family, Address] | None:
    """An address as the command line writes it; on a mistake, one line that says what to write
    (and None). Host names resolve over IPv4 and IPv6 (the first address the resolver gives)."""
    lowered = text.lower()
    for prefixes, hint in _FOREIGN:
        if lowered.startswith(prefixes):
            print(f"genudp {command}: bad address {text!r}: {hint}; expected one of {ADDRESS_FORMS}", file=sys.stderr)
            return None
    if ":" not in text and not text.startswith(("@", "/", ".", "[")):
        hint = f"for a file in this directory write ./{text}"
        print(f"genudp {command}: bad address {text!r}: {hint}; expected one of {ADDRESS_FORMS}", file=sys.stderr)
        return None
    try:
        family, address = genudp.parse_address(text)
    except ValueError as exc:
        print(f"genudp {command}: {exc}", file=sys.stderr)
        return None
    if family != "local":
        assert isinstance(address, tuple)
        resolved = _resolve(command, address[0], address[1])
        if resolved is None:
            return None
        family, address = resolved
    return family, address


def _resolve(command: str, host: str, port: int) -> tuple[Family, Address] | None:
    import ipaddress
    import socket

    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return ("inet6" if literal.version == 6 else "inet"), (host, port)
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except OSError as exc:
        print(f"genudp {command}: cannot resolve {host!r}: {exc.strerror or exc}", file=sys.stderr)
        return None
    family, _, _, _, sockaddr = infos[0]
    return ("inet6" if family == socket.AF_INET6 else "inet"), (str(sockaddr[0]), port)


#: What the library's messages say in Python keywords, in the command line's flags.
_KEYWORDS = (
    ("open(..., unlink_stale=True) replaces it", "--unlink-stale replaces it"),
    ("raise it with sndbuf=", "raise it with --sndbuf"),
)


def cli_words(message: object) -> str:
    """A library message with its Python keywords put as the command line's flags."""
    text = str(message)
    for keyword, flag in _KEYWORDS:
        text = text.replace(keyword, flag)
    return printable(text)


def printable(text: str) -> str:
    """``text`` as it can be printed whatever the locale: what is not UTF-8 (a path's stray
    bytes, kept as surrogates) and what is not printable are shown escaped."""
    raw = text.encode("utf-8", "surrogateescape")
    shown = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)


def show_address(family: Family, address: object, port: int = 0) -> str:
    """``format_address``, printable (see :func:`printable`)."""
    return printable(genudp.format_address(family, address, port))


def wrap(text: str, width: int, indent: str) -> Iterator[str]:
    import textwrap

    for paragraph in text.splitlines():
        yield from textwrap.wrap(paragraph, width, initial_indent=indent, subsequent_indent=indent) or [indent]


def progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
