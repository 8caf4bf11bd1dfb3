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

__all__ = ("ADDRESS_FORMS", "colour", "paint", "parse", "progress_bar", "usage_error", "wrap")

#: The address forms every command takes.
ADDRESS_FORMS = "/path, ./path, @abstract, host:port, [v6addr]:port"


def colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, code: str, stream: TextIO) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour(stream) else text


def usage_error(command: str, message: str) -> int:
    print(f"genudp {command}: {message}", file=sys.stderr)
    return 2


def parse(command: str, text: str) -> tuple[Family, Address] | None:
    try:
        return genudp.parse_address(text)
    except ValueError as exc:
        print(f"genudp {command}: {exc}", file=sys.stderr)
        return None


def wrap(text: str, width: int, indent: str) -> Iterator[str]:
    import textwrap

    for paragraph in text.splitlines():
        yield from textwrap.wrap(paragraph, width, initial_indent=indent, subsequent_indent=indent) or [indent]


def progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
