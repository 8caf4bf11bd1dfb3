"""Addresses: checking what callers pass, and the text forms people type.

Pure core rules: no ``socket``, ``select``, ``threading`` or ``asyncio`` here; every function is a
plain transformation that a table-driven test can pin. Checks run on the slow path only (when the
kernel refused an argument, or when a socket is opened), so the send fast path pays nothing.

Address shapes, by family:
- "inet": ``(host, port)`` with ``host`` an IPv4 literal or a name, ``port`` 0..65535.
- "inet6": ``(host, port)`` with an IPv6 literal or a name.
- "local": a filesystem path (``str``), or an abstract name (``bytes`` or ``str`` starting with
  NUL, e.g. ``"\\0name"``). An unbound local peer is ``None``; an autobound one is a 5-hex-digit
  abstract name.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Literal, TypeAlias

__all__ = (
    "Family",
    "FAMILIES",
    "LocalAddress",
    "InetAddress",
    "Address",
    "SUN_PATH_MAX",
    "check_family",
    "check_local_path",
    "check_port",
    "check_inet_dest",
    "format_local",
    "parse_address",
    "format_address",
    "ADDRESS_FORMS",
)

Family: TypeAlias = Literal["inet", "inet6", "local"]
FAMILIES: tuple[Family, ...] = ("inet", "inet6", "local")

#: A Unix-domain address: a path (str), an abstract name (bytes starting with NUL).
LocalAddress: TypeAlias = str | bytes
#: A UDP address: (host, port).
InetAddress: TypeAlias = tuple[str, int]
#: Whatever ``send`` takes as a destination.
Address: TypeAlias = LocalAddress | InetAddress

#: ``sizeof(sockaddr_un.sun_path)`` on Linux.
SUN_PATH_MAX = 108

ADDRESS_FORMS = "/path, ./path, @abstract, host:port, [v6addr]:port"


def _type_name(value: object) -> str:
    return type(value).__name__


def check_family(family: object) -> Family:
    """Return ``family`` if it is one of "inet", "inet6", "local"; raise otherwise."""
    if not isinstance(family, str):
        raise TypeError(f"family must be one of 'inet', 'inet6', 'local'; got {_type_name(family)}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of 'inet', 'inet6', 'local'; got {family!r}")
    return family


def check_local_path(path: object, what: str = "path") -> LocalAddress:
    """Validate a Unix-domain address and normalise it.

    A ``str`` starting with NUL becomes ``bytes`` (an abstract name); a filesystem path stays a
    ``str``. Raises ``TypeError`` for other types and ``ValueError`` for an empty address, a NUL
    inside a filesystem path, or one longer than ``sun_path`` allows.
    """
    if isinstance(path, str):
        if path.startswith("\0"):
            raw = path.encode("utf-8", "surrogateescape")
        else:
            raw = path.encode("utf-8", "surrogateescape")
            if "\0" in path:
                raise ValueError(f"{what} must not contain NUL except as the first character; got {path!r}")
    elif isinstance(path, (bytes, bytearray)):
        raw = bytes(path)
        if not raw.startswith(b"\0") and b"\0" in raw:
            raise ValueError(f"{what} must not contain NUL except as the first byte; got {raw!r}")
    else:
        raise TypeError(
            f"{what} must be a str or bytes path (or '\\0name' for an abstract name); got {_type_name(path)}"
        )
    if not raw:
        hint = "; open(family='local') without a path gives an unbound socket" if what == "path" else ""
        raise ValueError(f"{what} must not be empty{hint}")
    limit = SUN_PATH_MAX if raw.startswith(b"\0") else SUN_PATH_MAX - 1
    if len(raw) > limit:
        raise ValueError(f"{what} is {len(raw)} bytes; a Unix-domain address holds at most {limit}")
    if raw.startswith(b"\0"):
        return raw
    # A filesystem path is a str, whichever way it came: bytes paths decode as os.fsdecode does
    # (undecodable bytes become surrogates and encode back to the same bytes).
    return path if isinstance(path, str) else os.fsdecode(raw)


def check_port(port: object, what: str = "port") -> int:
    """Return ``port`` if it is an int in 0..65535; raise ``TypeError``/``ValueError`` otherwise."""
    if type(port) is not int:
        raise TypeError(f"{what} must be an int in 0..65535; got {_type_name(port)}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{what} must be in 0..65535; got {port}")
    return port


def check_inet_dest(dest: object, family: Family) -> InetAddress:
    """Validate a UDP destination: ``(host, port)``, and for inet6 also ``(host, port,
    flowinfo)`` or ``(host, port, flowinfo, scope_id)`` as the socket module takes them."""
    longest = 4 if family == "inet6" else 2
    if not isinstance(dest, tuple) or not 2 <= len(dest) <= longest:
        shown = f"{dest!r}" if isinstance(dest, (str, bytes, tuple)) else _type_name(dest)
        forms = "(host, port[, flowinfo[, scope_id]])" if longest == 4 else "(host, port)"
        raise TypeError(f"an {family} destination must be a {forms} tuple; got {shown}")
    host, port = dest[0], dest[1]
    if not isinstance(host, str):
        raise TypeError(f"host must be a str (an IP literal or a name); got {_type_name(host)}")
    if not host:
        raise ValueError("host must not be empty")
    if "\0" in host:
        raise ValueError(f"host must not contain NUL; got {host!r}")
    check_port(port)
    if len(dest) == 2:
        return (host, port)
    for value, what, top in zip(dest[2:], ("flowinfo", "scope_id"), (2**20 - 1, 2**32 - 1), strict=False):
        if type(value) is not int:
            raise TypeError(f"{what} must be an int in 0..{top}; got {_type_name(value)}")
        if not 0 <= value <= top:
            raise ValueError(f"{what} must be in 0..{top}; got {value}")
    return tuple(dest)


def format_local(address: LocalAddress | None) -> str:
    """Show a Unix-domain address as people write it: a path, ``@name``, or ``(unbound)``."""
    if address is None or address in ("", b""):
        return "(unbound)"
    if isinstance(address, bytes):
        if address.startswith(b"\0"):
            return "@" + address[1:].decode("utf-8", "backslashreplace")
        return address.decode("utf-8", "surrogateescape")
    return address


def format_address(family: Family, address: object, port: int = 0) -> str:
    """Show an address of ``family`` as people write it: ``/path``, ``@name``, ``1.2.3.4:5``,
    ``[::1]:5``, or ``(unbound)``."""
    if family == "local":
        return format_local(address if isinstance(address, (str, bytes)) else None)
    if family == "inet6":
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def parse_address(text: str) -> tuple[Family, Address]:
    """Parse the text forms of an address (:data:`ADDRESS_FORMS`).

    Returns ``(family, address)``: ``("local", "/path")``, ``("local", b"\\0name")``,
    ``("inet", ("127.0.0.1", 5000))`` or ``("inet6", ("::1", 5000))``.

    Raises:
        ValueError: the text matches none of the forms; the message lists them.
    """
    if not isinstance(text, str):
        raise TypeError(f"address must be a str; got {_type_name(text)}")

    def bad(why: str) -> ValueError:
        return ValueError(f"bad address {text!r}: {why}; expected one of {ADDRESS_FORMS}")

    if text.startswith("@"):
        if len(text) == 1:
            raise bad("an abstract name needs at least one character after '@'")
        try:
            return "local", check_local_path("\0" + text[1:], "abstract name")
        except ValueError as exc:
            raise bad(str(exc)) from None
    if text.startswith(("/", "./", "../")) or text == ".":
        try:
            return "local", check_local_path(text)
        except ValueError as exc:
            raise bad(str(exc)) from None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise bad("an IPv6 address is written [addr]:port")
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise bad(f"{host!r} is not an IPv6 address") from None
        return "inet6", (host, _parse_port(rest[1:], bad))
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise bad("no port given" if not sep else "no host given")
    if ":" in host:
        raise bad("write IPv6 addresses in brackets")
    return "inet", (host, _parse_port(port_text, bad))


def _parse_port(text: str, bad: object) -> int:
    assert callable(bad)
    if not text.isdigit():
        raise bad(f"port {text!r} is not a number")
    port = int(text)
    if port > 65535:
        raise bad(f"port {port} is out of range 0..65535")
    return port
