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
- An epoll set names *open files*, not fd numbers: a file whose last fd closes leaves every set
  by itself. Sockets are unregistered explicitly anyway, before their fd closes, because a
  forked child may still hold the file open.

What the hub does: it reads the sockets registered with it (``Socket._hub_readable``, see
``_owner_reads``), and runs a *ticker* (the owner-reads lease, ``_owner_reads.Lease``) every
``ticker.interval`` seconds while ``ticker.timed`` is set, sleeping without a timeout otherwise:
an idle hub costs no CPU. ``wake()`` makes it start ticking.

What the hub does *not* do: it never waits for writability. Senders wait in their own thread
(see ``_sendwait``): a waiting sender and the hub never exchange messages, so no internal
message can reach a mailbox, and a blocked sender costs one sleeping ``poll``.

Failures: an error while serving one socket is that socket's (counted in its ``info()`` and
logged), and the loop goes on. ``epoll_wait`` itself fails only when the hub's own fds are
broken (another part of the program closed them): that is reported once, the hub ends, every
registered socket counts the error, and the next ``hub()`` raises it instead of spinning.
``stop()`` ends the thread and closes the epoll and the eventfd.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

from ._deferred import new_lock
from ._errors import Error, error_from_oserror

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("Hub", "Ticker", "current_hub", "hub")

_log: Final = logging.getLogger("genudp")


class Ticker(Protocol):
    """What the hub runs on a timer (the owner-reads lease)."""

    interval: float
    timed: bool

    def start(self) -> None:
        """``wake()`` was called: start ticking."""

    def tick(self) -> None:
        """Called every ``interval`` while ``timed``."""


class Hub:
    """The epoll loop. One per process, started on first use."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        try:
            self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except BaseException:
            self._epoll.close()
            raise
        self._sockets: dict[int, Socket] = {}
        self._lock = new_lock()
        self._stopping = False
        self.failure: OSError | None = None
        self.ticker: Ticker | None = None
        self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._thread = threading.Thread(target=self._run, name="genudp-hub", daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self._close_fds()
            raise

    def register(self, sock: Socket, fd: int) -> None:
        """Start reading ``sock`` (called with the socket's lock held)."""
        with self._lock:
            self._check_running()
            self._sockets[fd] = sock
            try:
                self._epoll.register(fd, select.EPOLLIN)
            except FileExistsError:
                self._epoll.modify(fd, select.EPOLLIN)

    def unregister(self, sock: Socket, fd: int) -> None:
        """Stop reading ``sock`` (called with the socket's lock held, before its fd closes)."""
        with self._lock:
            # The epoll set first: cut short by an exception (in the caller's thread), the fd
            # is still in _sockets, which is harmless, and the caller unregisters again.
            with contextlib.suppress(FileNotFoundError, ValueError, OSError):
                self._epoll.unregister(fd)
            if self._sockets.get(fd) is sock:
                del self._sockets[fd]

    def arm(self, fd: int, on: bool) -> None:
        """Read a registered fd again (``on``), or leave it registered but silent (its owner
        reads it: ``_owner_reads``). Called with the socket's lock held."""
        with self._lock:
            self._check_running()
            self._epoll.modify(fd, select.EPOLLIN if on else 0)

    def wake(self) -> None:
        """Make the hub run its ticker (an owner with borrowed sockets left its wait)."""
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake_fd, 1)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """End the thread, then close the epoll and the eventfd. Sockets registered meanwhile
        are no longer read. (A running program keeps its hub; a forked child, which has no
        hub thread, only closes its copies of the fds: _forget_hub_in_child.)"""
        self._stopping = True
        self.wake()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _check_running(self) -> None:
        if self.failure is not None:
            raise error_from_oserror(self.failure, " (genudp's I/O hub stopped: epoll_wait failed)")
        if self._stopping:
            raise Error("closed", "genudp's I/O hub was stopped")

    def _close_fds(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self._epoll.close()
            with contextlib.suppress(OSError):
                os.close(self._wake_fd)

    def _run(self) -> None:
        try:
            self._loop()
        except OSError as exc:
            # Only epoll_wait itself gets here: every socket's own errors stay in _serve.
            _log.error("genudp hub: epoll_wait failed (%s); the hub stops, active sockets are no longer read", exc)
            self.failure = exc
            with self._lock:
                sockets = list(self._sockets.values())
            for sock in sockets:
                with contextlib.suppress(Exception):
                    sock._hub_failed(exc)
        finally:
            self._close_fds()

    def _loop(self) -> None:
        poll = self._epoll.poll
        sockets = self._sockets
        wake_fd = self._wake_fd
        next_tick = 0.0
        while not self._stopping:
            ticker = self.ticker
            timed = ticker is not None and ticker.timed
            events = poll(ticker.interval if timed and ticker is not None else -1)
            for fd, _mask in events:
                sock = sockets.get(fd)
                if sock is None:
                    if fd == wake_fd:
                        with contextlib.suppress(BlockingIOError):
                            os.eventfd_read(wake_fd)
                        ticker = self.ticker
                        if ticker is not None and not self._stopping:
                            ticker.start()
                            next_tick = time.monotonic() + ticker.interval
                    else:
                        self._drop_stale(fd)
                    continue
                self._serve(sock)
            ticker = self.ticker
            if ticker is not None and ticker.timed and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + ticker.interval
                try:
                    ticker.tick()
                except Exception:  # pragma: no cover - last line of defence
                    _log.exception("genudp hub: error in the lease")

    def _drop_stale(self, fd: int) -> None:
        # An fd in the set that no socket claims: a registration an exception cut short in the
        # registering thread. Level-triggered, it would make this loop spin.
        with self._lock:
            if fd not in self._sockets:
                with contextlib.suppress(FileNotFoundError, ValueError, OSError):
                    self._epoll.unregister(fd)

    @staticmethod
    def _serve(sock: Socket) -> None:
        try:
            sock._hub_readable()
        except Exception as exc:
            _log.exception("genudp hub: error while reading %r", sock)
            try:
                sock._hub_failed(exc)
            except Exception:  # pragma: no cover - last line of defence
                _log.exception("genudp hub: could not record the error of %r", sock)


_hub: Hub | None = None
_hub_lock = new_lock()


def hub() -> Hub:
    """The process's hub, started on first use.

    Raises:
        Error: the hub failed (its reason), or it could not start (e.g. "emfile").
    """
    global _hub
    current = _hub
    if current is not None and current.failure is None:
        return current
    with _hub_lock:
        if _hub is None:
            try:
                _hub = Hub()
            except OSError as exc:
                if isinstance(exc, Error):
                    raise
                raise error_from_oserror(exc, " starting genudp's I/O hub") from None
        _hub._check_running()
        return _hub


def held_here() -> bool:
    """Whether this thread holds the hub's lock (or the one that starts it): _deferred, rule 1."""
    current = _hub
    return _hub_lock._is_owned() or (current is not None and current._lock._is_owned())


def current_hub() -> Hub | None:
    """The hub if one was started, without starting one."""
    return _hub


def _forget_hub_in_child() -> None:
    # A forked child has no hub thread, only copies of the parent's epoll and eventfd: close
    # them (the parent's stay open) and start a new hub on first use.
    global _hub, _hub_lock
    old, _hub = _hub, None
    _hub_lock = new_lock()
    if old is not None:
        with contextlib.suppress(OSError):
            old._epoll.close()
        with contextlib.suppress(OSError):
            os.close(old._wake_fd)


os.register_at_fork(after_in_child=_forget_hub_in_child)
