"""genudp's exceptions: who is at fault decides the type.

- The caller passed something malformed: ``TypeError`` / ``ValueError``, raised at once, naming
  what was expected and what arrived. Nothing was sent or changed.
- The operating system or the other end said no, or the socket was closed: :class:`Error`, an
  ``OSError`` whose ``reason`` is gen_udp's lower-case reason name ("eagain", "enoent",
  "closed", "not_owner", ...), with ``errno`` set where the OS gave one.
- A wait ran out: :class:`Timeout`, which is both an :class:`Error` (reason "timeout") and a
  built-in ``TimeoutError``.

This module is part of the pure core: it imports nothing that does I/O.
"""

from __future__ import annotations

import errno as _errno
import os

__all__ = ("Error", "Timeout", "reason_of_errno", "error_from_oserror")


def reason_of_errno(code: int) -> str:
    """Return gen_udp's reason name for an errno value, e.g. 11 -> "eagain"."""
    if code == _errno.EWOULDBLOCK:
        return "eagain"
    name = _errno.errorcode.get(code)
    return name.lower() if name else f"errno{code}"


class Error(OSError):
    """An operation failed for a reason outside the caller's arguments.

    The OS refused (``errno`` is set, ``reason`` is its lower-case name), the peer is gone, the
    socket is closed ("closed"), or the caller may not do this ("not_owner", "badarg",
    "einval"). The datagram or request that raised it did not take effect.

    Attributes:
        reason: gen_udp's reason name in lower case.
        errno: the OS error number, or ``None`` when the reason is genudp's own.
    """

    reason: str

    def __init__(self, reason: str, message: str | None = None, *, errno: int | None = None) -> None:
        text = message if message is not None else _default_text(reason, errno)
        if errno is None:
            super().__init__(text)
        else:
            super().__init__(errno, text)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason}: {self.strerror if self.errno is not None else self.args[0]}"

    def __reduce__(self) -> tuple[object, ...]:
        message = self.strerror if self.errno is not None else self.args[0]
        return (_rebuild, (type(self), self.reason, message, self.errno))


class Timeout(Error, TimeoutError):
    """A blocking call's timeout ran out before it could complete; nothing took effect.

    Raised by ``genudp.receive``, ``Socket.recv`` and ``Socket.send``. It is a
    :class:`genudp.Error` with reason "timeout" and a ``TimeoutError``, so either
    ``except`` catches it.
    """

    def __init__(self, message: str = "timed out") -> None:
        super().__init__("timeout", message)


def _rebuild(cls: type[Error], reason: str, message: str, code: int | None) -> Error:
    if cls is Timeout:
        return Timeout(message)
    return cls(reason, message, errno=code)


def _default_text(reason: str, code: int | None) -> str:
    if code is not None:
        return os.strerror(code)
    return reason


def error_from_oserror(exc: OSError, context: str = "") -> Error:
    """Turn an ``OSError`` from a syscall into :class:`Error`, keeping its errno."""
    code = exc.errno
    if code is None:
        return Error("einval", f"{exc}{context}")
    return Error(reason_of_errno(code), f"{os.strerror(code)}{context}", errno=code)
