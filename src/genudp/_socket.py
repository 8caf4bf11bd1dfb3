"""gen_udp sockets: a socket's state, its fd guard, the fast send and recv, ownership, close.

This module owns the kernel socket's lifetime and every rule about when a datagram counts as
sent or taken. What the other modules of the I/O layer do with a socket is theirs, bound into
:class:`Socket` as methods: ``_sendwait`` (waiting on a full destination, send errors,
``connect``),
``_recvwait`` (``recv`` with a timeout or credentials), ``_aio_io`` (``asend``, ``arecv``),
``_sockopts`` (``setopts``, ``getopts``), ``_owner_reads`` (active mode: the hub, the owner's
own reads), ``_counters`` (``info``), ``_process`` (``controlling_process``: a hand-over
between processes). ``_open`` makes sockets.

The protocol: those modules, and only they, use these attributes of a Socket: ``_sock``,
``_fd``, ``_c_fd``, ``_lock``, ``_state``, ``_users`` (the fd guard, below), ``_mode``,
``_owner``, ``_paused``, ``_registered``, ``_borrower``, ``_high``, ``_low``, ``_credentials``,
``_convert``, ``_counters``, ``_recv_counters``, ``_direct_counters``, ``_errors``, ``_sent``,
``_direct``, ``_send_timeout``, ``_slice``, ``_target``, ``_aio``, ``_reuse``, and the
methods defined here. Changes of ``_mode``, ``_paused``, ``_registered``, ``_borrower``,
``_owner`` and ``_state`` happen under ``_lock``.

The fd guard. Any thread may call ``close()`` while others are inside a syscall or a wait on
the fd; the fd itself is closed only when none is, so that its number is never reused under a
thread that still uses it. Each such thread holds an entry in ``_users`` (``list.append`` and
``list.pop`` are single C calls, atomic under the GIL, so entering and leaving take no lock).
Why no lock is needed: a user appends, then reads the state; close() writes the state, then
reads the users. One of the two sees the other: either close() sees this user and leaves the
fd open for it, or this user sees the socket closing and backs out. Whoever leaves last
releases the fd (``_leave_closed``). Every site is written the same way, and
``tests/unit/test_fd_guard.py`` checks each one by its syntax::

    users = self._users
    try:
        users.append(None)  # fd guard: first statement of the try that releases it
        ...
    finally:
        users.pop()
        if self._state and not users:
            self._leave_closed()

Interrupts: an exception from a signal handler is raised only at certain points between
bytecodes (after a call returns, at a function's start, at a loop's back edge). Taken as the
first statement of the ``try``, the entry is either not taken yet (no release owed) or inside
the ``try`` (released by its ``finally``): no Python code runs in between. (A helper such as
``_enter()`` would not do: a handler may raise on its return, after the append and before the
caller's ``try``.) One window remains: a handler that raises right after the last user's
``pop``, while another thread is closing the socket, skips ``_leave_closed``; the next
``close()``, and the socket's finalizer, release such an fd.

Closing: it marks the socket closed, stops the hub and the owner reading it, writes the
eventfd that every poll waiter watches, and shuts the socket down for reading (which wakes a
``recv`` blocked in the kernel). A file genudp bound is unlinked, if it is still that file,
before the fd closes: a sender then finds the path gone ("enoent") rather than a socket file
with nobody bound to it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import mmap
import os
import socket as _socket_mod
import weakref
from collections import deque
from typing import Any, Final

from . import _aio_io, _counters, _hub, _owner_reads, _process, _recvwait, _sendwait, _sockopts
from ._address import Family, format_address, format_local
from ._counters import (
    FOLD_AT,
    DirectCounters,
    RecvCounters,
    SocketCounters,
)
from ._deferred import defer, new_lock
from ._errors import Error, error_from_oserror
from ._libc import Bytes
from ._options import Mode, check_timeout
from ._process import Pid, running_loop
from ._sendwait import UNSET, Unset

__all__ = ("Socket",)

_OPEN, _CLOSING, _CLOSED = 0, 1, 2
_STATES: Final = ("open", "closing", "closed")
_DONTWAIT: Final = _socket_mod.MSG_DONTWAIT


class Socket:
    """A gen_udp socket: UDP over IPv4/IPv6, or a Unix-domain datagram socket.

    Made by :func:`genudp.open`, owned by the process that opened it. Any process may ``send``,
    ``close``, ``setopts`` and read its state; only the owner may ``recv`` and hand it over with
    ``controlling_process``. Closed when its owner ends. Use it as a context manager to close it.
    """

    __slots__ = (
        "__weakref__",
        "_aio",
        "_borrower",
        "_bound",
        "_bound_id",
        "_c_fd",
        "_convert",
        "_counters",
        "_credentials",
        "_dest",
        "_direct",
        "_direct_counters",
        "_efd",
        "_errors",
        "_fd",
        "_held",
        "_high",
        "_lock",
        "_low",
        "_mode",
        "_owner",
        "_paused",
        "_peer",
        "_rbuf",
        "_rbufs",
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
        bound_id: tuple[str, int, int] | None,
        send_timeout: float | None,
        reuse: tuple[bool, bool],
        watermarks: tuple[int, int] = (8192, 4096),
        credentials: bool = False,
    ) -> None:
        self._sock: _socket_mod.socket = sock
        self._fd: int = sock.fileno()
        self.family: Family = family
        self._lock = new_lock()
        self._state: int = _OPEN
        self._users: list[None] = []  # the fd guard (see the module's essay)
        self._aio: _aio_io.AioReader | None = None  # the event loop that watches it for arecv
        self._direct: int = 0  # sends left that go straight into a blocking call (_sendwait)
        self._efd: int | None = None
        self._owner: Pid = owner
        self._mode: Mode = False
        self._send_timeout: float | None = send_timeout
        self._bound: str | bytes | None = bound
        self._bound_id: tuple[str, int, int] | None = bound_id
        self._peer: Any = None
        self._registered: bool | None = False  # in the hub's epoll set (None: in flux; _owner_reads)
        self._borrower: _owner_reads.OwnerPoll | None = None  # ... read by its owner (rule 2)
        self._reuse: tuple[bool, bool] = reuse
        self._credentials: bool = credentials
        self._slice: float = _sendwait.SLICE  # the longest a send blocks in the kernel at a time
        self._set_slice_locked()
        self._c_fd = ctypes.c_int(self._fd)
        self._target: tuple[Any, tuple[Any, ctypes.c_uint]] | None = None
        # The last immutable destination, its checked form, and its type if str or bytes (then
        # an equal value of that exact type matches too): as one tuple (resolve_dest).
        self._dest: tuple[Any, Any, type | None] = (None, None, None)
        # Mailbox watermarks, in messages.
        self._high: int = watermarks[0]
        self._low: int = watermarks[1]
        self._paused: bool = False
        self._counters = SocketCounters()
        self._errors: dict[str, int] = {}
        self._recv_counters = RecvCounters()
        # Datagrams taken from the kernel and not yet returned by recv/arecv, and the buffer
        # they were read into (_recvwait, rules 1 and 2).
        self._held: deque[tuple[Any, ...]] = deque()
        self._rbuf: mmap.mmap | None = None
        self._rbufs: tuple[mmap.mmap] | None = None  # (_rbuf,): what recv's fast path maps over
        # The size of each datagram sent since the last fold (_counters.fold_sent).
        self._sent: deque[int] = deque()
        self._direct_counters: dict[int, DirectCounters] = {}
        self._convert = _local_source if family == "local" else _inet_source
        _every_socket.add(self)

    # -- introspection --------------------------------------------------------------------------

    def __repr__(self) -> str:
        name = self._describe(self._bound) if self.family == "local" and self._state else "-"
        if not self._state:
            with contextlib.suppress(Error):
                name = self._describe(self.sockname())
        peer = f" peer={self._describe(self._peer)}" if self._peer is not None else ""
        return (
            f"<genudp.Socket fd={self._fd} {self.family} {name}{peer} owner={self._owner!r} "
            f"active={self._mode!r} {_STATES[self._state]}>"
        )

    def _describe(self, address: Any) -> str:
        if self.family == "local":
            return format_local(address)
        return format_address(self.family, address[0], address[1])

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

    info = _counters.info

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

    def send(self, data: Bytes, dest: Any = None, *, timeout: float | Unset | None = UNSET) -> None:
        """Send one datagram; any process may call it.

        Returns only once the kernel has accepted the datagram, exactly once. If it raises, the
        datagram was not sent. Blocks only while the destination (or this socket's send buffer)
        is full, using no CPU, for at most ``timeout``; ``close()`` wakes it with "closed".

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
        # PERF: the common case is one non-blocking syscall in the caller's thread, and its
        # counting is one deque append (benchmarks/micro/send_paths.py);
        # tests/unit/test_fast_paths.py pins it to the slow path's results and counters.
        users = self._users
        try:
            users.append(None)  # fd guard: first statement of the try that releases it
            if timeout is not UNSET:
                timeout = check_timeout(timeout)
            if dest is not None:
                # Every destination is checked before any syscall (resolve_dest); the last
                # immutable one is remembered, so a sender to one receiver checks it once.
                known = self._dest
                if dest is known[0] or (type(dest) is known[2] and dest == known[0]):
                    dest = known[1]
                else:
                    dest = self._resolve_dest(dest)
            if not self._state and self._direct <= 0:
                try:
                    sock = self._sock
                    sent = sock.sendto(data, _DONTWAIT, dest) if dest is not None else sock.send(data, _DONTWAIT)
                except BlockingIOError:
                    pass  # full: the wait below, outside this clause (no BlockingIOError context)
                except (OSError, TypeError, ValueError, OverflowError, BufferError) as exc:
                    raise self._send_failure(exc, data, dest) from None
                else:
                    log = self._sent
                    log.append(sent)
                    if len(log) > FOLD_AT:
                        self._fold_sent()
                    return
                self._send_slow(data, dest, timeout, True)
            else:
                self._send_slow(data, dest, timeout, False)
        finally:
            users.pop()
            if self._state and not users:
                self._leave_closed()

    _record_sent = _counters.record_sent
    _fold_sent = _counters.fold_sent_locking
    _send_slow = _sendwait.send_slow
    _send_now = _sendwait.send_now
    _send_direct = _sendwait.send_direct
    _send_wait = _sendwait.send_wait
    _wait_limit = _sendwait.wait_limit
    _send_failure = _sendwait.send_failure
    _count_eintr = _sendwait.count_eintr
    _resolve_dest = _sendwait.resolve_dest
    _sleep = _sendwait.sleep
    _set_slice_locked = _sendwait.set_slice_locked
    asend = _aio_io.asend

    # -- receiving ------------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> tuple[Any, ...]:
        """Take one datagram from a passive socket; owner only.

        Blocks until one arrives (no CPU used) or ``timeout`` seconds pass; ``0`` only looks.
        ``close()`` wakes a waiting ``recv`` at once with "closed".

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
        # PERF: the common case, kept lean: wait in the kernel, as a plain blocking socket does
        # (one syscall, the GIL released); close() wakes it with shutdown(SHUT_RD), and it
        # returns 0 bytes (benchmarks/micro/recv_paths.py); tests/integration/test_fast_paths.py
        # pins it to _recv. The read stores its datagram in _held in the same C call, and
        # take_held gives it up only as it returns (_recvwait, rules 1 and 2).
        self._check_recv()
        held = self._held
        if held:
            return self._take_held()  # taken from the kernel by a call an exception cut short
        if running_loop() is not None:
            return self._recv(None)  # raises if it would have to wait
        closing = _OPEN
        users = self._users
        try:
            users.append(None)  # fd guard: first statement of the try that releases it
            if self._state:
                raise Error("closed", "the socket is closed")
            bufs = self._rbufs
            if bufs is None:
                bufs = _recvwait.rbufs(self)
            try:
                # A blocking read into a buffer of the largest datagram there can be (it never
                # truncates), its result stored in the same C call (_recvwait, rule 1).
                held.extend(map(self._sock.recvfrom_into, bufs))
            except OSError as exc:
                raise error_from_oserror(exc) from None
        finally:
            users.pop()
            closing = self._state
            if closing and not users:
                self._leave_closed()
        if closing:
            held.clear()  # close's wake-up (0 bytes), or a datagram of a closed socket
            raise Error("closed", "the socket was closed while waiting")
        # take_held, for the one entry this call read (_recvwait, rule 2).
        entry = held[0]
        got, source = entry
        data = bufs[0][:got]
        result = (source[0], source[1], data) if source.__class__ is tuple else (source, 0, data)
        c = self._recv_counters  # the owner's thread only: no lock (see _counters)
        try:
            held.popleft()
            c.received += 1
            c.bytes_received += got
            return result
        except BaseException:
            if not held or held[0] is not entry:
                held.appendleft(entry)
            raise

    _check_recv = _recvwait.check_recv
    _recv = _recvwait.recv_slow
    _read_held = _recvwait.read_held
    _recv_buffers = _recvwait.rbufs
    _take_held = _recvwait.take_held
    _recv_wait = _recvwait.recv_wait
    arecv = _aio_io.arecv

    # -- active mode (see _owner_reads) ---------------------------------------------------------

    _hub_readable = _owner_reads.hub_readable
    _owner_readable = _owner_reads.owner_readable
    _update_registration_locked = _owner_reads.update_registration_locked
    _give_back_locked = _owner_reads.give_back_locked

    def _apply_mode_locked(self, mode: Mode) -> None:
        self._mode = mode
        self._update_registration_locked()

    _resume_reading = _owner_reads.resume_reading
    _hub_failed = _owner_reads.hub_failed

    # -- options, connect, ownership --------------------------------------------------------------

    setopts = _sockopts.setopts
    connect = _sendwait.connect
    controlling_process = _process.controlling_process
    _kernel_drops = _sockopts.kernel_drops
    getopts = _sockopts.getopts

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket; idempotent, any process, does not block.

        Every thread blocked in ``send`` or ``recv`` on it wakes at once with reason "closed"
        (nothing sent or taken). A file genudp bound is unlinked if it is still that file.

        From a signal handler that interrupted genudp's own code while it held a lock the close
        needs, a helper thread makes the close as soon as that code lets go (_deferred, rule 1).
        """
        if _close_would_wait_on_itself(self):
            defer(self.close)
            return
        with self._lock:
            if self._state == _CLOSED:
                return
            # Every step below may be taken again: a close that an exception cut short (a
            # signal handler's) is finished by the next close(), and a guard entry that an
            # interrupted leave kept is released by it (see the essay).
            self._state = _CLOSING
            self._update_registration_locked()  # the hub and the owner stop reading it
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
            _unlink_bound(self._bound_id)
            if not self._users:
                self._release_locked()
            owner = self._owner
        owner._drop_socket(self)

    def _close_for_owner_exit(self, owner: Pid) -> None:
        # Under the lock: a controlling_process to ``owner`` that adopted the socket before
        # ``owner`` ended may still be on its way to making ``owner`` the owner.
        with self._lock:
            mine = self._owner is owner
        if mine:
            self.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # The finalizer's part of the fd guard: an fd that an interrupted leave left open.
        if getattr(self, "_state", _CLOSED) == _CLOSING and not self._users:
            self._sock.close()

    def _leave_closed(self) -> None:
        with self._lock:
            if self._state == _CLOSING and not self._users:
                self._release_locked()

    def _release_locked(self) -> None:
        self._state = _CLOSED
        self._sock.close()
        if self._efd is not None:
            os.close(self._efd)
            self._efd = None

    # -- helpers for the waits -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state:
            raise Error("closed", "the socket is closed")

    def _check_waiting(self) -> None:
        # Called by a waiter after every wake-up: its fd guard entry keeps the fd alive meanwhile.
        if self._state:
            raise Error("closed", "the socket was closed while waiting")

    def _eventfd(self) -> int:
        with self._lock:
            if self._efd is None:
                self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            return self._efd


def _close_would_wait_on_itself(sock: Socket) -> bool:
    """Whether this thread holds a lock that close() takes: a signal handler interrupted genudp's
    own code (_deferred, rule 1)."""
    borrower = sock._borrower
    return (
        sock._lock._is_owned()
        or sock._owner._held_here()
        or _hub.held_here()
        or (borrower is not None and borrower.held_here())
    )


def _unlink_bound(bound: tuple[str, int, int] | None) -> None:
    """Unlink the file a socket bound, by its absolute path (the cwd may have changed since the
    bind), and only if it is still that file (same device and inode)."""
    if bound is None:
        return
    path, dev, ino = bound
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == (dev, ino):
            os.unlink(path)
    except OSError:
        pass


_log = logging.getLogger("genudp")

#: Every Socket of this OS process: what a forked child must disown (_forget_parent), and what
#: interpreter exit closes (_close_all_at_exit).
_every_socket: weakref.WeakSet[Socket] = weakref.WeakSet()


def _forget_parent() -> None:
    """In a forked child: the parent's sockets are not the child's. Each is closed here as far
    as the child goes (its copy of the fd, and of the close eventfd), without shutdown (which
    would reach the parent's socket too), without unlinking the parent's file, and without a
    lock (one a parent thread held at the fork would never be released: each is replaced)."""
    for sock in list(_every_socket):
        sock._lock = new_lock()
        sock._users = []
        sock._aio = None
        sock._registered = False
        sock._borrower = None
        sock._bound_id = None  # never unlink the parent's file
        if sock._state != _CLOSED:
            sock._state = _CLOSED
            with contextlib.suppress(OSError):
                sock._sock.close()
            if sock._efd is not None:
                with contextlib.suppress(OSError):
                    os.close(sock._efd)
                sock._efd = None


def _close_all_at_exit() -> None:
    """Interpreter exit closes every socket still open, whoever owns it: a spawned process's
    thread is a daemon, which exit stops without unwinding, and a task process may never end.
    So a file genudp bound is unlinked (if still that file) and the program can run again."""
    for sock in list(_every_socket):
        try:
            sock.close()
        except Exception:  # pragma: no cover - one socket must not keep the others open
            _log.exception("genudp: closing %r at exit", sock)


os.register_at_fork(after_in_child=_forget_parent)
atexit.register(_close_all_at_exit)


def _local_source(source: Any) -> tuple[Any, int]:
    return source, 0


def _inet_source(source: Any) -> tuple[Any, int]:
    # IPv4 gives (host, port), IPv6 (host, port, flowinfo, scope_id): both start alike.
    return source[0], source[1]
