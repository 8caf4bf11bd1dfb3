"""Socket options as a table: ``setopts`` and ``getopts``, and UDP's broadcast and multicast.

Rule 1: every option is checked by ``_options`` (pure) before anything here runs, so a bad
value changes nothing. What an option *is* lives in the two tables below: where the kernel
keeps it (a getsockopt level and name) or, for genudp's own options, which attribute of the
socket holds it. ``setopts`` changes the kernel's options first and genudp's after, all under
the socket's lock, so a failed setsockopt leaves genudp's options as they were.

The functions here are ``Socket`` methods (bound in ``_socket.py``): they read and write the
socket's state under ``sock._lock`` as the protocol in ``_socket.py``'s essay allows.
"""

from __future__ import annotations

import builtins
import errno
import os
import socket as _socket_mod
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ._errors import Error, error_from_oserror
from ._messages import udp_passive
from ._options import (
    MULTICAST_OPTIONS,
    OPTION_NAMES,
    check_settable,
    check_watermarks,
    set_active,
)

if TYPE_CHECKING:
    from ._address import Family
    from ._socket import Socket

__all__ = ("get_udp_option", "getopts", "set_udp_options", "setopts")

_SOL: Final = _socket_mod.SOL_SOCKET

#: genudp's own options: read from the socket's state.
_OWN: Final[dict[str, Callable[[Socket], Any]]] = {
    "active": lambda s: s._mode,
    "reuseaddr": lambda s: s._reuse[0],
    "reuseport": lambda s: s._reuse[1],
    "send_timeout": lambda s: s._send_timeout,
    "high_msgq_watermark": lambda s: s._high,
    "low_msgq_watermark": lambda s: s._low,
}
#: Options the kernel keeps for every family: (level, name).
_KERNEL: Final = {"recbuf": (_SOL, _socket_mod.SO_RCVBUF), "sndbuf": (_SOL, _socket_mod.SO_SNDBUF)}


def setopts(self: Socket, **opts: Any) -> None:
    """Change options: active, recbuf, sndbuf, send_timeout, the mailbox watermarks, and on
    UDP sockets broadcast and the multicast options (see :func:`genudp.open`). Any process may
    call it. Does not block.

    ``active=N`` adds N to a current count (or starts one from 0); a count that reaches 0 or
    less makes the socket passive and sends ``("udp_passive", sock)`` to the owner.

    Raises:
        TypeError, ValueError: an unknown option or a malformed value (nothing changed).
        Error: "einval" for an active count outside -32768..32767, "closed".
    """
    checked = check_settable(opts, self.family)
    marks = None
    if "high_msgq_watermark" in checked or "low_msgq_watermark" in checked:
        # Checked as a pair, before anything changes.
        marks = check_watermarks(
            checked.get("high_msgq_watermark", self._high), checked.get("low_msgq_watermark", self._low)
        )
    with self._lock:
        if self._state:
            raise Error("closed", "the socket is closed")
        transition = set_active(self._mode, checked["active"]) if "active" in checked else None
        try:
            for name, (level, option) in _KERNEL.items():
                if checked.get(name) is not None:
                    self._sock.setsockopt(level, option, checked[name])
            set_udp_options(self._sock, self.family, checked)
        except OSError as exc:
            raise error_from_oserror(exc) from None
        if "send_timeout" in checked:
            self._send_timeout = checked["send_timeout"]
            self._set_slice_locked()
        if marks is not None:
            self._high, self._low = marks
        if transition is not None:
            self._apply_mode_locked(transition.mode)
            if transition.passive_message:
                self._owner._mailbox.put(udp_passive(self))


def getopts(self: Socket, *names: str) -> dict[str, Any]:
    """Read options by name (all of this family's when none are named). Does not block.

    Raises:
        ValueError: an unknown name, or a UDP option asked of a local socket.
        Error: "closed", or an OS reason.
    """
    for name in names:
        if name not in OPTION_NAMES:
            raise ValueError(f"unknown option {name!r}; expected one of {', '.join(OPTION_NAMES)}")
        if name in MULTICAST_OPTIONS and self.family == "local":
            raise ValueError(f"{name} is a UDP option; a local socket has none")
    self._check_open()
    wanted = names or [n for n in OPTION_NAMES if self.family != "local" or n not in MULTICAST_OPTIONS]
    out: dict[str, Any] = {}
    try:
        for name in wanted:
            own = _OWN.get(name)
            if own is not None:
                out[name] = own(self)
            elif name in _KERNEL:
                out[name] = self._sock.getsockopt(*_KERNEL[name])
            else:
                out[name] = get_udp_option(self._sock, self.family, name)
    except OSError as exc:
        raise error_from_oserror(exc) from None
    return out


def _ifindex(interface: str | int) -> int:
    if isinstance(interface, int):
        return interface
    try:
        return _socket_mod.if_nametoindex(interface)
    except OSError:
        raise Error("enodev", f"no network interface named {interface!r}", errno=errno.ENODEV) from None


def set_udp_options(sock: _socket_mod.socket, family: Family, checked: dict[str, Any]) -> None:
    """Apply checked broadcast and multicast options (OTP's names) to a UDP socket."""
    v6 = family == "inet6"
    ip_level = _socket_mod.IPPROTO_IPV6 if v6 else _socket_mod.IPPROTO_IP
    if "broadcast" in checked:
        sock.setsockopt(_SOL, _socket_mod.SO_BROADCAST, int(checked["broadcast"]))
    if "multicast_if" in checked:
        iface = checked["multicast_if"]
        if v6:
            sock.setsockopt(ip_level, _socket_mod.IPV6_MULTICAST_IF, _ifindex(iface))
        else:
            sock.setsockopt(ip_level, _socket_mod.IP_MULTICAST_IF, _socket_mod.inet_aton(iface))
    if "multicast_loop" in checked:
        loop = _socket_mod.IPV6_MULTICAST_LOOP if v6 else _socket_mod.IP_MULTICAST_LOOP
        sock.setsockopt(ip_level, loop, int(checked["multicast_loop"]))
    if "multicast_ttl" in checked:
        ttl = _socket_mod.IPV6_MULTICAST_HOPS if v6 else _socket_mod.IP_MULTICAST_TTL
        sock.setsockopt(ip_level, ttl, checked["multicast_ttl"])
    for name, join4, join6 in (
        ("add_membership", _socket_mod.IP_ADD_MEMBERSHIP, _socket_mod.IPV6_JOIN_GROUP),
        ("drop_membership", _socket_mod.IP_DROP_MEMBERSHIP, _socket_mod.IPV6_LEAVE_GROUP),
    ):
        for group, iface in checked.get(name, ()):
            if v6:
                mreq = _socket_mod.inet_pton(_socket_mod.AF_INET6, group) + struct.pack("@I", _ifindex(iface))
                sock.setsockopt(ip_level, join6, mreq)
            else:
                sock.setsockopt(ip_level, join4, _socket_mod.inet_aton(group) + _socket_mod.inet_aton(iface))


def get_udp_option(sock: _socket_mod.socket, family: Family, name: str) -> Any:
    """Read one of the broadcast and multicast options back from the kernel."""
    v6 = family == "inet6"
    ip_level = _socket_mod.IPPROTO_IPV6 if v6 else _socket_mod.IPPROTO_IP
    if name == "broadcast":
        return bool(sock.getsockopt(_SOL, _socket_mod.SO_BROADCAST))
    if name == "multicast_if":
        if v6:
            return sock.getsockopt(ip_level, _socket_mod.IPV6_MULTICAST_IF)
        return _socket_mod.inet_ntoa(sock.getsockopt(ip_level, _socket_mod.IP_MULTICAST_IF, 4))
    if name == "multicast_loop":
        return bool(sock.getsockopt(ip_level, _socket_mod.IPV6_MULTICAST_LOOP if v6 else _socket_mod.IP_MULTICAST_LOOP))
    assert name == "multicast_ttl", name
    return sock.getsockopt(ip_level, _socket_mod.IPV6_MULTICAST_HOPS if v6 else _socket_mod.IP_MULTICAST_TTL)


def kernel_drops(self: Socket) -> int | None:
    """Datagrams the kernel dropped for this UDP socket (its queue was full): the counter that
    SO_RXQ_OVFL reports, read from /proc/net/udp{,6} by inode. None for local sockets, whose
    senders wait instead."""
    if self.family == "local" or self.fileno() < 0:
        return None
    try:
        inode = str(os.fstat(self._fd).st_ino)
        with builtins.open("/proc/net/udp6" if self.family == "inet6" else "/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[9] == inode:
                    return int(fields[-1])
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return None
