"""genudp: Erlang/OTP's gen_udp for Python.

Datagram sockets (UDP over IPv4/IPv6, Unix-domain datagram sockets) owned by lightweight
processes with mailboxes. A send returns only once the kernel accepted the datagram exactly once,
or raises and it was not sent; a full receiver makes the sender wait without spinning.

This module only re-exports; the code lives in the underscore modules.
"""

import sys as _sys

if _sys.platform != "linux":  # pragma: no cover - Linux is the platform
    raise ImportError(
        f"genudp is Linux-only (its waits and its promise rest on Linux's Unix-domain datagram "
        f"semantics and epoll); this is {_sys.platform}"
    )
if not getattr(_sys, "_is_gil_enabled", lambda: True)():  # pragma: no cover - needs a free-threaded build
    raise ImportError(
        "genudp needs the GIL: its fd guard (a store to one object, then a load from another) and "
        "its hub's lease ('stop looking, then check again') are correct only because the GIL orders "
        "them. Run with the GIL on (PYTHON_GIL=1 or -X gil=1)."
    )

from ._address import Address, Family, InetAddress, LocalAddress, format_address, parse_address
from ._errors import Error, Timeout
from ._messages import Down, Udp, UdpAnc, UdpPassive
from ._open import open as open  # re-exported, though not in __all__ (below)
from ._options import Active
from ._process import Pid, Ref, demonitor, flush, monitor, receive, send, spawn
from ._process import current as self
from ._socket import Socket

__version__ = "0.1.0"

# Tracebacks, reprs and pickles name the public module, not the underscore one that defines it.
for _public in (Error, Timeout, Socket, Pid, Ref, Udp, UdpAnc, UdpPassive, Down):
    _public.__module__ = __name__
del _public


def __getattr__(name: str) -> object:
    # ``genudp.aio`` without an explicit import, and without making every user import asyncio.
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module 'genudp' has no attribute {name!r}")


__all__ = (
    "Active",
    "Address",
    "Down",
    "Error",
    "Family",
    "InetAddress",
    "LocalAddress",
    "Pid",
    "Ref",
    "Socket",
    "Timeout",
    "Udp",
    "UdpAnc",
    "UdpPassive",
    "demonitor",
    "flush",
    "format_address",
    "monitor",
    # not "open": ``from genudp import *`` must not shadow the built-in (``genudp.open`` it is)
    "parse_address",
    "receive",
    "self",
    "send",
    "spawn",
    "__version__",
)
