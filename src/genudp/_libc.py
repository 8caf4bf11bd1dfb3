"""The calls genudp makes through ctypes, and the buffers datagrams are read into.

What this module owns, and why it exists (DESIGN.md §2):

- ``poll`` through libc (:class:`Sleeper`): ``select.poll`` restarts after EINTR by itself
  (PEP 475), so genudp could not count the signals that interrupt its waits; libc's ``poll``
  reports them, and ctypes releases the GIL while it sleeps.
- ``sendto`` through libc (:class:`KernelSend`): a blocking ``sendto`` to a full Unix-domain
  receiver sleeps *in the kernel* until there is room, and the kernel wakes blocked senders one
  per freed slot, in order. Python's ``socket.sendto`` would retry EINTR itself; this one
  reports it, and converts its arguments once (a signal storm repeats the call every ms).
- ``struct sockaddr_un`` and ``struct timeval`` as bytes, and ``SCM_CREDENTIALS``.
- One receive buffer per thread (:func:`buffer`): anonymous memory as large as the largest
  datagram a local sender can make, so that a read never truncates and costs no allocation.

Nothing here knows about sockets' state, owners or mailboxes: these are leaf functions.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import mmap
import os
import select
import socket as _socket_mod
import struct
import threading
from typing import Any, Final, TypeAlias

__all__ = (
    "CREDS_SPACE",
    "C_SENDTO",
    "RECV_BUFSIZE",
    "Bytes",
    "KernelSend",
    "Sleeper",
    "buffer",
    "credentials",
    "poller",
    "recv_credentials",
    "sockaddr_un",
    "timeval",
    "writable_now",
)

#: What ``send`` takes as a datagram.
Bytes: TypeAlias = bytes | bytearray | memoryview

POLLIN: Final = select.POLLIN
POLLOUT: Final = select.POLLOUT
#: Reads never block (waits happen in poll), and report a datagram's real length.
MSG_TRUNC: Final = _socket_mod.MSG_TRUNC | _socket_mod.MSG_DONTWAIT


def _recv_bufsize() -> int:
    # The largest datagram a local sender can make is bounded by its send buffer, which an
    # unprivileged process can raise to 2 * net.core.wmem_max. Reading into one buffer of that
    # size per thread (and copying out only what arrived) costs no allocation per datagram.
    try:
        with builtins.open("/proc/sys/net/core/wmem_max") as f:
            return max(65536, 2 * int(f.read()) + 4096)
    except (OSError, ValueError):
        return 1 << 19


RECV_BUFSIZE: Final = _recv_bufsize()
buffers = threading.local()


def buffer() -> tuple[mmap.mmap, memoryview]:
    """This thread's receive buffer: anonymous memory, so pages a datagram never reaches are
    never touched (a zero-filled bytearray of this size costs milliseconds of page faults).
    Hot paths read ``buffers.pair`` themselves and call this only on AttributeError."""
    try:
        pair: tuple[mmap.mmap, memoryview] = buffers.pair
        return pair
    except AttributeError:
        buf = mmap.mmap(-1, RECV_BUFSIZE)
        pair = (buf, memoryview(buf))
        buffers.pair = pair
        return pair


class _PollFd(ctypes.Structure):
    _fields_ = (("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short))


def _libc_function(name: str, argtypes: tuple[Any, ...], restype: Any) -> Any:
    """A libc function through ctypes (which releases the GIL while it runs), with errno kept;
    None where there is no such libc (genudp then falls back to select.poll)."""
    try:
        fn = ctypes.CDLL(None, use_errno=True)[name]
    except (OSError, AttributeError):  # pragma: no cover - not on Linux/glibc or musl
        return None
    fn.argtypes = argtypes
    fn.restype = restype  # exactly the C type: an int read as 64 bits would turn -1 into 2**32 - 1
    return fn


_C_POLL: Final = _libc_function("poll", (ctypes.POINTER(_PollFd), ctypes.c_ulong, ctypes.c_int), ctypes.c_int)
C_SENDTO: Final = _libc_function(
    "sendto",
    (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint),
    ctypes.c_ssize_t,
)
_NO_FLAGS: Final = ctypes.c_int(0)


class Sleeper:
    """poll(2) on a close eventfd and one fd, called through ctypes (which releases the GIL).

    The pollfd array is built once per wait and reused after each interruption. A Python signal
    handler still runs, in the main thread, as soon as Python code runs there; if it raises in
    the waiting thread, the exception ends the wait, and nothing was sent or taken.
    """

    __slots__ = ("_count", "_fallback", "_fds")

    def __init__(self, efd: int, fd: int, mask: int) -> None:
        self._fallback: select.poll | None = None
        self._count = 2 if fd >= 0 else 1
        self._fds = (_PollFd * 2)(_PollFd(efd, POLLIN, 0), _PollFd(fd, mask, 0))
        if _C_POLL is None:  # pragma: no cover - no libc poll via ctypes
            self._fallback = poller(efd, fd, mask)

    def sleep(self, timeout_ms: int | None) -> int:
        """Ready fd count (0: timed out), or -1 when a signal interrupted the sleep."""
        if self._fallback is not None:  # pragma: no cover
            return len(self._fallback.poll(timeout_ms))
        n: int = _C_POLL(self._fds, self._count, -1 if timeout_ms is None else timeout_ms)
        if n < 0:
            code = ctypes.get_errno()
            if code == errno.EINTR:
                return -1
            raise OSError(code, os.strerror(code))
        return n


def poller(efd: int, fd: int, mask: int) -> select.poll:
    """A ``select.poll`` on ``efd`` (readable) and ``fd`` (for ``mask``; none if negative)."""
    p = select.poll()
    p.register(efd, POLLIN)
    if fd >= 0:
        p.register(fd, mask)
    return p


def writable_now(efd: int, fd: int) -> bool:
    """Whether ``fd`` reports POLLOUT right now (and raise nothing: close shows via efd)."""
    return any(ready == fd for ready, _ in poller(efd, fd, POLLOUT).poll(0))


CREDS_SPACE: Final = _socket_mod.CMSG_SPACE(12)  # struct ucred: pid, uid, gid


def credentials(ancillary: list[tuple[int, int, bytes]]) -> dict[str, int] | None:
    """The sender's {"pid", "uid", "gid"} from recvmsg's ancillary data (SCM_CREDENTIALS)."""
    for level, kind, data in ancillary:
        if level == _socket_mod.SOL_SOCKET and kind == _socket_mod.SCM_CREDENTIALS and len(data) >= 12:
            pid, uid, gid = struct.unpack("iII", data[:12])
            return {"pid": pid, "uid": uid, "gid": gid}
    return None


def recv_credentials(
    sock: _socket_mod.socket, buf: mmap.mmap, flags: int = MSG_TRUNC
) -> tuple[int, Any, dict[str, int] | None]:
    """recvmsg with SCM_CREDENTIALS: (length, source, {"pid", "uid", "gid"} or None)."""
    got, ancillary, _flags, source = sock.recvmsg_into([buf], CREDS_SPACE, flags)
    return got, source, credentials(ancillary)


def timeval(seconds: float) -> bytes:
    """A struct timeval for SO_SNDTIMEO, never all zero: a zero timeout means block forever."""
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    return struct.pack("ll", whole, micros if whole or micros else 1)


class _SockaddrUn(ctypes.Structure):
    _fields_ = (("sun_family", ctypes.c_ushort), ("sun_path", ctypes.c_char * 108))


def sockaddr_un(dest: Any) -> tuple[Any, ctypes.c_uint]:
    """(pointer to a sockaddr_un for ``dest``, its length); (None, 0) for a connected send."""
    if dest is None:
        return None, ctypes.c_uint(0)
    path = os.fsencode(dest) if isinstance(dest, (str, os.PathLike)) else bytes(dest)
    if len(path) > 108:
        raise ValueError(f"dest is {len(path)} bytes; a Unix-domain address holds at most 108")
    addr = _SockaddrUn(_socket_mod.AF_UNIX)
    ctypes.memmove(ctypes.addressof(addr) + _SockaddrUn.sun_path.offset, path, len(path))
    # Abstract names are exactly their bytes; a path is NUL-terminated when it fits.
    extra = 0 if path.startswith(b"\0") or len(path) == 108 else 1
    return ctypes.pointer(addr), ctypes.c_uint(_SockaddrUn.sun_path.offset + len(path) + extra)


class KernelSend:
    """One datagram, ready to hand to libc's sendto again and again (``_sendwait``).

    Arguments are converted once: a signal storm makes the call repeat every millisecond.
    """

    __slots__ = ("_addr", "_addrlen", "_data", "_fd", "_size")

    def __init__(self, fd: ctypes.c_int, data: Bytes, target: tuple[Any, ctypes.c_uint]) -> None:
        self._fd = fd
        raw = data if type(data) is bytes else bytes(data)  # immutable: safe to point into
        self._data = ctypes.c_char_p(raw)
        self._size = ctypes.c_size_t(len(raw))
        self._addr, self._addrlen = target

    def send(self) -> int:
        """Bytes sent, or -1 with errno set (EAGAIN: the slice ran out; EINTR: a signal)."""
        n: int = C_SENDTO(self._fd, self._data, self._size, _NO_FLAGS, self._addr, self._addrlen)
        return n
