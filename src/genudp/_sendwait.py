"""Sending to a full destination: how a send waits, and what a failed send says.

The rules (DESIGN.md §1-2), which every function here keeps:

1. A send either returns (the kernel accepted the datagram exactly once) or raises (it was not
   sent). Nothing is buffered, nothing is retried after the kernel said yes, and no message
   ever goes to a mailbox on a sender's behalf.
2. The syscall runs first, in the caller's thread, with MSG_DONTWAIT (``Socket.send``). Only
   ``EAGAIN`` leads here, to a wait in the caller's thread.
3. Never wait for POLLOUT on an unconnected Unix-domain sender: it is always "writable".

How each family waits:

- Unix-domain sockets wait *inside the kernel*: a blocking ``sendto`` through ctypes
  (``_libc.KernelSend``, the GIL released). The kernel queues blocked senders and wakes one per
  freed slot; the woken sender retries inside the kernel at once, without needing the GIL. (An
  earlier version waited in poll on a helper socket connected to the destination, as DESIGN.md
  §2 suggests; a woken waiter then had to retake its process's GIL before it could retry, and
  threads of a busy process lost every freed slot to single-threaded processes: measured
  starvation.) ``close()`` cannot wake a thread blocked in ``sendto``, so a send blocks at most
  ``SLICE`` (40 ms, SO_SNDTIMEO) at a time and then looks again: close wakes a waiting send
  within 40 ms; a path re-bound to a new receiver is found on the next slice; a receiver that
  goes away wakes its senders with their error at once.
- UDP waits in ``poll`` on the socket's own POLLOUT, which is accurate there (EAGAIN means our
  own send buffer is full), together with the socket's close eventfd. If POLLOUT says writable
  yet the send fails, it backs off on a timer rather than spin.
- After a local send had to wait, the next ``DIRECT_RUN`` sends go straight into one blocking
  ``sendto`` (:func:`send_direct`): probing a full destination costs as much as a send.

Signals interrupt a wait (EINTR, counted in ``info()``); if the handler returns, the wait goes
on; if it raises, the send raises, unsent.

The functions taking ``self`` are ``Socket`` methods (bound in ``_socket.py``); each runs with
the caller holding the socket's fd guard.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket as _socket_mod
import threading
import time
from _thread import get_ident as _get_ident
from typing import TYPE_CHECKING, Any, Final

from ._address import check_inet_dest, check_local_path, format_address, format_local
from ._counters import DirectCounters
from ._errors import Error, Timeout, error_from_oserror
from ._libc import C_SENDTO, POLLOUT, Bytes, KernelSend, Sleeper, sockaddr_un, timeval, writable_now
from ._options import check_timeout
from ._process import running_loop

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("DIRECT_RUN", "FIRST_TICK", "MAX_TICK", "SLICE", "UNSET", "Unset", "bounded")

_DONTWAIT: Final = _socket_mod.MSG_DONTWAIT
#: After a send had to wait, this many sends on the socket go straight into a blocking call.
DIRECT_RUN: Final = 64
#: The longest a send blocks in the kernel before it looks for close().
SLICE: Final = 0.04
#: A wait that found both sides writable yet could not send backs off on a timer from this
#: many seconds, doubling to MAX_TICK (asend waits on the same schedule).
FIRST_TICK: Final = 0.005
#: The longest one poll(2) may sleep: an int of milliseconds.
_MAX_POLL_MS: Final = 2**31 - 1
MAX_TICK: Final = 0.1


class Unset:
    """The type of :data:`UNSET`: ``send``'s timeout when the caller gave none."""

    def __repr__(self) -> str:
        return "<socket's send_timeout>"


UNSET: Final = Unset()


def bounded(timer: float | None, deadline: float | None) -> float | None:
    """Seconds to wait: the timer, cut short by the deadline (None: forever)."""
    if deadline is None:
        return timer
    remaining = deadline - time.monotonic()
    if timer is None or remaining <= 0:
        return remaining
    return min(timer, remaining)


def send_slow(self: Socket, data: Bytes, dest: Any, timeout: float | Unset | None, full: bool) -> None:
    """``send`` when the socket is closed, a direct send is due, or the destination was
    ``full`` at the first attempt. The caller holds the fd guard."""
    if self._state:
        raise Error("closed", "the socket is closed")
    sent = -1
    direct = 0.0
    try:
        if full:
            pass
        elif (
            self._direct > 0
            and (timeout is None or (timeout is UNSET and self._send_timeout is None))
            and running_loop() is None
        ):
            direct = time.monotonic()
            sent = self._send_direct(data, dest)
        else:
            try:
                sent = self._send_now(data, dest)
            except BlockingIOError:
                pass
        if sent < 0:
            # Outside the except clause, so errors from the wait carry no BlockingIOError context.
            sent = self._send_wait(data, dest, timeout)
            if self.family == "local":
                self._direct = DIRECT_RUN
    except (OSError, TypeError, ValueError, OverflowError) as exc:
        raise self._send_failure(exc, data, dest) from None
    finally:
        if sent >= 0:
            self._record_sent(sent)
        if direct:
            c = self._direct_counters.get(_get_ident())
            if c is None:
                c = DirectCounters()
                with self._lock:
                    self._direct_counters[_get_ident()] = c
            c.sends += 1
            c.seconds += time.monotonic() - direct


def count_eintr(self: Socket) -> None:
    """A wait a signal interrupted is resumed: count it (unless the socket closed meanwhile)."""
    with self._lock:
        self._counters.eintr_retries += 1
    self._check_waiting()


def send_now(self: Socket, data: Bytes, dest: Any) -> int:
    """One non-blocking attempt (BlockingIOError: full)."""
    return self._sock.send(data, _DONTWAIT) if dest is None else self._sock.sendto(data, _DONTWAIT, dest)


def send_direct(self: Socket, data: Bytes, dest: Any) -> int:
    """The destination was full at a recent send: go straight into a blocking sendto, as a
    plain blocking socket does, instead of probing first. A probe that finds it full costs
    as much as a send (the kernel builds the datagram before it looks at the queue), and
    a sender kept busy by a slow receiver would pay it every time. The call blocks for at
    most a slice (SO_SNDTIMEO); then the counted wait takes over. Every ``DIRECT_RUN``
    sends the socket probes again. Never inside a running event loop, which it would block."""
    self._direct -= 1  # a hint: a lost update between threads only moves the next probe
    try:
        return self._sock.send(data) if dest is None else self._sock.sendto(data, dest)
    except BlockingIOError:
        return -1


def wait_limit(self: Socket, timeout: float | Unset | None) -> float | None:
    """The wait a send may make, per ``timeout``; raises "eagain" for 0."""
    limit = self._send_timeout if isinstance(timeout, Unset) else check_timeout(timeout, "timeout")
    if limit == 0:
        raise Error(
            "eagain",
            "the destination's queue (or this socket's send buffer) is full; not sent (send_timeout=0)",
            errno=errno.EAGAIN,
        )
    return limit


def send_wait(self: Socket, data: Bytes, dest: Any, timeout: float | Unset | None) -> int:
    """Wait for room and send, in the caller's thread; counted as one eagain wait."""
    limit = self._wait_limit(timeout)
    if running_loop() is not None:
        raise RuntimeError(
            "the destination is full and send() would block the running event loop (not sent); "
            "in a task use `await sock.asend(...)`"
        )
    started, cpu_started = time.monotonic(), time.thread_time()
    deadline = None if limit is None else started + limit
    try:
        if self.family == "local" and C_SENDTO is not None:
            return _wait_in_kernel(self, data, dest, deadline, limit)
        return _wait_for_pollout(self, data, dest, deadline, limit)
    finally:
        spent, cpu = time.monotonic() - started, time.thread_time() - cpu_started
        with self._lock:
            c = self._counters
            c.eagain_waits += 1
            c.wait_seconds += spent
            c.wait_cpu_seconds += cpu


def _kernel_send(self: Socket, data: Bytes, dest: Any) -> KernelSend:
    """``data`` ready for libc's sendto to ``dest``. The last destination's sockaddr is kept: a
    sender usually waits on one receiver."""
    target = self._target
    if target is None or target[0] != dest:
        target = self._target = (dest, sockaddr_un(dest))
    return KernelSend(self._c_fd, data, target[1])


def _wait_in_kernel(self: Socket, data: Bytes, dest: Any, deadline: float | None, limit: float | None) -> int:
    """Wait for room in a blocking sendto, called through ctypes with the GIL released (see
    the module's essay)."""
    call = _kernel_send(self, data, dest)
    shortened = False
    in_force = self._slice
    try:
        while True:
            self._check_waiting()
            want = SLICE
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(f"the destination stayed full for {limit} s; not sent")
                want = min(SLICE, remaining)
            if abs(want - in_force) > 0.001:
                # Block for a slice of this wait's own: no longer than what is left near its
                # deadline, and a whole SLICE when the socket's send_timeout is shorter than
                # this wait (a tiny send_timeout must not make a send(timeout=None) wake every
                # few microseconds). Other waiters on this socket may loop sooner meanwhile;
                # harmless. The socket's own slice is set back at the end.
                self._sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDTIMEO, timeval(want))
                in_force = want
                shortened = True
            sent = call.send()
            if sent >= 0:
                return sent
            code = ctypes.get_errno()
            if code == errno.EINTR:
                # A signal; if its handler raises, the exception surfaces here, unsent.
                self._count_eintr()
            elif code != errno.EAGAIN:
                raise OSError(code, os.strerror(code))
    finally:
        if shortened and not self._state:
            with contextlib.suppress(OSError):
                self._set_slice_locked()


#: asyncio: the longest one ``asend`` blocks its loop in the kernel for a full Unix-domain
#: destination, and the most such waits may add up to before a wait in the loop lets it run.
AIO_SLICE: Final = 0.001
AIO_BUDGET: Final = 0.002
_aio_spent = threading.local()


def brief_kernel_send(self: Socket, data: Bytes, dest: Any, limit: float | None) -> int:
    """For ``asend`` after EAGAIN on a local destination: wait for room in a blocking sendto
    of at most AIO_SLICE (with the GIL released), as long as this thread's loop has not been
    kept waiting AIO_BUDGET since its last wait in the loop (``aio_waited``). The kernel wakes
    a blocked sender the moment the receiver takes a datagram: a sender streaming to a busy
    receiver keeps its pace, which a wait in the loop (an iteration and four epoll_ctl calls
    per few datagrams) cannot. Returns the bytes sent, or -1: not sent, wait in the loop.
    A wait that sent is counted as an eagain wait (one that did not is, by the loop's wait)."""
    spent = getattr(_aio_spent, "seconds", 0.0)
    if spent >= AIO_BUDGET or C_SENDTO is None:
        return -1
    call = _kernel_send(self, data, dest)
    started = time.monotonic()
    sock = self._sock
    sent = -1
    try:
        sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDTIMEO, timeval(min(AIO_SLICE, limit or AIO_SLICE)))
        sent = call.send()
        if sent < 0 and (code := ctypes.get_errno()) not in (errno.EAGAIN, errno.EINTR):
            raise OSError(code, os.strerror(code))
        return sent
    finally:
        elapsed = time.monotonic() - started
        _aio_spent.seconds = spent + elapsed
        if sent >= 0:
            with self._lock:
                c = self._counters
                c.eagain_waits += 1
                c.wait_seconds += elapsed
        if not self._state:
            with contextlib.suppress(OSError):
                sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDTIMEO, timeval(self._slice))


def aio_waited() -> None:
    """This thread's loop ran other work (an ``asend`` waited in it): the budget starts anew."""
    _aio_spent.seconds = 0.0


def _wait_for_pollout(self: Socket, data: Bytes, dest: Any, deadline: float | None, limit: float | None) -> int:
    """UDP (or no libc sendto): EAGAIN means our own send buffer is full, and our own
    POLLOUT is accurate for that. If POLLOUT says writable yet the send still fails, back
    off on a timer rather than spin."""
    efd = self._eventfd()
    tick = FIRST_TICK
    while True:
        writable = writable_now(efd, self._fd)
        self._check_waiting()
        waiting_on, mask, timer = (-1, 0, tick) if writable else (self._fd, POLLOUT, None)
        waited = bounded(timer, deadline)
        if waited is not None and waited <= 0:
            raise Timeout(f"the destination stayed full for {limit} s; not sent")
        if not sleep(self, efd, waiting_on, mask, waited) and timer is not None:
            tick = min(tick * 2, MAX_TICK)
        try:
            return self._send_now(data, dest)
        except BlockingIOError:
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(f"the destination stayed full for {limit} s; not sent") from None


def sleep(self: Socket, efd: int, fd: int, mask: int, seconds: float | None) -> int:
    """Sleep until ``fd`` is ready for ``mask``, ``seconds`` pass, or close() is called.

    Returns how many fds are ready (0: the time ran out). A signal that interrupts the
    sleep is counted and the sleep resumes toward the same deadline, as PEP 475 would do;
    a handler that raises ends the wait with its exception.

    Raises:
        Error: "closed" when the socket was closed meanwhile.
    """
    sleeper = Sleeper(efd, fd, mask)
    if seconds is None:
        while (n := sleeper.sleep(None)) < 0:
            self._count_eintr()
    else:
        # poll takes an int of ms: a longer wait ends early, as a timeout, and the caller (which
        # loops until its own deadline) sleeps again.
        until = time.monotonic() + seconds
        ms = min(_MAX_POLL_MS, max(1, int(seconds * 1000 + 0.999)))
        while (n := sleeper.sleep(ms)) < 0:
            self._count_eintr()
            ms = min(_MAX_POLL_MS, max(0, int((until - time.monotonic()) * 1000 + 0.999)))
    self._check_waiting()
    return n


def send_failure(self: Socket, exc: BaseException, data: object, dest: Any) -> BaseException:
    """Turn a failed send into the error the caller should see, and count it."""
    if isinstance(exc, Error):
        result: BaseException = exc
    elif isinstance(exc, (TypeError, ValueError, OverflowError, BufferError)) and not isinstance(exc, OSError):
        result = _argument_error(self, exc, data, dest)
    elif isinstance(exc, OSError) and exc.errno == errno.EMSGSIZE:
        result = Error("emsgsize", _size_limit_text(self, data), errno=errno.EMSGSIZE)
    elif isinstance(exc, OSError) and exc.errno is None:
        result = _argument_error(self, exc, data, dest)
    elif isinstance(exc, _socket_mod.gaierror):
        result = Error("nxdomain", f"cannot resolve {dest!r}: {exc.strerror}")
    else:
        assert isinstance(exc, OSError)
        target = f" to {describe_dest(self, dest)}" if dest is not None else ""
        result = error_from_oserror(exc, target)
    if isinstance(result, Error):
        with self._lock:
            self._errors[result.reason] = self._errors.get(result.reason, 0) + 1
    return result


def describe_dest(self: Socket, dest: Any) -> str:
    try:
        if self.family == "local":
            return format_local(dest)
        return format_address(self.family, dest[0], dest[1])
    except Exception:
        return repr(dest)


def _argument_error(self: Socket, exc: BaseException, data: object, dest: Any) -> BaseException:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        try:
            memoryview(data)  # type: ignore[arg-type]
        except TypeError:
            return TypeError(f"data must be bytes, bytearray or memoryview; got {type(data).__name__}")
    if isinstance(exc, BufferError) or (isinstance(data, memoryview) and not data.c_contiguous):
        return ValueError(
            "data must be contiguous (bytes, bytearray, or a C-contiguous memoryview); got a strided view"
        )
    if dest is not None:
        try:
            check_dest(self, dest)
        except (TypeError, ValueError) as bad:
            return bad
    return ValueError(f"cannot send to {dest!r}: {exc}")


def check_dest(self: Socket, dest: Any) -> Any:
    """A destination of this socket's family, checked (TypeError/ValueError if malformed)."""
    if self.family == "local":
        if isinstance(dest, os.PathLike):
            dest = os.fspath(dest)
        return check_local_path(dest, "dest")
    return check_inet_dest(dest, self.family)


#: Types a remembered destination may be made of: immutable, so identity implies the same value.
_IMMUTABLE = frozenset((str, bytes, int))


def resolve_dest(self: Socket, dest: Any) -> Any:
    """``dest`` checked and in the form the kernel call takes (bytes for a local address, so a
    path is encoded once, not on every send). Every send and asend path sends only what this
    returns: a NUL inside a path, a bool port or a malformed tuple never reaches ``sendto``
    (which would cut the path short, or take True for port 1).

    An immutable destination (str, bytes, or a tuple of str and int) is remembered with its
    result, as one tuple (two threads sending to two destinations never mix the halves): the
    fast paths compare by identity, sound only because such a value cannot change, or for an
    exact str or bytes by equality. A bytearray or other mutable destination is checked afresh
    every time."""
    checked = check_dest(self, dest)
    if self.family == "local":
        checked = checked if isinstance(checked, bytes) else os.fsencode(checked)
    kind = type(dest)
    if kind is str or kind is bytes:
        # A path or name read back from the kernel (a reply to a source) is a new object each
        # time: an equal str (or bytes) matches too. Never a tuple by equality: (h, True) ==
        # (h, 1), and True must not become port 1.
        self._dest = (dest, checked, kind)
    elif kind is tuple and all(type(part) in _IMMUTABLE for part in dest):
        self._dest = (dest, checked, None)
    return checked


def _size_limit_text(self: Socket, data: object) -> str:
    size = memoryview(data).nbytes  # type: ignore[arg-type]
    if self.family == "inet":
        return f"a {size}-byte datagram exceeds UDP over IPv4's limit of 65507 bytes"
    if self.family == "inet6":
        return f"a {size}-byte datagram exceeds UDP over IPv6's limit of 65527 bytes"
    try:
        sndbuf = self._sock.getsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDBUF)
    except OSError:  # pragma: no cover
        sndbuf = 0
    return (
        f"a {size}-byte datagram exceeds this socket's send buffer: the limit is about "
        f"{max(sndbuf - 32, 0)} bytes (SO_SNDBUF {sndbuf}; raise it with sndbuf=)"
    )


def set_slice_locked(self: Socket) -> None:
    """The longest a send blocks in the kernel at a time: ``SLICE``, or the socket's
    send_timeout if shorter, so that a send with that timeout needs no per-call change."""
    timeout = self._send_timeout
    self._slice = SLICE if timeout is None or timeout <= 0 else min(SLICE, timeout)
    if self.family == "local":
        self._sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDTIMEO, timeval(self._slice))


def connect(self: Socket, dest: Any) -> None:
    """Make ``dest`` the default destination and receive only from it. Any process; does
    not block.

    For local sockets the kernel then refuses (EPERM) datagrams from anyone else, and a
    re-connect drops what is queued: do not connect a socket that also serves others.

    Raises:
        TypeError, ValueError: malformed destination.
        Error: "enoent"/"econnrefused" (nothing at that path), "closed", or an OS reason.
    """
    checked = check_dest(self, dest)
    with self._lock:
        if self._state:
            raise Error("closed", "the socket is closed")
        try:
            self._sock.connect(checked)
        except OSError as exc:
            raise error_from_oserror(exc, f" connecting to {describe_dest(self, checked)}") from None
        self._peer = checked
