"""Receiving in passive mode: ``recv`` beyond its fast path (timeouts, credentials, inside a
loop), and how a datagram taken from the kernel is kept until the caller has it.

Rules:

- A datagram is taken from the kernel exactly once and returned exactly once; a ``recv`` that
  raises took nothing (or left what it took for the next call, below). Only the owner reads, so
  the counters need no lock.
- Rule 1 of interrupts: a datagram read from the kernel is *stored* before any Python code can
  run. A signal handler runs only between bytecodes (after a call returns, at a function's
  start, at a loop's back edge), never inside a C call: so the read is made inside one C call
  that also stores its result, ``held.extend(map(sock.recvfrom_into, ...))``, into the
  socket's ``_held`` deque, reading into the socket's own buffer (``_rbuf``: another socket's
  read in this thread cannot overwrite it). An exception after that leaves the datagram held,
  and the next ``recv`` or ``arecv`` returns it first, in order.
- Rule 2: :func:`take_held` hands it over. It builds the result, then commits: the ``popleft``
  that gives the entry up is the last call before the ``return``, inside a ``try`` whose
  ``except`` puts the entry back if an exception landed right after it. Nothing can be lost
  between the commit and the caller: a Python function returns to its caller without a point
  where a handler could run.
- Without a timeout, ``recv`` waits in the kernel (one blocking read, the GIL released), and
  ``close()`` wakes it with ``shutdown(SHUT_RD)``: it returns 0 bytes and sees the socket
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
from itertools import starmap
from typing import TYPE_CHECKING, Any, Final

from ._errors import Error, Timeout, error_from_oserror
from ._libc import CREDS_SPACE, MSG_TRUNC, POLLIN, RECV_BUFSIZE, credentials
from ._process import current, running_loop
from ._sendwait import bounded

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("check_recv", "read_held", "recv_slow", "recv_wait", "take_held")

#: A receive that waits in the kernel (recv without a timeout).
_TRUNC_WAIT: Final = _socket_mod.MSG_TRUNC


def check_recv(self: Socket) -> None:
    """Only the owner may recv, and only on a passive socket."""
    if self._owner is not current():
        raise Error("not_owner", f"only the owner {self._owner!r} may recv on this socket")
    if self._mode is not False:
        raise Error("einval", f"recv needs a passive socket (active=False); this one is active={self._mode!r}")


def recv_slow(self: Socket, limit: float | None) -> tuple[Any, ...]:
    """``recv`` with a timeout (``limit`` seconds, None: forever), with credentials, or in a
    running event loop (only looks)."""
    self._check_recv()
    if self._held:
        return self._take_held()  # taken from the kernel by a call an exception cut short
    users = self._users
    try:
        users.append(None)  # fd guard: first statement of the try that releases it
        if self._state:
            raise Error("closed", "the socket is closed")
        try:
            if limit is None and running_loop() is None:
                self._read_held(_TRUNC_WAIT)  # waits in the kernel (see recv)
                if self._state:
                    self._held.clear()  # close's wake-up (0 bytes), or a datagram of a closed socket
                    raise Error("closed", "the socket was closed while waiting")
            else:
                try:
                    self._read_held(MSG_TRUNC)
                except BlockingIOError:
                    self._recv_wait(limit)
        except OSError as exc:
            if isinstance(exc, Error):
                raise
            raise error_from_oserror(exc) from None
    finally:
        users.pop()
        if self._state and not users:
            self._leave_closed()
    return self._take_held()


def rbuf(self: Socket) -> mmap.mmap:
    """The socket's own receive buffer, made on first use (rule 1)."""
    return rbufs(self)[0]


def rbufs(self: Socket) -> tuple[mmap.mmap]:
    """``(rbuf,)``, made on first use: anonymous memory, so pages a datagram never reaches are
    never touched."""
    bufs = self._rbufs
    if bufs is None:
        buf = mmap.mmap(-1, RECV_BUFSIZE)
        self._rbuf, self._rbufs = buf, (buf,)
        bufs = self._rbufs
    return bufs


def read_held(self: Socket, flags: int = MSG_TRUNC) -> None:
    """One datagram from the kernel into ``_held`` (rule 1). Non-blocking unless ``flags`` says
    otherwise (BlockingIOError: none waiting)."""
    buf = self._rbuf if self._rbuf is not None else rbuf(self)
    if self._credentials:
        self._held.extend(starmap(self._sock.recvmsg_into, (([buf], CREDS_SPACE, flags),)))
    else:
        self._held.extend(starmap(self._sock.recvfrom_into, ((buf, 0, flags),)))


def take_held(self: Socket) -> tuple[Any, ...]:
    """The oldest held datagram, as ``recv`` returns it, given up only as the call returns
    (rule 2)."""
    held = self._held
    entry = held[0]
    got = entry[0]
    buf = self._rbuf
    assert buf is not None
    data = buf[:got]
    truncated = got > len(buf)
    if len(entry) == 4:  # recvmsg_into's (nbytes, ancillary, flags, address)
        address, port = self._convert(entry[3])
        result: tuple[Any, ...] = (address, port, credentials(entry[1]), data)
    else:  # recvfrom_into's (nbytes, address)
        address, port = self._convert(entry[1])
        result = (address, port, data)
    c = self._recv_counters  # the owner's thread only: no lock (see _counters)
    try:
        held.popleft()
        c.received += 1
        c.bytes_received += got
        c.truncated += truncated
        return result
    except BaseException:
        # Only the popleft can have run (the counting makes no call): the entry goes back.
        if not held or held[0] is not entry:
            held.appendleft(entry)
        raise


def recv_wait(self: Socket, limit: float | None) -> None:
    """Until a datagram is held: poll on the socket and its close eventfd, ``limit`` seconds."""
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
            return self._read_held(MSG_TRUNC)
        except BlockingIOError:
            continue
