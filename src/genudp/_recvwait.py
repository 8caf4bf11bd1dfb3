"""Receiving in passive mode, beyond ``recv``'s fast path: timeouts, credentials, inside a loop.

Rules (as for sending, ``_sendwait``):
- A datagram is taken from the kernel exactly once, and returned; a ``recv`` that raises took
  nothing. The owner's thread is the only reader, so the counters need no lock.
- Without a timeout, ``recv`` waits in the kernel (one blocking ``recvfrom``, the GIL released),
  and ``close()`` wakes it with ``shutdown(SHUT_RD)``: it returns 0 bytes and sees the socket
  closing. With a timeout it waits in ``poll`` on the socket and its close eventfd.
- Never inside a running event loop, which a wait would block: there ``recv`` only looks, and
  a task uses ``arecv`` (``_aio_io``).

The functions are ``Socket`` methods (bound in ``_socket.py``); ``recv_slow`` holds the fd
guard as ``_socket.py``'s essay says.
"""

from __future__ import annotations

import mmap
import socket as _socket_mod
import time
from typing import TYPE_CHECKING, Any, Final

from ._errors import Error, Timeout, error_from_oserror
from ._libc import MSG_TRUNC, POLLIN, buffer, recv_credentials
from ._process import running_loop
from ._sendwait import bounded

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("read", "recv_slow", "recv_wait", "result")

#: A receive that waits in the kernel (recv without a timeout).
_TRUNC_WAIT: Final = _socket_mod.MSG_TRUNC


def recv_slow(self: Socket, limit: float | None) -> tuple[Any, ...]:
    """``recv`` with a timeout (``limit`` seconds, None: forever), with credentials, or in a
    running event loop (only looks)."""
    self._check_recv()
    users = self._users
    try:
        users.append(None)  # fd guard: first statement of the try that releases it
        if self._state:
            raise Error("closed", "the socket is closed")
        got = -1
        buf, view = buffer()
        anc: dict[str, int] | None = None
        try:
            if limit is None and running_loop() is None:
                got, source, anc = self._read(buf, _TRUNC_WAIT)  # waits in the kernel (see recv)
                if self._state:
                    raise Error("closed", "the socket was closed while waiting")
            else:
                try:
                    got, source, anc = self._read(buf)
                except BlockingIOError:
                    pass
                if got < 0:
                    got, source, anc = self._recv_wait(buf, limit)
        except OSError as exc:
            if isinstance(exc, Error):
                raise
            raise error_from_oserror(exc) from None
        c = self._recv_counters  # the owner's thread only: no lock (see _counters)
        c.received += 1
        c.bytes_received += got
        if got > len(buf):
            c.truncated += 1
        return self._result(got, source, anc, view)
    finally:
        users.pop()
        if self._state and not users:
            self._leave_closed()


def read(self: Socket, buf: mmap.mmap, flags: int = MSG_TRUNC) -> tuple[int, Any, dict[str, int] | None]:
    """One datagram into ``buf``: (length, source, credentials or None). Non-blocking unless
    ``flags`` says otherwise."""
    if self._credentials:
        return recv_credentials(self._sock, buf, flags)
    got, source = self._sock.recvfrom_into(buf, 0, flags)
    return got, source, None


def result(self: Socket, got: int, source: Any, anc: dict[str, int] | None, view: memoryview) -> tuple[Any, ...]:
    address, port = self._convert(source)
    if self._credentials:
        return address, port, anc, view[:got].tobytes()
    return address, port, view[:got].tobytes()


def recv_wait(self: Socket, buf: mmap.mmap, limit: float | None) -> tuple[int, Any, dict[str, int] | None]:
    if limit == 0:
        raise Timeout("no datagram waiting")
    if running_loop() is not None:
        raise RuntimeError("recv() would block the running event loop; in a task use `await sock.arecv(...)`")
    deadline = None if limit is None else time.monotonic() + limit
    efd = self._eventfd()
    while True:
        waited = bounded(None, deadline)
        if waited is not None and waited <= 0:
            raise Timeout(f"no datagram within {limit} s")
        self._sleep(efd, self._fd, POLLIN, waited)
        try:
            return self._read(buf)
        except BlockingIOError:
            continue
