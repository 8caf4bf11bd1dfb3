"""The I/O hub: one epoll thread that reads active-mode sockets into their owners' mailboxes.

Some facts about the kernel that shape this module (DESIGN.md §2, net/unix/af_unix.c):

- A Unix-domain datagram receiver holds ``net.unix.max_dgram_qlen + 1`` datagrams (11 with the
  default 10). A receiver that does not read makes its senders wait, so active-mode reading must
  never stall behind one slow mailbox or one failing socket.
- epoll here is level-triggered: a socket that still has data after a batch is reported again on
  the next ``poll``, so the hub can read at most a batch per socket per round (fairness between
  sockets) without ever losing a wake-up. Edge-triggered epoll would need "read until EAGAIN"
  discipline and can stall when a wake-up is missed.
- Removing an fd from an epoll set while another thread sits in ``epoll_wait`` is safe; an event
  already fetched for a socket that has since closed is harmless because every read happens under
  the socket's lock and first checks that the socket is still open and active.

A thread process that waits in ``receive`` reads its own active sockets itself
(``Mailbox._wait_reading``): that saves the hand-off from this thread to the owner (a wake-up, a
thread switch and a GIL hand-over) on every datagram to an owner that keeps up. It *borrows* a
socket: disarms it in this epoll set (the fd stays registered, with no events) and polls it
beside its mailbox's eventfd. It keeps the socket borrowed when ``receive`` returns, since it
is usually back within microseconds, and an arm plus a disarm per wait cost more than the rest
of the wait. This thread holds the lease: every ``LEASE`` seconds it looks at each kept
socket's owner, and takes back (arms again) a socket whose owner has been neither waiting nor
back in ``receive`` for a whole lease. So a busy owner's datagrams wait in the kernel for at
most two leases, then queue in its mailbox as before. When every owner with kept sockets has
been asleep in ``receive`` for a few leases, this thread stops looking and sleeps until the
next owner leaves its wait: no timer runs while everyone is idle.

What the hub does *not* do: it never waits for writability. Senders wait in their own thread (see
``_socket.py``): a waiting sender and the hub never exchange messages, so no internal message can
reach a mailbox, and a blocked sender costs one sleeping ``poll``.

The hub must never die: an error while serving one socket is that socket's (it is counted in the
socket's ``info()`` and logged), and the loop goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("Hub", "hub")

_log: Final = logging.getLogger("genudp")

#: How long (seconds) a process may keep a borrowed socket while it is not in ``receive``.
LEASE: Final = 0.01
#: Looks at the kept sockets that found every owner asleep in ``receive`` before the hub stops
#: looking (and sleeps without a timeout until an owner leaves its wait).
_CALM_LOOKS: Final = 3


class Hub:
    """The epoll loop. One per process, started on first use."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._sockets: dict[int, Socket] = {}
        self._lock = threading.Lock()
        # Sockets borrowed by their owners (Socket._borrow), each with what the last look saw:
        # [the owner mailbox's wait count, whether it was asleep in poll].
        self._kept: dict[Socket, list[int]] = {}
        # True while this thread looks at the kept sockets every LEASE; an owner that leaves
        # its wait while it is False writes _wake_fd.
        self.timed = False
        self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._thread = threading.Thread(target=self._run, name="genudp-hub", daemon=True)
        self._thread.start()

    def register(self, sock: Socket, fd: int) -> None:
        """Start reading ``sock`` (called with the socket's lock held)."""
        with self._lock:
            self._sockets[fd] = sock
            try:
                self._epoll.register(fd, select.EPOLLIN)
            except FileExistsError:
                self._epoll.modify(fd, select.EPOLLIN)

    def unregister(self, sock: Socket, fd: int) -> None:
        """Stop reading ``sock`` (called with the socket's lock held, before its fd closes)."""
        with self._lock:
            if self._sockets.get(fd) is sock:
                del self._sockets[fd]
            try:
                self._epoll.unregister(fd)
            except (FileNotFoundError, ValueError, OSError):
                pass

    def keep(self, sock: Socket) -> None:
        """``sock``'s owner borrowed it (called with the socket's lock held)."""
        self._kept[sock] = [-1, 1]

    def wake(self) -> None:
        """An owner with kept sockets left its wait while this thread was not looking."""
        os.eventfd_write(self._wake_fd, 1)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        poll = self._epoll.poll
        sockets = self._sockets
        wake_fd = self._wake_fd
        calm = 0
        next_look = 0.0
        while True:
            try:
                events = poll(LEASE if self.timed else -1)
            except Exception:  # pragma: no cover - epoll_wait only fails on programming errors
                _log.exception("genudp hub: epoll_wait failed")
                continue
            for fd, _mask in events:
                sock = sockets.get(fd)
                if sock is None:
                    if fd == wake_fd:
                        with contextlib.suppress(BlockingIOError):
                            os.eventfd_read(wake_fd)
                        self.timed = True
                        calm = 0
                        next_look = time.monotonic() + LEASE
                    continue
                try:
                    sock._hub_readable()
                except Exception as exc:
                    _log.exception("genudp hub: error while reading %r", sock)
                    try:
                        sock._hub_failed(exc)
                    except Exception:  # pragma: no cover - last line of defence
                        _log.exception("genudp hub: could not record the error of %r", sock)
            if self.timed and time.monotonic() >= next_look:
                next_look = time.monotonic() + LEASE
                try:
                    calm = self._look(calm)
                except Exception:  # pragma: no cover - last line of defence
                    _log.exception("genudp hub: error while looking at borrowed sockets")

    def _look(self, calm: int) -> int:
        """The lease: take back each kept socket whose owner has been away from ``receive``
        since the last look (a whole lease), and stop looking once every owner has slept
        through ``_CALM_LOOKS`` looks. Returns the new count of calm looks."""
        all_asleep = True
        kept = self._kept
        for sock, seen in list(kept.items()):
            # Under the socket's lock, like _borrow's keep(): the owner cannot borrow it again
            # between the check and the pop, which would leave a borrowed socket unwatched.
            with sock._lock:
                if not sock._borrowed:  # given back meanwhile (closed, paused, handed over, passive)
                    kept.pop(sock, None)
                    continue
                mailbox = sock._owner._mailbox
                waits, asleep = mailbox._waits, int(mailbox._polling)
                if not asleep and not seen[1] and waits == seen[0]:
                    sock._return_locked()
                    kept.pop(sock, None)
                    continue
            seen[0], seen[1] = waits, asleep
            all_asleep = all_asleep and bool(asleep)
        calm = calm + 1 if all_asleep else 0
        if calm >= _CALM_LOOKS or not self._kept:
            # Stop looking, then check again that every owner still sleeps: one that woke in
            # between either saw timed False (and writes _wake_fd) or is seen awake here.
            self.timed = False
            if all(sock._owner._mailbox._polling for sock in list(self._kept)):
                return 0
            self.timed = True
        return calm


_hub: Hub | None = None
_hub_lock = threading.Lock()


def hub() -> Hub:
    """The process's hub, started on first use."""
    global _hub
    current = _hub
    if current is not None:
        return current
    with _hub_lock:
        if _hub is None:
            _hub = Hub()
        return _hub


def _forget_hub_in_child() -> None:
    # A forked child has no hub thread: start a new one on first use.
    global _hub, _hub_lock
    _hub = None
    _hub_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_hub_in_child)
