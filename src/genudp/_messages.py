"""The messages genudp puts in mailboxes, as typed tuples.

Rule 1: every message genudp itself delivers is one of the NamedTuples below, made here. They
are tuples, so they compare equal to plain tuples and ``match`` takes them apart as before::

    match genudp.receive():
        case ("udp", sock, address, port, data): ...
        case ("udp_passive", sock): ...
        case ("DOWN", ref, "process", pid, reason): ...

and they also have names (``message.data``, ``message.socket``) and types for mypy.

Hot paths build them with the ``make_*`` functions: ``tuple.__new__`` bound to the class, a
C call, where ``Udp(...)`` would run a Python-level ``__new__`` per datagram.

Pure: no I/O here.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from ._process import Pid, Ref
    from ._socket import Socket

__all__ = ("Down", "Udp", "UdpAnc", "UdpPassive", "make_udp", "make_udp_anc")


class Udp(NamedTuple):
    """``("udp", socket, address, port, data)``: a datagram an active socket delivered.

    For local sockets ``address`` is the sender's path (str), abstract name (bytes) or None
    (an unbound sender), and ``port`` is 0.
    """

    tag: Literal["udp"]
    socket: Socket
    address: Any
    port: int
    data: bytes


class UdpAnc(NamedTuple):
    """``("udp", socket, address, port, anc, data)``: as :class:`Udp`, from a socket opened
    with ``credentials=True``; ``anc`` is the sender's ``{"pid", "uid", "gid"}`` (or None)."""

    tag: Literal["udp"]
    socket: Socket
    address: Any
    port: int
    anc: dict[str, int] | None
    data: bytes


class UdpPassive(NamedTuple):
    """``("udp_passive", socket)``: an ``active=N`` count ran out; the socket is passive now."""

    tag: Literal["udp_passive"]
    socket: Socket


class Down(NamedTuple):
    """``("DOWN", ref, "process", pid, reason)``: a monitored process ended."""

    tag: Literal["DOWN"]
    ref: Ref
    kind: Literal["process"]
    pid: Pid
    reason: object


#: ``make_udp(("udp", sock, address, port, data))``: a :class:`Udp` without a Python call.
make_udp: Any = functools.partial(tuple.__new__, Udp)
#: ``make_udp_anc(("udp", sock, address, port, anc, data))``.
make_udp_anc: Any = functools.partial(tuple.__new__, UdpAnc)


def udp_passive(sock: Socket) -> UdpPassive:
    return UdpPassive("udp_passive", sock)


def down(ref: Ref, pid: Pid, reason: object) -> Down:
    return Down("DOWN", ref, "process", pid, reason)


def is_socket_message(message: object, sock: object) -> bool:
    """Whether ``message`` is a ``udp`` or ``udp_passive`` message of ``sock`` (what
    ``controlling_process`` moves to the new owner)."""
    return (
        isinstance(message, tuple)
        and len(message) >= 2
        and message[1] is sock
        and (message[0] == "udp" or message[0] == "udp_passive")
    )
