"""Socket options and the active-mode state machine.

Rule 1: everything that decides what ``active`` becomes lives here, as pure functions over plain
values, so that the rules can be tested exhaustively without a socket. The socket layer only calls
:func:`set_active` when a caller changes the mode and :func:`after_delivery` when it delivers a
datagram, and does what the returned :class:`Transition` says.

Theory of operation (OTP's inet rules, lib/kernel/src/inet.erl ``{active, N}``):

============================  ==================  =====================================
current mode                  requested / event   result
============================  ==================  =====================================
any                           True/False/"once"   that mode; no message
int count c                   int n               c + n: <= 0 passive + udp_passive,
                                                  > 32767 error einval (unchanged)
True / False / "once"         int n               n (the count starts from 0)
True                          datagram delivered  True
"once"                        datagram delivered  False (no udp_passive: that is OTP's)
int count c                   datagram delivered  c - 1; at 0 passive + udp_passive
============================  ==================  =====================================

A mode is ``True``, ``False``, ``"once"`` or a positive ``int`` (the remaining count). Counts
are kept within -32768..32767 as OTP does; a request outside that range is "einval".
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from ._address import Family, check_family, check_port
from ._errors import Error

__all__ = (
    "Active",
    "Mode",
    "ACTIVE_MIN",
    "ACTIVE_MAX",
    "Transition",
    "check_active",
    "set_active",
    "after_delivery",
    "delivery_budget",
    "check_timeout",
    "FOREVER_AFTER",
    "check_bufsize",
    "check_bool",
    "check_watermarks",
    "check_membership",
    "check_multicast_if",
    "check_multicast_ttl",
    "Membership",
    "MULTICAST_OPTIONS",
    "HIGH_MSGQ_WATERMARK",
    "LOW_MSGQ_WATERMARK",
    "OPTION_NAMES",
    "SETTABLE",
    "check_file_options",
    "check_open_args",
    "check_settable",
)

#: What callers pass as ``active``: True, False, "once", or a count -32768..32767.
Active: TypeAlias = bool | Literal["once"] | int
#: What a socket holds: True, False, "once" or a positive remaining count.
Mode: TypeAlias = bool | Literal["once"] | int

ACTIVE_MIN: Final = -32768
ACTIVE_MAX: Final = 32767

#: Every option name ``getopts`` knows, in the order it reports them.
OPTION_NAMES: Final = (
    "active",
    "recbuf",
    "sndbuf",
    "reuseaddr",
    "reuseport",
    "send_timeout",
    "high_msgq_watermark",
    "low_msgq_watermark",
    "broadcast",
    "multicast_if",
    "multicast_loop",
    "multicast_ttl",
)
#: UDP-only options, with OTP's names. add_membership and drop_membership are actions: they can be
#: given to ``open`` and ``setopts`` but not read back, as in OTP.
MULTICAST_OPTIONS: Final = frozenset(
    ("broadcast", "multicast_if", "multicast_loop", "multicast_ttl", "add_membership", "drop_membership")
)
#: The ones ``setopts`` may change after ``open``.
SETTABLE: Final = (
    frozenset(("active", "recbuf", "sndbuf", "send_timeout", "high_msgq_watermark", "low_msgq_watermark"))
    | MULTICAST_OPTIONS
)
#: Default mailbox watermarks, in messages (OTP's are bytes of a port's queue; see the README).
HIGH_MSGQ_WATERMARK: Final = 8192
LOW_MSGQ_WATERMARK: Final = 4096


@dataclass(frozen=True, slots=True)
class Transition:
    """What a mode change does: the new mode and whether to send ``("udp_passive", sock)``."""

    mode: Mode
    passive_message: bool


def _type_name(value: object) -> str:
    return type(value).__name__


def check_active(value: object) -> Active:
    """Check the type of an ``active`` value.

    Raises:
        TypeError: not a bool, "once" or int.
        ValueError: a str other than "once".
    """
    if value is True or value is False or type(value) is int:
        return value
    if isinstance(value, str):
        if value == "once":
            return "once"
        raise ValueError(f"active must be True, False, 'once' or an int count; got {value!r}")
    raise TypeError(f"active must be True, False, 'once' or an int count; got {_type_name(value)}")


def set_active(current: Mode, requested: Active) -> Transition:
    """Apply ``setopts(active=requested)`` to a socket whose mode is ``current``.

    Raises:
        Error: reason "einval" when the resulting count is outside -32768..32767.
    """
    requested = check_active(requested)
    if requested is True or requested is False or requested == "once":
        return Transition(requested, False)
    assert type(requested) is int
    if not ACTIVE_MIN <= requested <= ACTIVE_MAX:
        raise Error("einval", f"active count must be within {ACTIVE_MIN}..{ACTIVE_MAX}; got {requested}")
    base = current if type(current) is int else 0
    count = base + requested
    if count > ACTIVE_MAX:
        raise Error(
            "einval",
            f"active count {base} + {requested} = {count} exceeds {ACTIVE_MAX}",
        )
    if count <= 0:
        return Transition(False, True)
    return Transition(count, False)


def after_delivery(current: Mode, count: int = 1) -> Transition:
    """The mode after ``count`` datagrams (1 <= count <= ``delivery_budget(current)``) were
    delivered to the owner's mailbox in one batch."""
    budget = delivery_budget(current)
    if not 1 <= count <= budget:
        raise ValueError(f"cannot deliver {count} datagram(s) in mode {current!r} (budget {budget})")
    if current is True:
        return Transition(True, False)
    if current == "once":
        return Transition(False, False)
    assert type(current) is int
    if count == current:
        return Transition(False, True)
    return Transition(current - count, False)


def delivery_budget(current: Mode) -> int:
    """How many datagrams may be delivered before the mode must change (0: passive)."""
    if current is True:
        return 1 << 30
    if current == "once":
        return 1
    if current is False:
        return 0
    assert type(current) is int
    return current


#: A finite timeout longer than this (about 31 years) waits forever: every wait genudp makes can
#: express it, in slices where the platform's own limit is shorter (poll's 24.8 days).
FOREVER_AFTER: Final = 1e9


def check_timeout(value: object, what: str = "timeout") -> float | None:
    """Check a timeout in seconds: ``None`` (forever) or a number >= 0; above
    :data:`FOREVER_AFTER` (and infinity) it is forever."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be None or a number of seconds >= 0; got {_type_name(value)}")
    if value < 0 or (type(value) is not int and math.isnan(value)):  # isnan(10**400) overflows
        raise ValueError(f"{what} must be None or a number of seconds >= 0; got {value!r}")
    if value > FOREVER_AFTER:
        return None
    return float(value)


def check_bufsize(value: object, what: str) -> int | None:
    """Check a buffer size (recbuf, sndbuf): ``None`` (kernel default) or an int >= 1."""
    if value is None:
        return None
    if type(value) is not int:
        raise TypeError(f"{what} must be None or an int number of bytes; got {_type_name(value)}")
    if value < 1 or value > 2**31 - 1:
        raise ValueError(f"{what} must be within 1..{2**31 - 1} bytes; got {value}")
    return value


def check_watermarks(high: object, low: object) -> tuple[int, int]:
    """Check a mailbox (high, low) watermark pair: ints, 1 <= low <= high."""
    for name, value in (("high_msgq_watermark", high), ("low_msgq_watermark", low)):
        if type(value) is not int:
            raise TypeError(f"{name} must be an int number of messages; got {_type_name(value)}")
        if value < 1:
            raise ValueError(f"{name} must be at least 1 message; got {value}")
    assert type(high) is int and type(low) is int
    if low > high:
        raise ValueError(f"low_msgq_watermark ({low}) must not exceed high_msgq_watermark ({high})")
    return high, low


def check_bool(value: object, what: str) -> bool:
    """Check a flag option."""
    if value is not True and value is not False:
        raise TypeError(f"{what} must be True or False; got {_type_name(value)}")
    return value


#: A checked group membership: (group address, interface). The interface is an IPv4 address
#: (inet; "0.0.0.0" lets the kernel choose) or an interface index (inet6; 0 lets it choose) or an
#: interface name still to be resolved to its index (inet6).
Membership: TypeAlias = tuple[str, "str | int"]


def _family_check(family: str, what: str) -> None:
    if family not in ("inet", "inet6"):
        raise ValueError(f"{what} is a UDP option; a {family} socket has no multicast or broadcast")


def _ip_of(value: object, family: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be an IP address literal (str); got {_type_name(value)}")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{what} must be an IP address literal; got {value!r}") from None
    want = 4 if family == "inet" else 6
    if ip.version != want:
        raise ValueError(f"{what} must be an IPv{want} address on an {family} socket; got {value!r}")
    return ip


def _interface_of(value: object, family: str, what: str) -> str | int:
    if family == "inet":
        return str(_ip_of(value, family, what))
    if type(value) is int:
        if not 0 <= value <= 2**32 - 1:
            raise ValueError(f"{what} must be an interface index in 0..{2**32 - 1} (0: any) or a name; got {value}")
        return value
    if isinstance(value, str) and value and "\0" not in value and len(value) < 16:
        return value
    raise TypeError(f"{what} must be an interface index (int, 0: any) or name (str) on an inet6 socket; got {value!r}")


def check_membership(value: object, family: str, what: str) -> list[Membership]:
    """Check ``add_membership``/``drop_membership``: ``(group, interface)``, a bare group (any
    interface), or a list of those. The group must be a multicast address of the family."""
    _family_check(family, what)
    items = value if isinstance(value, list) else [value]
    out: list[Membership] = []
    anywhere: str | int = "0.0.0.0" if family == "inet" else 0
    for item in items:
        if isinstance(item, str):
            group, iface = item, anywhere
        elif isinstance(item, tuple) and len(item) == 2:
            group, iface = item
        else:
            raise TypeError(f"{what} must be (group, interface), a group address, or a list of them; got {item!r}")
        ip = _ip_of(group, family, f"{what} group")
        if not ip.is_multicast:
            raise ValueError(f"{what} group must be a multicast address; {group!r} is not")
        out.append((str(ip), _interface_of(iface, family, f"{what} interface")))
    return out


def check_multicast_if(value: object, family: str) -> str | int:
    """``multicast_if``: the interface multicast goes out of: an IPv4 address (inet), or an
    interface index or name (inet6)."""
    _family_check(family, "multicast_if")
    return _interface_of(value, family, "multicast_if")


def check_multicast_ttl(value: object) -> int:
    """``multicast_ttl`` (IPv6: hop limit): an int 0..255."""
    if type(value) is not int:
        raise TypeError(f"multicast_ttl must be an int 0..255; got {_type_name(value)}")
    if not 0 <= value <= 255:
        raise ValueError(f"multicast_ttl must be within 0..255; got {value}")
    return value


# -- the argument checks of open() and setopts(): nothing is created or changed before these ----


def check_settable(opts: dict[str, object], family: Family) -> dict[str, Any]:
    """Check ``setopts(**opts)`` (and ``open()``'s UDP options) for a ``family`` socket; returns
    the checked values. Watermarks are checked as a pair by the caller (:func:`check_watermarks`).

    Raises:
        ValueError, TypeError: an unknown option, an option ``setopts`` cannot change, or a
            malformed value.
    """
    out: dict[str, Any] = {}
    for name, value in opts.items():
        if name not in SETTABLE:
            if name in OPTION_NAMES:
                raise ValueError(
                    f"option {name!r} can only be given to open(); setopts takes {', '.join(sorted(SETTABLE))}"
                )
            raise ValueError(f"unknown option {name!r}; setopts takes {', '.join(sorted(SETTABLE))}")
        if name == "active":
            out[name] = check_active(value)
        elif name in ("recbuf", "sndbuf"):
            out[name] = check_bufsize(value, name)
        elif name == "send_timeout":
            out[name] = check_timeout(value, "send_timeout")
        elif name in MULTICAST_OPTIONS:
            out[name] = _check_udp_option(name, value, family)
        else:
            out[name] = value  # a watermark: checked with its partner
    return out


def _check_udp_option(name: str, value: object, family: Family) -> Any:
    if family == "local":
        raise ValueError(f"{name} is a UDP option; a local socket has no multicast or broadcast")
    if name in ("add_membership", "drop_membership"):
        return check_membership(value, family, name)
    if name == "multicast_if":
        return check_multicast_if(value, family)
    if name == "multicast_ttl":
        return check_multicast_ttl(value)
    return check_bool(value, name)  # broadcast, multicast_loop


def check_open_args(port: object, family: object, ip: object, path: object) -> Family:
    """Check how ``open()`` was asked to bind; returns the family."""
    fam = check_family(family) if family is not None else ("local" if path is not None else "inet")
    check_port(port)
    if fam == "local":
        if ip is not None:
            raise ValueError("ip= is for inet/inet6 sockets; a local socket takes path=")
        if port != 0:
            raise ValueError(f"port must be 0 for a local socket; got {port}")
    else:
        if path is not None:
            raise ValueError(f"path= is for local sockets; a {fam} socket takes ip= and port")
        if ip is not None and not isinstance(ip, str):
            raise TypeError(f"ip must be a str address; got {type(ip).__name__}")
    return fam


def check_file_options(mode: object, unlink_stale: object, path: object) -> int | None:
    """Check ``open()``'s ``mode`` and ``unlink_stale``; returns the file mode or None."""
    check_bool(unlink_stale, "unlink_stale")
    if mode is None:
        return None
    if type(mode) is not int:
        raise TypeError(f"mode must be an int such as 0o600; got {type(mode).__name__}")
    if not 0 <= mode <= 0o777:
        raise ValueError(f"mode must be within 0o000..0o777; got {oct(mode)}")
    if not isinstance(path, str) or path.startswith("\0"):
        raise ValueError("mode= needs a filesystem path: abstract names and unbound sockets have no file")
    return mode
