"""genudp: Erlang/OTP's gen_udp for Python.

Datagram sockets (UDP over IPv4/IPv6, Unix-domain datagram sockets) owned by lightweight
processes with mailboxes. A send returns only once the kernel accepted the datagram exactly once,
or raises and it was not sent; a full receiver makes the sender wait without spinning.

This module only re-exports; the code lives in the underscore modules.
"""

from ._address import Address, Family, InetAddress, LocalAddress, parse_address
from ._errors import Error, Timeout
from ._options import Active
from ._process import Pid, Ref, demonitor, monitor, receive, send, spawn
from ._process import current as self
from ._socket import Socket, open

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # ``genudp.aio`` without an explicit import, and without making every user import asyncio.
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module 'genudp' has no attribute {name!r}")


__all__ = (
    "Active",
    "Address",
    "Error",
    "Family",
    "InetAddress",
    "LocalAddress",
    "Pid",
    "Ref",
    "Socket",
    "Timeout",
    "demonitor",
    "monitor",
    "open",
    "parse_address",
    "receive",
    "self",
    "send",
    "spawn",
    "__version__",
)
