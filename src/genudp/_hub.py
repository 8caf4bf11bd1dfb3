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

A thread process that waits in ``receive`` reads its own active sockets itself while it
waits (``Mailbox._wait_reading``): it disarms them here (the fd stays registered, with no
events: ``Socket._borrow``), polls them
beside its mailbox's eventfd, reads what arrives straight into its mailbox, and arms them again
before ``receive`` returns. That saves the hand-off from this thread to the owner (a wake-up, a
thread switch and a GIL hand-over) on every datagram to an owner that keeps up. While the owner
does anything else, the hub reads its sockets as before, so a busy owner's datagrams still
queue in its mailbox rather than in the kernel.

What the hub does *not* do: it never waits for writability. Senders wait in their own thread (see
``_socket.py``): a waiting sender and the hub never exchange messages, so no internal message can
reach a mailbox, and a blocked sender costs one sleeping ``poll``.

The hub must never die: an error while serving one socket is that socket's (it is counted in the
socket's ``info()`` and logged), and the loop goes on.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("Hub", "hub")

_log: Final = logging.getLogger("genudp")


class Hub:
    """The epoll loop. One per process, started on first use."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._sockets: dict[int, Socket] = {}
        self._lock = threading.Lock()
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

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        poll = self._epoll.poll
        sockets = self._sockets
        while True:
            try:
                events = poll()
            except Exception:  # pragma: no cover - epoll_wait only fails on programming errors
                _log.exception("genudp hub: epoll_wait failed")
                continue
            for fd, _mask in events:
                sock = sockets.get(fd)
                if sock is None:
                    continue
                try:
                    sock._hub_readable()
                except Exception as exc:
                    _log.exception("genudp hub: error while reading %r", sock)
                    try:
                        sock._hub_failed(exc)
                    except Exception:  # pragma: no cover - last line of defence
                        _log.exception("genudp hub: could not record the error of %r", sock)


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
