"""gen_udp sockets: open, send, recv, active mode, ownership, close.

This module owns the kernel socket and every rule about when a datagram counts as sent.

Sending (DESIGN.md §1-2): the syscall runs first, in the caller's thread, with MSG_DONTWAIT.
Only ``EAGAIN`` leads to a wait, in the caller's thread:

- Unix-domain sockets wait *inside the kernel*: a blocking ``sendto`` through ctypes (the GIL
  released). POLLOUT plays no part, so an unconnected sender, which poll always reports
  writable, cannot spin. The kernel queues blocked senders and wakes one per freed slot; the
  woken sender retries inside the kernel at once, without needing the GIL. (An earlier version
  waited in poll on a helper socket connected to the destination, as DESIGN.md §2 suggests; a
  woken waiter then had to retake its process's GIL before it could retry, and threads of a
  busy process lost every freed slot to single-threaded processes: measured starvation.)
  ``close()`` cannot wake a thread blocked in ``sendto`` (DESIGN.md §2), so a send blocks at
  most ``_SLICE`` (40 ms, SO_SNDTIMEO) at a time and then looks again: close wakes a waiting
  send within 40 ms; a path re-bound to a new receiver is found on the next slice; a receiver
  that goes away wakes its senders with their error at once.
- UDP waits in ``poll`` on the socket's own POLLOUT, which is accurate there (EAGAIN means our
  own send buffer is full), together with the socket's close eventfd. If POLLOUT says writable
  yet the send fails, it backs off on a timer rather than spin.

A send therefore either returns (the kernel accepted the datagram exactly once) or raises (it was
not sent). Signals interrupt a wait (EINTR, counted in ``info()``); if the handler returns, the
wait goes on; if it raises, the send raises, unsent.

After a local send had to wait, the next ``_DIRECT_RUN`` sends go straight into one blocking
``sendto`` (``_send_direct``): probing a full destination costs as much as a send.

Receiving in passive mode: ``recv()`` without a timeout waits in the kernel (one blocking
``recvfrom``, as a plain socket does), and ``close()`` wakes it with ``shutdown(SHUT_RD)``; with
a timeout it waits in ``poll`` on the socket and its close eventfd. ``arecv`` waits in the
task's event loop, which keeps the socket registered between waits.

Closing: any thread may call ``close()``. It marks the socket closed, writes the eventfd that
every poll waiter watches, and shuts the socket down for reading. The fd itself is closed only
when no thread is inside a syscall or a wait on it (``_users``: an atomic list append/pop per
call, see ``_enter``), so an fd number is never reused under a thread that still uses it.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import ctypes
import errno
import itertools
import logging
import mmap
import os
import select
import socket as _socket_mod
import stat
import struct
import threading
import time
from _thread import get_ident as _get_ident
from typing import Any, Final, TypeAlias

from . import _hub
from ._address import (
    Family,
    check_family,
    check_inet_dest,
    check_local_path,
    check_port,
    format_address,
    format_local,
)
from ._errors import Error, Timeout, error_from_oserror, reason_of_errno
from ._options import (
    HIGH_MSGQ_WATERMARK,
    LOW_MSGQ_WATERMARK,
    MULTICAST_OPTIONS,
    OPTION_NAMES,
    SETTABLE,
    Active,
    Mode,
    after_delivery,
    check_active,
    check_bool,
    check_bufsize,
    check_membership,
    check_multicast_if,
    check_multicast_ttl,
    check_timeout,
    check_watermarks,
    delivery_budget,
    set_active,
)
from ._process import Pid, current, running_loop

__all__ = ("Socket", "open")

_log: Final = logging.getLogger("genudp")

_AF: Final = {"inet": _socket_mod.AF_INET, "inet6": _socket_mod.AF_INET6, "local": _socket_mod.AF_UNIX}
_OPEN, _CLOSING, _CLOSED = 0, 1, 2
_BATCH: Final = 64
_DONTWAIT: Final = _socket_mod.MSG_DONTWAIT
# Reads never block (waits happen in poll), and report a datagram's real length.
_MSG_TRUNC: Final = _socket_mod.MSG_TRUNC | _DONTWAIT
# A receive that waits in the kernel (recv without a timeout).
_TRUNC_WAIT: Final = _socket_mod.MSG_TRUNC
_POLLOUT: Final = select.POLLOUT
_POLLIN: Final = select.POLLIN
#: After a send had to wait, this many sends on the socket go straight into a blocking call.
_DIRECT_RUN: Final = 64
# A sender's log of datagram sizes (Socket._sent) is folded into its counters beyond this.
_FOLD_AT: Final = 1024
_FIRST_TICK: Final = 0.005
_MAX_TICK: Final = 0.1


#: What ``send`` takes as a datagram.
Bytes: TypeAlias = bytes | bytearray | memoryview


class _Unset:
    def __repr__(self) -> str:
        return "<socket's send_timeout>"


_UNSET: Final = _Unset()


def _recv_bufsize() -> int:
    # The largest datagram a local sender can make is bounded by its send buffer, which an
    # unprivileged process can raise to 2 * net.core.wmem_max. Reading into one buffer of that
    # size per thread (and copying out only what arrived) costs no allocation per datagram.
    try:
        with builtins.open("/proc/sys/net/core/wmem_max") as f:
            return max(65536, 2 * int(f.read()) + 4096)
    except (OSError, ValueError):
        return 1 << 19


_RECV_BUFSIZE: Final = _recv_bufsize()
_buffers = threading.local()


def _buffer() -> tuple[mmap.mmap, memoryview]:
    """This thread's receive buffer: anonymous memory, so pages a datagram never reaches are
    never touched (a zero-filled bytearray of this size costs milliseconds of page faults)."""
    try:
        pair: tuple[mmap.mmap, memoryview] = _buffers.pair
        return pair
    except AttributeError:
        buf = mmap.mmap(-1, _RECV_BUFSIZE)
        pair = (buf, memoryview(buf))
        _buffers.pair = pair
        return pair


class Socket:
    """A gen_udp socket: UDP over IPv4/IPv6, or a Unix-domain datagram socket.

    Made by :func:`genudp.open`, owned by the process that opened it. Any process may ``send``,
    ``close``, ``setopts`` and read its state; only the owner may ``recv`` and hand it over with
    ``controlling_process``. Closed when its owner ends. Use it as a context manager to close it.
    """

    __slots__ = (
        "__weakref__",
        "_aio",
        "_borrowed",
        "_bound",
        "_bound_id",
        "_c_fd",
        "_convert",
        "_counters",
        "_credentials",
        "_direct",
        "_direct_counters",
        "_efd",
        "_errors",
        "_fd",
        "_high",
        "_lock",
        "_low",
        "_mode",
        "_owner",
        "_paused",
        "_peer",
        "_recv_counters",
        "_registered",
        "_reuse",
        "_send_timeout",
        "_sent",
        "_slice",
        "_sock",
        "_state",
        "_target",
        "_users",
        "family",
    )

    def __init__(
        self,
        sock: _socket_mod.socket,
        family: Family,
        owner: Pid,
        bound: str | bytes | None,
        bound_id: tuple[int, int] | None,
        send_timeout: float | None,
        reuse: tuple[bool, bool],
        watermarks: tuple[int, int] = (8192, 4096),
        credentials: bool = False,
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self.family: Family = family
        self._lock = threading.Lock()
        self._state = _OPEN
        # One entry per thread inside a syscall or a wait on the fd. list.append and list.pop
        # are atomic under the GIL, so entering and leaving take no lock (see _enter).
        self._users: list[None] = []
        self._aio: _AioReader | None = None  # the event loop that watches this socket for arecv
        self._direct = 0  # sends left that go straight into a blocking call (_send_direct)
        self._efd: int | None = None
        self._owner = owner
        self._mode: Mode = False
        self._send_timeout = send_timeout
        self._bound = bound
        self._bound_id = bound_id
        self._peer: Any = None
        self._registered = False  # in the hub's epoll set (see _update_registration_locked)
        self._borrowed = False  # ... but disarmed there: the owner reads it (_borrow)
        self._reuse = reuse
        self._credentials = credentials
        self._set_slice_locked()  # sets self._slice
        self._c_fd = ctypes.c_int(self._fd)
        self._target: tuple[Any, tuple[Any, ctypes.c_uint]] | None = None
        # Mailbox high/low watermarks (messages): see _hub_readable.
        self._high, self._low = watermarks
        self._paused = False
        # Under the lock: sent and bytes_sent (folded in from _sent), received and
        # bytes_received (by the hub), eagain_waits, wait_seconds, truncated (by the hub),
        # wait_cpu_seconds, eintr_retries, pauses
        self._counters = [0, 0, 0, 0, 0, 0.0, 0, 0.0, 0, 0]
        self._errors: dict[str, int] = {}
        # received, bytes_received, truncated by recv/arecv: written by the owner's thread only.
        self._recv_counters = [0, 0, 0]
        # The size of each datagram sent since the last fold (_fold_sent): any thread may send,
        # and deque.append and deque.popleft are atomic under the GIL, so a send records itself
        # in one call, without a lock.
        self._sent: collections.deque[int] = collections.deque()
        # direct_sends, direct_seconds, per sending thread: a list only its own thread writes
        # needs no lock. info() adds them up.
        self._direct_counters: dict[int, list[Any]] = {}
        self._convert = _local_source if family == "local" else _inet_source

    # -- introspection --------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = ("open", "closing", "closed")[self._state]
        name = self._describe_name()
        peer = f" peer={self._describe(self._peer)}" if self._peer is not None else ""
        return (
            f"<genudp.Socket fd={self._fd} {self.family} {name}{peer} owner={self._owner!r} "
            f"active={self._mode!r} {state}>"
        )

    def _describe(self, address: Any) -> str:
        if self.family == "local":
            return format_local(address)
        return format_address(self.family, address[0], address[1])

    def _describe_name(self) -> str:
        if self._state != _OPEN:
            return self._describe(self._bound) if self.family == "local" else "-"
        try:
            return self._describe(self.sockname())
        except Error:
            return "-"

    def fileno(self) -> int:
        """The socket's fd (-1 once closed). Do not read from it: the socket owns its data."""
        return self._fd if self._state != _CLOSED else -1

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called (or the owner has ended)."""
        return self._state != _OPEN

    @property
    def owner(self) -> Pid:
        """The controlling process: it receives active messages and may ``recv``."""
        return self._owner

    def info(self) -> dict[str, Any]:
        """Counters since open: a snapshot, safe to call from any process.

        Keys: datagrams_sent, bytes_sent, datagrams_received, bytes_received, eagain_waits (sends
        that found the destination or buffer full and waited), wait_seconds (time those sends
        spent waiting), wait_cpu_seconds (CPU the waiting threads used meanwhile: a wait that
        spins shows here), truncated (datagrams larger than the receive buffer), errors (by
        reason), plus family, owner, active and state.

        eintr_retries counts waits (in send or recv) that a signal interrupted and genudp
        resumed.

        direct_sends counts sends made straight as one blocking call because the destination
        was full at a recent send (local sockets without a send timeout): the kernel may have
        made each wait, for at most 40 ms; a longer wait becomes an eagain wait. direct_seconds
        is the time spent in them (waiting or not); it is not in wait_seconds, and a signal
        during one is retried by Python itself (PEP 475), not counted in eintr_retries.
        """
        with self._lock:
            self._fold_sent_locked()
            c = list(self._counters)
            errors = dict(self._errors)
            per_thread = [list(t) for t in self._direct_counters.values()]
        r = list(self._recv_counters)
        direct = [sum(t[i] for t in per_thread) for i in range(2)]
        return {
            "family": self.family,
            "owner": self._owner,
            "active": self._mode,
            "state": ("open", "closing", "closed")[self._state],
            "datagrams_sent": c[0],
            "bytes_sent": c[1],
            "datagrams_received": c[2] + r[0],
            "bytes_received": c[3] + r[1],
            "eagain_waits": c[4],
            "wait_seconds": c[5],
            "wait_cpu_seconds": c[7],
            "eintr_retries": c[8],
            "direct_sends": direct[0],
            "direct_seconds": direct[1],
            "paused": self._paused,
            "pauses": c[9],
            "kernel_drops": self._kernel_drops(),
            "truncated": c[6] + r[2],
            "errors": errors,
        }

    def sockname(self) -> Any:
        """The local address: ``(ip, port)``, a path, an abstract name (bytes) or None."""
        return self._address_of(self._sock.getsockname)

    def peername(self) -> Any:
        """The connected peer's address. Raises Error("enotconn") if not connected."""
        return self._address_of(self._sock.getpeername)

    def _address_of(self, getter: Any) -> Any:
        self._check_open()
        try:
            name = getter()
        except OSError as exc:
            raise error_from_oserror(exc) from None
        if self.family == "local":
            return name or None
        return (name[0], name[1])

    # -- sending --------------------------------------------------------------------------------

    def send(self, data: Bytes, dest: Any = None, *, timeout: float | _Unset | None = _UNSET) -> None:
        """Send one datagram; any process may call it.

        Returns only once the kernel has accepted the datagram, exactly once. If it raises, the
        datagram was not sent.

        Args:
            data: bytes, bytearray or memoryview; may be empty.
            dest: ``(host, port)`` for inet/inet6, a path (str) or abstract name (bytes, or str
                starting with NUL) for local; ``None`` on a connected socket.
            timeout: how long to wait when the destination (or our send buffer) is full: ``None``
                until there is room, ``0`` not at all (reason "eagain"), ``t`` seconds (reason
                "timeout"). Defaults to the socket's ``send_timeout``.

        Raises:
            Error: "eagain" (full, timeout 0), "timeout", "closed" (closed before or while
                waiting), "enoent"/"econnrefused" (no receiver at that path), "emsgsize" (too
                large; the message says the limit), "enotconn"/"edestaddrreq" (no destination on
                an unconnected socket), or another OS reason.
            TypeError, ValueError: malformed data or destination.
        """
        users = self._users
        users.append(None)  # see _enter
        try:
            if not self._state and self._direct <= 0:
                # The common case, kept short: one non-blocking syscall in the caller's thread.
                try:
                    sock = self._sock
                    sent = sock.sendto(data, _DONTWAIT, dest) if dest is not None else sock.send(data, _DONTWAIT)
                except BlockingIOError:
                    pass  # full: the wait below, outside this clause (no BlockingIOError context)
                except (OSError, TypeError, ValueError, OverflowError) as exc:
                    raise self._send_failure(exc, data, dest) from None
                else:
                    log = self._sent
                    log.append(sent)
                    if len(log) > _FOLD_AT:
                        self._fold_sent()
                    return
                self._send_slow(data, dest, timeout, True)
            else:
                self._send_slow(data, dest, timeout, False)
        finally:
            users.pop()
            if self._state and not users:
                self._leave_closed()

    def _send_slow(self, data: Bytes, dest: Any, timeout: float | _Unset | None, full: bool) -> None:
        """``send`` when the socket is closed, a direct send is due, or the destination was
        ``full`` at the first attempt. The caller holds the users entry."""
        if self._state:
            raise Error("closed", "the socket is closed")
        sent = -1
        direct = 0.0
        try:
            if full:
                pass
            elif (
                self._direct > 0
                and (timeout is None or (timeout is _UNSET and self._send_timeout is None))
                and running_loop() is None
            ):
                direct = time.monotonic()
                sent = self._send_direct(data, dest)
            else:
                try:
                    sent = (
                        self._sock.send(data, _DONTWAIT) if dest is None else self._sock.sendto(data, _DONTWAIT, dest)
                    )
                except BlockingIOError:
                    pass
            if sent < 0:
                # Outside the except clause, so errors from the wait carry no BlockingIOError context.
                sent = self._send_wait(data, dest, timeout)
                if self.family == "local":
                    self._direct = _DIRECT_RUN
        except (OSError, TypeError, ValueError, OverflowError) as exc:
            raise self._send_failure(exc, data, dest) from None
        finally:
            if sent >= 0:
                self._record_sent(sent)
            if direct:
                c = self._direct_counters.get(_get_ident()) or self._new_direct_counters()
                c[0] += 1
                c[1] += time.monotonic() - direct

    def _record_sent(self, sent: int) -> None:
        """Count a datagram sent (``send``'s common path writes this out inline)."""
        log = self._sent
        log.append(sent)
        if len(log) > _FOLD_AT:
            self._fold_sent()

    def _fold_sent(self) -> None:
        with self._lock:
            self._fold_sent_locked()

    def _fold_sent_locked(self) -> None:
        """Move the sizes logged in ``_sent`` into the counters. Pops exactly as many entries as
        it counts: a send that appends meanwhile is left for the next fold, never lost."""
        log = self._sent
        n = len(log)
        c = self._counters
        c[0] += n
        c[1] += sum(itertools.starmap(log.popleft, itertools.repeat((), n)))

    def _new_direct_counters(self) -> list[Any]:
        """This thread's direct-send counters for this socket (see ``_direct_counters``)."""
        c: list[Any] = [0, 0.0]
        with self._lock:
            self._direct_counters[_get_ident()] = c
        return c

    def _send_direct(self, data: Bytes, dest: Any) -> int:
        """The destination was full at a recent send: go straight into a blocking sendto, as a
        plain blocking socket does, instead of probing first. A probe that finds it full costs
        as much as a send (the kernel builds the datagram before it looks at the queue), and
        a sender kept busy by a slow receiver would pay it every time. The call blocks for at
        most a slice (SO_SNDTIMEO); then the counted wait takes over. Every ``_DIRECT_RUN``
        sends the socket probes again. Never inside a running event loop, which it would block."""
        self._direct -= 1  # a hint: a lost update between threads only moves the next probe
        try:
            return self._sock.send(data) if dest is None else self._sock.sendto(data, dest)
        except BlockingIOError:
            return -1

    def _leave_closed(self) -> None:
        with self._lock:
            if self._state == _CLOSING and not self._users:
                self._release_locked()

    def _enter(self) -> None:
        """Announce a syscall or wait on the fd; raise "closed" if the socket is closing.

        Why no lock is needed: a user appends, then reads the state; close() writes the state,
        then reads the users. Under the GIL one of the two sees the other: either close() sees
        this user and leaves the fd open for it, or this user sees the socket closing and backs
        out without touching the fd. Whoever leaves last releases the fd (_leave)."""
        self._users.append(None)
        if self._state:
            self._leave()
            raise Error("closed", "the socket is closed")

    def _leave(self) -> None:
        self._users.pop()
        if self._state and not self._users:
            self._leave_closed()

    async def asend(self, data: Bytes, dest: Any = None, *, timeout: float | _Unset | None = _UNSET) -> None:
        """``send`` for asyncio tasks: the same results and errors, waiting in the event loop.

        Returns once the kernel accepted the datagram, exactly once; raises and it was not sent.
        A full destination is waited for in the loop's selector, without spinning and without
        buffering: a Unix-domain sender watches the destination's queue through a helper socket
        connected to it. Cancelled while waiting, the datagram was not sent.
        """
        # As in send: the common case, one non-blocking syscall, kept short and inline.
        users = self._users
        users.append(None)  # see _enter
        try:
            if self._state:
                raise Error("closed", "the socket is closed")
            try:
                sock = self._sock
                sent = sock.sendto(data, _DONTWAIT, dest) if dest is not None else sock.send(data, _DONTWAIT)
            except BlockingIOError:
                sent = -1
            except (OSError, TypeError, ValueError, OverflowError) as exc:
                raise self._send_failure(exc, data, dest) from None
            if sent < 0:
                try:
                    sent = await self._asend_wait(data, dest, timeout)
                except (OSError, TypeError, ValueError, OverflowError) as exc:
                    raise self._send_failure(exc, data, dest) from None
            self._record_sent(sent)  # after the syscall: off a round trip's critical path
        finally:
            users.pop()
            if self._state and not users:
                self._leave_closed()

    async def _asend_wait(self, data: Bytes, dest: Any, timeout: float | _Unset | None) -> int:
        limit = self._wait_limit(timeout)
        started = time.monotonic()
        deadline = None if limit is None else started + limit
        helper: _socket_mod.socket | None = None
        efd = self._eventfd()
        tick = _FIRST_TICK
        try:
            if self.family == "local" and dest is not None:
                # An unconnected local socket is always "writable": POLLOUT on a helper socket
                # connected to the destination reflects the destination's queue instead.
                helper = _socket_mod.socket(_socket_mod.AF_UNIX, _socket_mod.SOCK_DGRAM | _socket_mod.SOCK_CLOEXEC)
                helper.connect(dest)
            while True:
                # Wait for whichever is full: the destination (helper), or our own send buffer.
                blocked = -1
                if helper is not None and not _writable_now(efd, helper.fileno()):
                    blocked = helper.fileno()
                elif not _writable_now(efd, self._fd):
                    blocked = self._fd
                self._check_waiting()
                # Both say writable yet the send failed: back off on a timer rather than spin.
                # A helper wait also wakes every _MAX_TICK, in case the path was re-bound.
                timer = tick if blocked < 0 else (_MAX_TICK if helper is not None else None)
                waited = _bounded(timer, deadline)
                if waited is not None and waited <= 0:
                    raise Timeout(f"the destination stayed full for {limit} s; not sent")
                ready = await _loop_wait([efd], [blocked] if blocked >= 0 else [], waited)
                if not ready and blocked < 0:
                    tick = min(tick * 2, _MAX_TICK)
                self._check_waiting()
                try:
                    return self._send_now(data, dest)
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise Timeout(f"the destination stayed full for {limit} s; not sent") from None
        finally:
            if helper is not None:
                helper.close()
            # CPU is not counted: the loop's thread runs other tasks meanwhile.
            with self._lock:
                c = self._counters
                c[4] += 1
                c[5] += time.monotonic() - started

    def _send_now(self, data: Bytes, dest: Any) -> int:
        """One non-blocking attempt (BlockingIOError: full)."""
        return self._sock.send(data, _DONTWAIT) if dest is None else self._sock.sendto(data, _DONTWAIT, dest)

    def _wait_limit(self, timeout: float | _Unset | None) -> float | None:
        """The wait a send may make, per ``timeout``; raises "eagain" for 0."""
        limit = self._send_timeout if isinstance(timeout, _Unset) else check_timeout(timeout, "timeout")
        if limit == 0:
            raise Error(
                "eagain",
                "the destination's queue (or this socket's send buffer) is full; not sent (send_timeout=0)",
                errno=errno.EAGAIN,
            )
        return limit

    def _send_wait(self, data: Bytes, dest: Any, timeout: float | _Unset | None) -> int:
        limit = self._wait_limit(timeout)
        if running_loop() is not None:
            raise RuntimeError(
                "the destination is full and send() would block the running event loop (not sent); "
                "in a task use `await sock.asend(...)`"
            )
        started, cpu_started = time.monotonic(), time.thread_time()
        deadline = None if limit is None else started + limit
        sent = -1
        try:
            if self.family == "local" and _C_SENDTO is not None:
                sent = self._wait_in_kernel(data, dest, deadline, limit)
            else:
                sent = self._wait_for_pollout(data, dest, deadline, limit)
            return sent
        finally:
            spent, cpu = time.monotonic() - started, time.thread_time() - cpu_started
            with self._lock:
                c = self._counters
                c[4] += 1
                c[5] += spent
                c[7] += cpu

    def _wait_in_kernel(self, data: Bytes, dest: Any, deadline: float | None, limit: float | None) -> int:
        """Wait for room in a blocking sendto, called through ctypes with the GIL released.

        The kernel queues blocked senders and wakes one per freed slot, in order; the woken
        sender retries inside the kernel at once, without needing the GIL, so threads of a busy
        process are not beaten to every slot by single-threaded processes (as they were when
        they woke from poll and had to take the GIL back first). POLLOUT plays no part, so an
        unconnected sender cannot spin on it. close() cannot wake a thread blocked in sendto,
        so the call blocks for at most a slice (SO_SNDTIMEO, ``_SLICE`` = 40 ms) and the loop
        looks again: close wakes a waiting send within 40 ms; a path re-bound to a new receiver
        is found on the next slice; a receiver that goes away wakes the sender with its error
        at once.
        """
        target = self._target
        if target is None or target[0] != dest:
            # The last destination's sockaddr is kept: a sender usually waits on one receiver.
            target = self._target = (dest, _sockaddr_un(dest))
        call = _KernelSend(self._c_fd, data, target[1])
        shortened = False
        try:
            while True:
                self._check_waiting()
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise Timeout(f"the destination stayed full for {limit} s; not sent")
                    if remaining < self._slice - 0.001:
                        # Near the deadline: block no longer than what is left (to within 1 ms).
                        # Other waiters on this socket may loop sooner meanwhile; harmless.
                        self._sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDTIMEO, _timeval(remaining))
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
            if shortened and self._state == _OPEN:
                with contextlib.suppress(OSError):
                    self._set_slice_locked()

    def _wait_for_pollout(self, data: Bytes, dest: Any, deadline: float | None, limit: float | None) -> int:
        """UDP (or no libc sendto): EAGAIN means our own send buffer is full, and our own
        POLLOUT is accurate for that. If POLLOUT says writable yet the send still fails, back
        off on a timer rather than spin."""
        efd = self._eventfd()
        tick = _FIRST_TICK
        while True:
            writable = _writable_now(efd, self._fd)
            self._check_waiting()
            waiting_on, mask, timer = (-1, 0, tick) if writable else (self._fd, _POLLOUT, None)
            waited = _bounded(timer, deadline)
            if waited is not None and waited <= 0:
                raise Timeout(f"the destination stayed full for {limit} s; not sent")
            if not self._sleep(efd, waiting_on, mask, waited) and timer is not None:
                tick = min(tick * 2, _MAX_TICK)
            try:
                return self._send_now(data, dest)
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise Timeout(f"the destination stayed full for {limit} s; not sent") from None

    def _send_failure(self, exc: BaseException, data: object, dest: Any) -> BaseException:
        """Turn a failed send into the error the caller should see, and count it."""
        if isinstance(exc, Error):
            result: BaseException = exc
        elif isinstance(exc, (TypeError, ValueError, OverflowError)) and not isinstance(exc, OSError):
            result = self._argument_error(exc, data, dest)
        elif isinstance(exc, OSError) and exc.errno == errno.EMSGSIZE:
            result = Error("emsgsize", self._size_limit_text(data), errno=errno.EMSGSIZE)
        elif isinstance(exc, OSError) and exc.errno is None:
            result = self._argument_error(exc, data, dest)
        elif isinstance(exc, _socket_mod.gaierror):
            result = Error("nxdomain", f"cannot resolve {dest!r}: {exc.strerror}")
        else:
            assert isinstance(exc, OSError)
            target = f" to {self._describe_dest(dest)}" if dest is not None else ""
            result = error_from_oserror(exc, target)
        if isinstance(result, Error):
            with self._lock:
                self._errors[result.reason] = self._errors.get(result.reason, 0) + 1
        return result

    def _describe_dest(self, dest: Any) -> str:
        try:
            if self.family == "local":
                return format_local(dest)
            return format_address(self.family, dest[0], dest[1])
        except Exception:
            return repr(dest)

    def _argument_error(self, exc: BaseException, data: object, dest: Any) -> BaseException:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            try:
                memoryview(data)  # type: ignore[arg-type]
            except TypeError:
                return TypeError(f"data must be bytes, bytearray or memoryview; got {type(data).__name__}")
        if dest is not None:
            try:
                self._check_dest(dest)
            except (TypeError, ValueError) as bad:
                return bad
        return ValueError(f"cannot send to {dest!r}: {exc}")

    def _check_dest(self, dest: Any) -> Any:
        if self.family == "local":
            if isinstance(dest, os.PathLike):
                dest = os.fspath(dest)
            return check_local_path(dest, "dest")
        return check_inet_dest(dest, self.family)

    def _size_limit_text(self, data: object) -> str:
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

    # -- receiving ------------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> tuple[Any, ...]:
        """Take one datagram from a passive socket; owner only.

        Blocks until one arrives (no CPU used) or ``timeout`` seconds pass; ``0`` only looks.

        Returns:
            ``(address, port, data)``: for local sockets ``address`` is the sender's path (str),
            abstract name (bytes) or None (unbound sender) and ``port`` is 0. With
            ``credentials=True``: ``(address, port, anc, data)``, ``anc`` being the sender's
            ``{"pid", "uid", "gid"}``.

        Raises:
            Error: "not_owner" (caller is not the owner), "einval" (the socket is active),
                "closed" (closed before or while waiting), or an OS reason.
            Timeout: nothing arrived within ``timeout`` (reason "timeout").
        """
        if timeout is not None or self._credentials:
            return self._recv(check_timeout(timeout))
        # The common case, kept lean: wait in the kernel, as a plain blocking socket does (one
        # syscall, the GIL released); close() wakes it with shutdown(SHUT_RD), and it returns 0.
        if self._owner is not current():
            raise Error("not_owner", f"only the owner {self._owner!r} may recv on this socket")
        if self._mode is not False:
            raise Error("einval", f"recv needs a passive socket (active=False); this one is active={self._mode!r}")
        if running_loop() is not None:
            return self._recv(None)  # raises if it would have to wait
        users = self._users
        users.append(None)  # see _enter
        if self._state:
            self._leave()
            raise Error("closed", "the socket is closed")
        got = -1
        buf = _buffer()[0]
        try:
            got, source = self._sock.recvfrom_into(buf, 0, _TRUNC_WAIT)
        except OSError as exc:
            raise error_from_oserror(exc) from None
        finally:
            users.pop()
            closing = self._state
            if closing and not users:
                self._leave_closed()
        if closing:
            raise Error("closed", "the socket was closed while waiting")
        # Only the owner's thread writes these (the hub keeps its own): no lock needed.
        c = self._recv_counters
        c[0] += 1
        c[1] += got
        if got > _RECV_BUFSIZE:
            c[2] += 1
        address, port = self._convert(source)
        return address, port, buf[:got]

    def _recv(self, limit: float | None) -> tuple[Any, ...]:
        self._begin_recv()
        got = -1
        buf, view = _buffer()
        anc: dict[str, int] | None = None
        try:
            if limit is None and running_loop() is None:
                got, source, anc = self._read(buf, _TRUNC_WAIT)  # waits in the kernel (see recv)
                if self._state:
                    got = -1
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
        finally:
            self._end_recv(got, len(buf))
        return self._result(got, source, anc, view)

    def _read(self, buf: mmap.mmap, flags: int = _MSG_TRUNC) -> tuple[int, Any, dict[str, int] | None]:
        """One datagram into ``buf``: (length, source, credentials or None). Non-blocking unless
        ``flags`` says otherwise. (The hub's batch loop and arecv inline this: they run per
        datagram.)"""
        if self._credentials:
            return _recv_credentials(self._sock, buf, flags)
        got, source = self._sock.recvfrom_into(buf, 0, flags)
        return got, source, None

    def _result(self, got: int, source: Any, anc: dict[str, int] | None, view: memoryview) -> tuple[Any, ...]:
        address, port = self._convert(source)
        if self._credentials:
            return address, port, anc, view[:got].tobytes()
        return address, port, view[:got].tobytes()

    def _begin_recv(self) -> None:
        if self._owner is not current():
            raise Error("not_owner", f"only the owner {self._owner!r} may recv on this socket")
        if self._mode is not False:
            raise Error("einval", f"recv needs a passive socket (active=False); this one is active={self._mode!r}")
        self._enter()

    def _end_recv(self, got: int, room: int) -> None:
        if got >= 0:
            c = self._recv_counters  # the owner's thread only: no lock (see recv)
            c[0] += 1
            c[1] += got
            if got > room:
                c[2] += 1
        self._leave()

    async def arecv(self, timeout: float | None = None) -> tuple[Any, ...]:
        """``recv`` for asyncio tasks: the same results and errors, waiting in the event loop.

        Cancelled while waiting, it took nothing: the datagram stays in the socket.
        """
        # Every step here is on a round trip's critical path, from the loop's wake-up to the
        # caller's next send, so the common steps are inlined: the read (``_read``), the wait
        # on the loop this socket is registered with (``_readable``), and the counting
        # (``_end_recv``). Inlined, a one-sided round trip took about 2 us less.
        limit = None if timeout is None else check_timeout(timeout)
        self._begin_recv()
        got = -1
        buf, view = _buffer()
        anc: dict[str, int] | None = None
        try:
            deadline = None if limit is None else time.monotonic() + limit
            while True:
                try:
                    if self._credentials:
                        got, source, anc = _recv_credentials(self._sock, buf, _MSG_TRUNC)
                    else:
                        got, source = self._sock.recvfrom_into(buf, 0, _MSG_TRUNC)
                    break
                except BlockingIOError:
                    pass
                waited = _bounded(None, deadline)
                if waited is not None and waited <= 0:
                    raise Timeout("no datagram waiting" if limit == 0 else f"no datagram within {limit} s")
                reader = self._aio
                if waited is None and reader is not None and reader.loop is running_loop():
                    future = reader.wait()
                    try:
                        await future
                    finally:
                        reader.forget(future)
                else:
                    await self._readable(waited)
                if self._state:
                    raise Error("closed", "the socket was closed while waiting")
        except OSError as exc:
            if isinstance(exc, Error):
                raise
            raise error_from_oserror(exc) from None
        finally:
            if got >= 0:
                c = self._recv_counters  # the owner's thread only: no lock (see recv)
                c[0] += 1
                c[1] += got
                if got > len(buf):
                    c[2] += 1
            self._leave()
        return self._result(got, source, anc, view)

    async def _readable(self, timeout: float | None) -> None:
        """Until the socket may be readable, ``timeout`` passes, or close() (in an event loop).

        The socket stays registered with the loop between waits (a registration per wait costs
        four epoll_ctl calls and most of a round trip); it is dropped when data arrives with no
        task waiting, so that a level-triggered readiness nobody consumes cannot spin the loop.
        """
        loop = running_loop()
        reader = self._aio
        if reader is None or reader.loop is not loop:
            if reader is not None:
                # Registered with another loop: watch a duplicate fd for this wait only.
                efd = self._eventfd()
                await _loop_wait([efd, self._fd], [], timeout)
                return
            reader = self._aio = _AioReader(self, loop)
        future = reader.wait()
        timer = None if timeout is None else loop.call_later(timeout, _resolve, future)
        try:
            await future
        finally:
            if timer is not None:
                timer.cancel()
            reader.forget(future)

    def _recv_wait(self, buf: mmap.mmap, limit: float | None) -> tuple[int, Any, dict[str, int] | None]:
        if limit == 0:
            raise Timeout("no datagram waiting")
        if running_loop() is not None:
            raise RuntimeError("recv() would block the running event loop; in a task use `await sock.arecv(...)`")
        deadline = None if limit is None else time.monotonic() + limit
        efd = self._eventfd()
        while True:
            waited = _bounded(None, deadline)
            if waited is not None and waited <= 0:
                raise Timeout(f"no datagram within {limit} s")
            self._sleep(efd, self._fd, _POLLIN, waited)
            try:
                return self._read(buf)
            except BlockingIOError:
                continue

    # -- active mode: read by the hub thread, or by the owner while it waits ----------------------

    def _hub_readable(self) -> None:
        with self._lock:
            self._read_locked(_BATCH)

    def _read_locked(self, limit: int) -> None:
        """Read up to ``limit`` datagrams (fewer if the active count allows fewer) into the
        owner's mailbox: for the hub, or for the owner itself while it waits (_borrow)."""
        if self._state or self._mode is False or self._paused:
            return
        # Flow control: an owner that does not keep up must not make its mailbox grow
        # without bound. At the high watermark the hub stops reading this socket; the kernel
        # queue then fills (local senders wait; UDP drops, counted as kernel_drops), and the
        # owner resumes reading when its mailbox is down to the low watermark.
        mailbox = self._owner._mailbox
        if len(mailbox) >= self._high and mailbox.throttle(self, self._low):
            self._paused = True
            self._counters[9] += 1
            self._update_registration_locked()
            return
        budget = delivery_budget(self._mode)
        budget = min(budget, limit)
        buf, view = _buffer()
        recvfrom_into = self._sock.recvfrom_into
        convert = self._convert
        batch: list[tuple[Any, ...]] = []
        total = 0
        truncated = 0
        error: OSError | None = None
        creds = self._credentials
        anc: dict[str, int] | None = None
        for _ in range(budget):
            try:
                if creds:
                    got, source, anc = _recv_credentials(self._sock, buf)
                else:
                    got, source = recvfrom_into(buf, 0, _MSG_TRUNC)
            except BlockingIOError:
                break
            except OSError as exc:
                # A pending socket error (ICMP port unreachable on a connected UDP socket):
                # reading it clears it. Count it; do not let it stop the hub.
                error = exc
                break
            if got > len(buf):
                truncated += 1
            address, port = convert(source)
            if creds:
                batch.append(("udp", self, address, port, anc, view[:got].tobytes()))
            else:
                batch.append(("udp", self, address, port, view[:got].tobytes()))
            total += got
        if error is not None and error.errno is not None:
            reason = reason_of_errno(error.errno)
            self._errors[reason] = self._errors.get(reason, 0) + 1
        if not batch:
            return
        c = self._counters
        c[2] += len(batch)
        c[3] += total
        c[6] += truncated
        transition = after_delivery(self._mode, len(batch))
        if transition.passive_message:
            batch.append(("udp_passive", self))
        self._owner._mailbox.put_many(batch)
        if transition.mode is not self._mode:
            self._apply_mode_locked(transition.mode)

    # -- the owner reads for itself while it waits in receive (see _hub.py) -------------------

    def _borrow(self) -> int:
        """The owner is about to wait in ``receive``: read this socket itself meanwhile
        instead of the hub (see _hub.py). Returns the fd to poll, or -1 if the hub is not
        reading it (passive, paused, closing). A socket stays borrowed between waits, and then
        this takes no lock and no syscall; the hub takes it back (Hub._look) from an owner
        that stays away. The wait counts as a user of the fd, so close() wakes it (shutdown)
        and keeps the fd open until the wait has ended (_leave)."""
        if not self._registered:
            # Passive, paused or closing: nothing to borrow (a hint, without the lock: a socket
            # registered meanwhile is the hub's, and what it reads wakes the owner all the same).
            return -1
        self._users.append(None)
        if not self._state and self._borrowed:
            return self._fd
        with self._lock:
            ok = self._registered and not self._state
            if ok and not self._borrowed:
                hub = _hub.hub()
                hub._epoll.modify(self._fd, 0)  # disarmed; the fd stays registered
                self._borrowed = True
                hub.keep(self)
        if not ok:
            self._leave()
            return -1
        return self._fd

    def _return_locked(self) -> None:
        """End a borrow: the hub reads the socket again if it should. (Its entry in the hub's
        kept sockets goes at the hub's next look.)"""
        if self._borrowed:
            self._borrowed = False
            if self._registered:
                _hub.hub()._epoll.modify(self._fd, _POLLIN)  # EPOLLIN == POLLIN

    def _owner_readable(self, limit: int, hand: bool = False) -> Any:
        """Poll found the borrowed socket readable: deliver up to ``limit`` datagrams, as the
        hub would. With ``hand``, a datagram read by the common path below into an empty
        mailbox is returned instead of appended (the caller hands it straight to ``receive``):
        any older datagram of this socket would be there, since reads and their appends happen
        under this socket's lock. Otherwise it returns None.

        ``limit`` is 1 when the datagram woke the owner: an owner that had to wait
        has kept up, a second read would almost always find the queue empty, and a read that
        fails costs as much as one that succeeds. A larger ``limit`` (datagrams were queued
        before the owner came to wait) reads a batch, until the queue is empty.

        The common case (active true, no credentials, mailbox below the high watermark) is
        written out here: right after a wake-up every Python call costs, and the general
        path (_read_locked: budgets, transitions, batches) cost 8 µs more per datagram."""
        try:
            with self._lock:
                owner = self._owner
                full = len(owner._mailbox._queue) >= self._high
                if limit > 1 or self._mode is not True or self._state or self._paused or self._credentials or full:
                    self._read_locked(limit)
                    return None
                try:
                    buf, view = _buffers.pair
                except AttributeError:
                    buf, view = _buffer()
                try:
                    got, source = self._sock.recvfrom_into(buf, 0, _MSG_TRUNC)
                except BlockingIOError:
                    return None  # the hub read it first (it had the event before the borrow)
                except OSError as exc:
                    if exc.errno is not None:
                        reason = reason_of_errno(exc.errno)
                        self._errors[reason] = self._errors.get(reason, 0) + 1
                    return None
                c = self._counters
                c[2] += 1
                c[3] += got
                if got > len(buf):
                    c[6] += 1
                # self._convert, inline: inet sources are tuples, local ones str or bytes.
                if type(source) is tuple:
                    message = ("udp", self, source[0], source[1], view[:got].tobytes())
                else:
                    message = ("udp", self, source, 0, view[:got].tobytes())
                if hand and not owner._mailbox._queue:
                    return message
                owner._mailbox.put(message)
        except Exception as exc:
            _log.exception("genudp: error while reading %r", self)
            self._hub_failed(exc)
        return None

    def _hub_failed(self, exc: BaseException) -> None:
        with self._lock:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            self._errors[reason] = self._errors.get(reason, 0) + 1

    def _apply_mode_locked(self, mode: Mode) -> None:
        self._mode = mode
        self._update_registration_locked()

    def _update_registration_locked(self) -> None:
        """Be in the hub's epoll set exactly while active, open and not paused."""
        want = self._mode is not False and self._state == _OPEN and not self._paused
        if want and not self._registered:
            _hub.hub().register(self, self._fd)
            self._registered = True
        elif not want and self._registered:
            _hub.hub().unregister(self, self._fd)
            self._registered = False
            self._borrowed = False

    # -- options, connect, ownership --------------------------------------------------------------

    def setopts(self, **opts: Any) -> None:
        """Change options: active, recbuf, sndbuf, send_timeout, the mailbox watermarks, and on
        UDP sockets broadcast and the multicast options (see :func:`open`). Any process may
        call it.

        ``active=N`` adds N to a current count (or starts one from 0); a count that reaches 0 or
        less makes the socket passive and sends ``("udp_passive", sock)`` to the owner.

        Raises:
            TypeError, ValueError: an unknown option or a malformed value (nothing changed).
            Error: "einval" for an active count outside -32768..32767, "closed".
        """
        checked = _check_settable(opts, self.family)
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
                if checked.get("recbuf") is not None:
                    self._sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_RCVBUF, checked["recbuf"])
                if checked.get("sndbuf") is not None:
                    self._sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDBUF, checked["sndbuf"])
                _set_udp_options(self._sock, self.family, checked)
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
                    self._owner._mailbox.put(("udp_passive", self))

    def getopts(self, *names: str) -> dict[str, Any]:
        """Read options by name (all of them when none are named)."""
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
                if name == "active":
                    out[name] = self._mode
                elif name == "recbuf":
                    out[name] = self._sock.getsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_RCVBUF)
                elif name == "sndbuf":
                    out[name] = self._sock.getsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDBUF)
                elif name == "reuseaddr":
                    out[name] = self._reuse[0]
                elif name == "reuseport":
                    out[name] = self._reuse[1]
                elif name == "send_timeout":
                    out[name] = self._send_timeout
                elif name == "high_msgq_watermark":
                    out[name] = self._high
                elif name == "low_msgq_watermark":
                    out[name] = self._low
                else:
                    out[name] = _get_udp_option(self._sock, self.family, name)
        except OSError as exc:
            raise error_from_oserror(exc) from None
        return out

    def connect(self, dest: Any) -> None:
        """Make ``dest`` the default destination and receive only from it. Any process.

        For local sockets the kernel then refuses (EPERM) datagrams from anyone else, and a
        re-connect drops what is queued: do not connect a socket that also serves others.

        Raises:
            TypeError, ValueError: malformed destination.
            Error: "enoent"/"econnrefused" (nothing at that path), "closed", or an OS reason.
        """
        checked = self._check_dest(dest)
        with self._lock:
            if self._state:
                raise Error("closed", "the socket is closed")
            try:
                self._sock.connect(checked)
            except OSError as exc:
                raise error_from_oserror(exc, f" connecting to {self._describe_dest(checked)}") from None
            self._peer = checked

    def controlling_process(self, pid: Pid) -> None:
        """Hand the socket to ``pid``; only the owner may. Its undelivered messages move along.

        ``udp`` and ``udp_passive`` messages of this socket still in the old owner's mailbox move
        to the new owner's, in order, so nothing is lost or reordered.

        Raises:
            TypeError: ``pid`` is not a Pid.
            Error: "not_owner" (caller is not the owner), "badarg" (``pid`` has ended), "closed".
        """
        if type(pid) is not Pid:
            raise TypeError(f"controlling_process needs a Pid; got {type(pid).__name__}")
        me = current()
        with self._lock:
            if self._state:
                raise Error("closed", "the socket is closed")
            if self._owner is not me:
                raise Error("not_owner", f"only the owner {self._owner!r} may hand this socket over")
            if pid is me:
                return
            if not pid._adopt_socket(self):
                raise Error("badarg", f"{pid!r} has ended")
            me._drop_socket(self)
            self._return_locked()  # a socket the old owner kept borrowed (see _borrow)
            moved = me._mailbox.extract(self._is_mine)
            if moved:
                pid._mailbox.put_many(moved)
            self._owner = pid
            if self._paused:
                # Paused for the old owner's mailbox: the hub judges the new owner's afresh.
                me._mailbox.forget(self)
                self._paused = False
                self._update_registration_locked()

    def _is_mine(self, message: Any) -> bool:
        return (
            type(message) is tuple
            and len(message) >= 2
            and message[1] is self
            and (message[0] == "udp" or message[0] == "udp_passive")
        )

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket; idempotent, any process.

        Every thread blocked in ``send`` or ``recv`` on it wakes at once with reason "closed"
        (nothing sent or taken). A file genudp bound is unlinked if it is still that file.
        """
        with self._lock:
            if self._state:
                return
            self._state = _CLOSING
            if self._registered:
                _hub.hub().unregister(self, self._fd)
                self._registered = False
                self._borrowed = False
            if self._paused:
                self._owner._mailbox.forget(self)
            if self._efd is not None:
                os.eventfd_write(self._efd, 1)
            if self._aio is not None:
                self._aio.close()
            if self._users:
                # A recv waiting in the kernel wakes up with 0 bytes and sees the socket closed.
                with contextlib.suppress(OSError):  # ENOTCONN for unconnected UDP: it wakes all the same
                    self._sock.shutdown(_socket_mod.SHUT_RD)
            # Unlink before the fd closes: a sender then finds the path gone ("enoent") rather
            # than a socket file with nobody bound to it.
            self._unlink_own_file()
            if not self._users:
                self._release_locked()
            owner = self._owner
        owner._drop_socket(self)

    def _close_for_owner_exit(self, owner: Pid) -> None:
        if self._owner is owner:
            self.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _release_locked(self) -> None:
        self._state = _CLOSED
        self._sock.close()
        if self._efd is not None:
            os.close(self._efd)
            self._efd = None

    def _unlink_own_file(self) -> None:
        path, ident = self._bound, self._bound_id
        if not isinstance(path, str) or ident is None:
            return
        try:
            st = os.lstat(path)
            if (st.st_dev, st.st_ino) == ident:
                os.unlink(path)
        except OSError:
            pass

    # -- helpers ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state:
            raise Error("closed", "the socket is closed")

    def _check_waiting(self) -> None:
        # Called by a waiter after every wake-up: ``busy`` keeps the fd alive meanwhile.
        if self._state:
            raise Error("closed", "the socket was closed while waiting")

    def _sleep(self, efd: int, fd: int, mask: int, seconds: float | None) -> int:
        """Sleep until ``fd`` is ready for ``mask``, ``seconds`` pass, or close() is called.

        Returns how many fds are ready (0: the time ran out). A signal that interrupts the
        sleep is counted and the sleep resumes toward the same deadline, as PEP 475 would do;
        a handler that raises ends the wait with its exception.

        Raises:
            Error: "closed" when the socket was closed meanwhile.
        """
        sleeper = _Sleeper(efd, fd, mask)
        if seconds is None:
            while (n := sleeper.sleep(None)) < 0:
                self._count_eintr()
        else:
            until = time.monotonic() + seconds
            ms = max(1, int(seconds * 1000 + 0.999))
            while (n := sleeper.sleep(ms)) < 0:
                self._count_eintr()
                ms = max(0, int((until - time.monotonic()) * 1000 + 0.999))
        self._check_waiting()
        return n

    def _resume_reading(self) -> None:
        """The owner's mailbox is down to the low watermark: let the hub read again."""
        with self._lock:
            if self._paused:
                self._paused = False
                self._update_registration_locked()

    def _kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped for this UDP socket (its queue was full): the counter
        that SO_RXQ_OVFL reports, read from /proc/net/udp{,6} by inode. None for local sockets,
        whose senders wait instead."""
        if self.family == "local" or self._state == _CLOSED:
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

    def _set_slice_locked(self) -> None:
        """The longest a send blocks in the kernel at a time: ``_SLICE``, or the socket's
        send_timeout if shorter, so that a send with that timeout needs no per-call change."""
        timeout = self._send_timeout
        self._slice = _SLICE if timeout is None or timeout <= 0 else min(_SLICE, timeout)
        if self.family == "local":
            self._sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDTIMEO, _timeval(self._slice))

    def _count_eintr(self) -> None:
        with self._lock:
            self._counters[8] += 1
        self._check_waiting()

    def _eventfd(self) -> int:
        with self._lock:
            if self._efd is None:
                self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            return self._efd


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


class _Sleeper:
    """poll(2) on the close eventfd and one fd, called through ctypes (which releases the GIL).

    ``select.poll`` restarts after EINTR by itself (PEP 475), so genudp could not count signals
    that interrupt its waits; libc's poll reports them. The pollfd array is built once per wait
    and reused after each interruption. A Python signal handler still runs, in the main thread,
    as soon as Python code runs there; if it raises in the waiting thread, the exception ends the
    wait, and nothing was sent or taken.
    """

    __slots__ = ("_count", "_fallback", "_fds")

    def __init__(self, efd: int, fd: int, mask: int) -> None:
        self._fallback: select.poll | None = None
        self._count = 2 if fd >= 0 else 1
        self._fds = (_PollFd * 2)(_PollFd(efd, _POLLIN, 0), _PollFd(fd, mask, 0))
        if _C_POLL is None:  # pragma: no cover - no libc poll via ctypes
            self._fallback = _poller(efd, fd, mask)

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


def _poller(efd: int, fd: int, mask: int) -> select.poll:
    poller = select.poll()
    poller.register(efd, _POLLIN)
    if fd >= 0:
        poller.register(fd, mask)
    return poller


_CREDS_SPACE: Final = _socket_mod.CMSG_SPACE(12)  # struct ucred: pid, uid, gid


def _recv_credentials(
    sock: _socket_mod.socket, buf: mmap.mmap, flags: int = _MSG_TRUNC
) -> tuple[int, Any, dict[str, int] | None]:
    """recvmsg with SCM_CREDENTIALS: (length, source, {"pid", "uid", "gid"} or None)."""
    got, ancillary, _flags, source = sock.recvmsg_into([buf], _CREDS_SPACE, flags)
    for level, kind, data in ancillary:
        if level == _socket_mod.SOL_SOCKET and kind == _socket_mod.SCM_CREDENTIALS and len(data) >= 12:
            pid, uid, gid = struct.unpack("iII", data[:12])
            return got, source, {"pid": pid, "uid": uid, "gid": gid}
    return got, source, None


def _writable_now(efd: int, fd: int) -> bool:
    """Whether ``fd`` reports POLLOUT right now (and raise nothing: close shows via efd)."""
    return any(ready == fd for ready, _ in _poller(efd, fd, _POLLOUT).poll(0))


def _resolve(future: Any) -> None:
    if not future.done():
        future.set_result(None)


def _resolve_now(future: Any) -> None:
    """Resolve ``future`` and run its one done-callback, the waiting task's wake-up, right here
    in the loop's reader callback. ``set_result`` would leave it to the next loop iteration:
    another ``epoll_wait`` and the loop's own bookkeeping on every datagram's way to the task.

    Only for arecv's own futures, resolved from a reader callback, where no task is running.
    A future with no callback, or more than one, is resolved the usual way. What the callback
    raises propagates: a task lets only KeyboardInterrupt and SystemExit out.
    """
    if future.done():
        return
    # asyncio.Future's (C or Python): a list of (callback, context). A loop whose futures keep
    # theirs otherwise gets the usual way.
    callbacks = getattr(future, "_callbacks", None)
    if type(callbacks) is not list or len(callbacks) != 1 or len(callbacks[0]) != 2:
        future.set_result(None)
        return
    callback, context = callbacks[0]
    future.remove_done_callback(callback)
    future.set_result(None)
    context.run(callback, future)


class _AioReader:
    """A socket's registration with one event loop, for ``arecv`` (see Socket._readable).

    While registered it holds an entry in the socket's users, so that the fd is not closed
    (and its number reused) while the loop's selector still has it."""

    __slots__ = ("loop", "registered", "sock", "waiters")

    def __init__(self, sock: Socket, loop: Any) -> None:
        self.sock = sock
        self.loop = loop
        self.waiters: list[Any] = []
        self.registered = False

    def wait(self) -> Any:
        """A future resolved when the socket may be readable (in the loop's thread)."""
        future = self.loop.create_future()
        self.waiters.append(future)
        if not self.registered:
            self.sock._enter()
            self.loop.add_reader(self.sock._fd, self._readable)
            self.registered = True
        return future

    def forget(self, future: Any) -> None:
        waiters = self.waiters
        if future in waiters:  # not when _readable resolved it (it took the whole list)
            waiters.remove(future)

    def _readable(self) -> None:
        waiters = self.waiters
        if not waiters:
            self._unregister()
            return
        self.waiters = []
        for i, future in enumerate(waiters):
            try:
                _resolve_now(future)  # the waiting task resumes here
            except BaseException:
                # A task let KeyboardInterrupt or SystemExit out: the loop stops, and the
                # other waiters wake when it runs again.
                for later in waiters[i + 1 :]:
                    _resolve(later)
                raise

    def _unregister(self) -> None:
        if self.registered:
            self.registered = False
            self.loop.remove_reader(self.sock._fd)
            self.sock._leave()

    def _drop(self) -> None:
        # In the loop's thread: the socket is closing.
        self._unregister()
        waiters, self.waiters = self.waiters, []
        for future in waiters:
            _resolve(future)

    def close(self) -> None:
        """From close(), in any thread, with the socket's lock held."""
        loop = self.loop
        try:
            if loop.is_closed():
                raise RuntimeError("closed")
            if running_loop() is loop:
                loop.call_soon(self._drop)
            else:
                loop.call_soon_threadsafe(self._drop)
        except RuntimeError:
            # The loop is gone, and its selector with it: only the users entry remains.
            if self.registered:
                self.registered = False
                self.sock._users.pop()


async def _loop_wait(readers: list[int], writers: list[int], timeout: float | None) -> bool:
    """In the running event loop: until one of the fds is ready (True) or ``timeout`` seconds
    pass (False). Each fd is watched through a duplicate of it, since a loop keeps one callback
    per fd and several tasks may wait on one socket."""
    import asyncio  # only asyncio users pay for the import

    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def ready(value: bool = True) -> None:
        if not future.done():
            future.set_result(value)

    added: list[tuple[bool, int]] = []
    timer = None
    try:
        for reading, fds in ((True, readers), (False, writers)):
            for fd in fds:
                watched = os.dup(fd)
                added.append((reading, watched))
                (loop.add_reader if reading else loop.add_writer)(watched, ready)
        if timeout is not None:
            timer = loop.call_later(timeout, ready, False)
        return await future
    finally:
        if timer is not None:
            timer.cancel()
        for reading, watched in added:
            (loop.remove_reader if reading else loop.remove_writer)(watched)
            os.close(watched)


def _bounded(timer: float | None, deadline: float | None) -> float | None:
    """Seconds to wait: the timer, cut short by the deadline (None: forever)."""
    if deadline is None:
        return timer
    remaining = deadline - time.monotonic()
    if timer is None or remaining <= 0:
        return remaining
    return min(timer, remaining)


_SLICE: Final = 0.04  # longest a send blocks in the kernel before it looks for close()


def _timeval(seconds: float) -> bytes:
    """A struct timeval for SO_SNDTIMEO, never all zero: a zero timeout means block forever."""
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    return struct.pack("ll", whole, micros if whole or micros else 1)


_C_SENDTO: Final = _libc_function(
    "sendto",
    (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint),
    ctypes.c_ssize_t,
)


_NO_FLAGS: Final = ctypes.c_int(0)


class _SockaddrUn(ctypes.Structure):
    _fields_ = (("sun_family", ctypes.c_ushort), ("sun_path", ctypes.c_char * 108))


class _KernelSend:
    """One datagram, ready to hand to libc's sendto again and again (Socket._wait_in_kernel).

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
        n: int = _C_SENDTO(self._fd, self._data, self._size, _NO_FLAGS, self._addr, self._addrlen)
        return n


def _sockaddr_un(dest: Any) -> tuple[Any, ctypes.c_uint]:
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


def _local_source(source: Any) -> tuple[Any, int]:
    return source, 0


def _inet_source(source: Any) -> tuple[Any, int]:
    # IPv4 gives (host, port), IPv6 (host, port, flowinfo, scope_id): both start alike.
    return source[0], source[1]


def _check_settable(opts: dict[str, Any], family: Family) -> dict[str, Any]:
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
            out[name] = value  # a watermark: checked with its partner in setopts
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


def _ifindex(interface: str | int) -> int:
    if isinstance(interface, int):
        return interface
    try:
        return _socket_mod.if_nametoindex(interface)
    except OSError:
        raise Error("enodev", f"no network interface named {interface!r}", errno=errno.ENODEV) from None


def _set_udp_options(sock: _socket_mod.socket, family: Family, checked: dict[str, Any]) -> None:
    """Apply checked broadcast and multicast options (OTP's names) to a UDP socket."""
    v6 = family == "inet6"
    ip_level = _socket_mod.IPPROTO_IPV6 if v6 else _socket_mod.IPPROTO_IP
    if "broadcast" in checked:
        sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_BROADCAST, int(checked["broadcast"]))
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


def _get_udp_option(sock: _socket_mod.socket, family: Family, name: str) -> Any:
    v6 = family == "inet6"
    ip_level = _socket_mod.IPPROTO_IPV6 if v6 else _socket_mod.IPPROTO_IP
    if name == "broadcast":
        return bool(sock.getsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_BROADCAST))
    if name == "multicast_if":
        if v6:
            return sock.getsockopt(ip_level, _socket_mod.IPV6_MULTICAST_IF)
        return _socket_mod.inet_ntoa(sock.getsockopt(ip_level, _socket_mod.IP_MULTICAST_IF, 4))
    if name == "multicast_loop":
        return bool(sock.getsockopt(ip_level, _socket_mod.IPV6_MULTICAST_LOOP if v6 else _socket_mod.IP_MULTICAST_LOOP))
    assert name == "multicast_ttl", name
    return sock.getsockopt(ip_level, _socket_mod.IPV6_MULTICAST_HOPS if v6 else _socket_mod.IP_MULTICAST_TTL)


def open(
    port: int = 0,
    *,
    family: Family | None = None,
    ip: str | None = None,
    path: str | bytes | None = None,
    active: Active = True,
    recbuf: int | None = None,
    sndbuf: int | None = None,
    reuseaddr: bool = False,
    reuseport: bool = False,
    send_timeout: float | None = None,
    high_msgq_watermark: int = HIGH_MSGQ_WATERMARK,
    low_msgq_watermark: int = LOW_MSGQ_WATERMARK,
    mode: int | None = None,
    unlink_stale: bool = False,
    credentials: bool = False,
    broadcast: bool | None = None,
    multicast_if: str | int | None = None,
    multicast_loop: bool | None = None,
    multicast_ttl: int | None = None,
    add_membership: Any = None,
) -> Socket:
    """Open a datagram socket owned by the calling process. Does not block.

    Args:
        port: UDP port to bind (0 picks a free one); must be 0 for local sockets.
        family: "inet" (default), "inet6" or "local" (the default when ``path`` is given).
        ip: address to bind a UDP socket to (default: any).
        path: a filesystem path, or an abstract name (``"\\0name"`` or bytes), for a local
            socket; a local socket without a path is unbound.
        active: True (deliver every datagram as a message), "once", a count N, or False
            (passive: use ``recv``).
        recbuf, sndbuf: SO_RCVBUF / SO_SNDBUF in bytes.
        reuseaddr, reuseport: SO_REUSEADDR / SO_REUSEPORT.
        send_timeout: default for ``send``: None (wait for room), 0 (raise "eagain"), seconds.
        high_msgq_watermark, low_msgq_watermark: flow control of active mode, in messages: when
            the owner's mailbox holds ``high`` messages, the socket stops being read until the
            owner has taken it down to ``low`` (the kernel queue meanwhile fills: local senders
            wait, UDP drops).
        mode: permissions of the socket file (e.g. 0o600), in force from the moment the file
            exists: never more open than asked, and no process-wide umask change.
        unlink_stale: replace a stale socket file (one nobody is bound to) at ``path``. A live
            socket there is "eaddrinuse"; anything that is not a socket is "eexist" and is never
            removed; symbolic links are never followed.
        credentials: local sockets only: ask the kernel for each sender's credentials
            (SO_PASSCRED). Active messages are then ``("udp", sock, address, port, anc, data)``
            and ``recv`` returns ``(address, port, anc, data)``, with ``anc`` a dict of the
            sender's "pid", "uid" and "gid" as the kernel vouches for them.
        broadcast: UDP over IPv4: allow sending to a broadcast address (SO_BROADCAST).
        multicast_if: the interface multicast leaves by: an IPv4 address of it (inet), or its
            index or name (inet6). Without it the kernel picks by route.
        multicast_loop: whether multicast sent here is looped back to this host's members
            (the kernel's default: True).
        multicast_ttl: hops a multicast datagram may take, 0..255 (kernel default 1).
        add_membership: join a group on arrival: ``(group, interface)`` or a list of them;
            interface is an IPv4 address ("0.0.0.0": the kernel picks) for inet, an index (0:
            the kernel picks) or name for inet6. ``setopts(drop_membership=...)`` leaves.
            These are OTP's option names; as in OTP, memberships cannot be read back.

    Raises:
        TypeError, ValueError: malformed arguments.
        Error: "eaddrinuse", "eacces", "enoent" (missing directory), "emfile", "einval" ...
    """
    fam = _check_open_args(port, family, ip, path)
    active = check_active(active)
    recbuf = check_bufsize(recbuf, "recbuf")
    sndbuf = check_bufsize(sndbuf, "sndbuf")
    reuse = (check_bool(reuseaddr, "reuseaddr"), check_bool(reuseport, "reuseport"))
    timeout = check_timeout(send_timeout, "send_timeout")
    watermarks = check_watermarks(high_msgq_watermark, low_msgq_watermark)
    file_mode = _check_file_options(mode, unlink_stale, path)
    if check_bool(credentials, "credentials") and fam != "local":
        raise ValueError("credentials=True is for local sockets; UDP carries no peer credentials")
    udp_options = _check_settable(
        {
            name: value
            for name, value in (
                ("broadcast", broadcast),
                ("multicast_if", multicast_if),
                ("multicast_loop", multicast_loop),
                ("multicast_ttl", multicast_ttl),
                ("add_membership", add_membership),
            )
            if value is not None
        },
        fam,
    )
    transition = set_active(False, active)
    owner = current()
    local_path = check_local_path(path) if path is not None else None
    try:
        sock = _socket_mod.socket(
            # Blocking mode, so that a waiting send can block in the kernel (_wait_in_kernel);
            # every call that must not block passes MSG_DONTWAIT.
            _AF[fam],
            _socket_mod.SOCK_DGRAM | _socket_mod.SOCK_CLOEXEC,
        )
    except OSError as exc:
        raise error_from_oserror(exc, " opening a socket") from None
    where = ""
    try:
        if reuse[0]:
            sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_REUSEADDR, 1)
        if reuse[1]:
            sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_REUSEPORT, 1)
        if recbuf is not None:
            sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_RCVBUF, recbuf)
        if sndbuf is not None:
            sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDBUF, sndbuf)
        if credentials:
            sock.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_PASSCRED, 1)
        bound_id = None
        if fam == "local":
            if local_path is not None:
                bound_id = _bind_local(sock, local_path, file_mode, unlink_stale)
        else:
            if fam == "inet6":
                sock.setsockopt(_socket_mod.IPPROTO_IPV6, _socket_mod.IPV6_V6ONLY, 0)
            sock.bind((ip if ip is not None else ("::" if fam == "inet6" else "0.0.0.0"), port))
            where = " setting " + ", ".join(udp_options)
            _set_udp_options(sock, fam, udp_options)
    except Error:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        if udp_options and where.startswith(" setting"):
            raise error_from_oserror(exc, where) from None
        where = f" binding {format_local(local_path)}" if fam == "local" else f" binding port {port}"
        if isinstance(exc, _socket_mod.gaierror):
            raise Error("einval", f"cannot bind to ip={ip!r}: {exc.strerror}") from None
        raise error_from_oserror(exc, where) from None
    result = Socket(sock, fam, owner, local_path, bound_id, timeout, reuse, watermarks, credentials)
    if not owner._adopt_socket(result):  # pragma: no cover - the caller is running, so alive
        result.close()
        raise Error("badarg", "the calling process has ended")
    if transition.mode is not False:
        with result._lock:
            result._apply_mode_locked(transition.mode)
    elif transition.passive_message:
        owner._mailbox.put(("udp_passive", result))
    return result


def _check_file_options(mode: object, unlink_stale: object, path: object) -> int | None:
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


def _bind_local(sock: _socket_mod.socket, path: str | bytes, mode: int | None, unlink_stale: bool) -> Any:
    """Bind a local socket; return (st_dev, st_ino) of the file it made, or None (abstract)."""
    if mode is not None:
        # Linux creates the file with the socket inode's mode less the umask: setting it before
        # bind makes the file never more open than asked, without touching the process umask.
        os.fchmod(sock.fileno(), mode)
    try:
        sock.bind(path)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not isinstance(path, str):
            raise
        _clear_path(path, unlink_stale)
        sock.bind(path)
    if not isinstance(path, str):
        return None
    st = os.lstat(path)
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        # The umask took bits away: give them back. The file was less open than asked until now.
        os.chmod(path, mode)
    return (st.st_dev, st.st_ino)


def _clear_path(path: str, unlink_stale: bool) -> None:
    """Something exists at ``path``: raise, or remove it if it is a stale socket we may replace."""
    try:
        st = os.lstat(path)  # never follows a symbolic link
    except FileNotFoundError:
        return  # gone meanwhile: bind again
    if not stat.S_ISSOCK(st.st_mode):
        kind = (
            "a symbolic link"
            if stat.S_ISLNK(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a regular file"
            if stat.S_ISREG(st.st_mode)
            else "not a socket"
        )
        raise Error("eexist", f"{path} exists and is {kind}; genudp never removes it", errno=errno.EEXIST)
    if _socket_is_live(path):
        raise Error("eaddrinuse", f"a live socket is bound at {path}", errno=errno.EADDRINUSE)
    if not unlink_stale:
        raise Error(
            "eaddrinuse",
            f"{path} is a stale socket file (nothing is bound to it); open(..., unlink_stale=True) replaces it",
            errno=errno.EADDRINUSE,
        )
    again = os.lstat(path)
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
        raise Error("eaddrinuse", f"{path} changed while genudp looked at it", errno=errno.EADDRINUSE)
    os.unlink(path)


def _socket_is_live(path: str) -> bool:
    probe = _socket_mod.socket(_socket_mod.AF_UNIX, _socket_mod.SOCK_DGRAM | _socket_mod.SOCK_CLOEXEC)
    try:
        probe.connect(path)
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # e.g. EPROTOTYPE: a stream socket listens there
    finally:
        probe.close()


def _check_open_args(port: object, family: object, ip: object, path: object) -> Family:
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
