"""A process's mailbox: a save queue that any thread appends to and only its owner takes from.

Rules:

- ``put`` appends and never blocks on the owner; a closed mailbox (its process ended) drops
  what it is given, as Erlang does.
- Only the owning process takes messages out; other threads only append.
- ``take_nowait(match)`` takes the *oldest* message that ``match`` accepts. Messages it skips
  keep their place and order (Erlang's save queue); each message is offered to ``match`` once
  per ``receive`` call, so a long queue costs O(n) per call, not O(n^2).
- Where a scan stopped is a count of messages ever appended (``appended``), not an index: new
  messages always go to the tail, so the ones a waiter has not seen are the last ``appended -
  seen``, whatever other waiters of the same process (asyncio tasks) took from the middle
  meanwhile, and a wait ends when ``appended`` moves past ``seen``. (An index would shift under
  such a take, and the waiter would skip a message its match accepts, then sleep beside it.)
- A message is removed by identity, not by the index it was seen at: ``match`` runs without the
  lock and may itself call ``receive`` (or another task may run), which moves the rest.
- A waiting owner sleeps in one of three ways, and ``put`` wakes whichever it is:

  - a thread: on ``signal``, a lock used as a semaphore, with a "someone waits" flag so that
    ``put`` pays for a wake-up only when there is a sleeper (``threading.Condition`` costs ~2x:
    pure Python, and it allocates a lock per wait);
  - a thread that owns active sockets: in ``epoll_wait`` on its sockets and on ``efd``, an
    eventfd that ``put`` writes while ``polling`` is set (see ``_owner_reads``);
  - asyncio tasks: ``wakers``, callbacks that ``put`` calls under the lock.

- Flow control: the hub pauses a socket whose owner's mailbox reached the socket's high
  watermark (``throttle``); whoever takes the mailbox down to the low watermark resumes it,
  outside the lock (a socket's lock is always taken before its owner's mailbox's).

Interrupts: a signal handler runs only where CPython checks for it (a function's start, a
loop's back edge, the return from a C call). ``put_many`` counts, appends (``queue +=``, no
call) and wakes with no such point before the wake-up's call; a take removes its message as
its last step and puts it back if an exception lands after; ``_owner_reads`` appends under
``_lock`` in the same way (its rule 6).

The protocol with ``_owner_reads`` and the hub's lease: they read ``queue`` (its length),
``waits`` and ``polling`` without the lock (hints, re-checked under the socket's lock), and
sleep through :meth:`sleep_begin` / :meth:`sleep_end`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._deferred import defer, new_lock

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("Mailbox",)


class Mailbox:
    """A process's message queue: append from anywhere, selective take by the owner only."""

    __slots__ = (
        "_lock",
        "_open",
        "_parked",
        "_resume_at",
        "_signal",
        "_throttled",
        "_waiting",
        "_wakers",
        "appended",
        "efd",
        "holding",
        "polling",
        "queue",
        "reads",
        "rescan",
        "waits",
    )

    def __init__(self) -> None:
        self._lock = new_lock()
        self.queue: deque[Any] = deque()
        self._signal = threading.Lock()
        self._signal.acquire()
        self._waiting = False
        self._open = True
        # Messages a signal handler sent while this thread held the lock (_deferred, rule 2).
        self._parked: list[Any] = []
        self.appended = 0  # messages ever appended: where scans and waits stand (see above)
        # Asyncio tasks of this process waiting on the mailbox: called (under the lock) instead
        # of releasing the semaphore. Several tasks of one process may wait at once.
        self._wakers: list[Callable[[], None]] = []
        # Sockets whose reading the hub paused because this mailbox reached their high
        # watermark, each with its low watermark; the owner resumes them as it catches up.
        self._throttled: list[tuple[Socket, int]] = []
        self._resume_at = -1
        # The owner's own reading of its active sockets (``_owner_reads``): set while it sleeps
        # in epoll_wait, when a wake-up is a write to ``efd``; waits begun (for the lease);
        # its epoll set (made on first use); whether to look for sockets to borrow at its
        # next wait (set when one is adopted, registered again, or taken back).
        self.polling = False
        self.waits = 0
        self.efd = -1
        self.reads: Any = None
        self.rescan = True
        # The socket whose datagram the owner's read holds, not yet a message (_owner_reads,
        # rule 6): set before the read, cleared as the message is appended.
        self.holding: Socket | None = None

    def put(self, message: object) -> None:
        """Append one message; wake the owner if it sleeps. Never blocks on the owner."""
        self.put_many((message,))

    def put_many(self, messages: list[Any] | tuple[Any, ...]) -> None:
        """Append a batch in order with one lock round trip and at most one wake-up.

        Interrupt-safe (see "Interrupts" above): the count, the append and the wake-up are one
        stretch with no point where a signal handler could run before the wake-up's call. (The
        wake-up is written out here, not a method: a call would be such a point.)

        Called while this thread holds the lock (a signal handler's send, or a message's own
        ``__eq__`` run by ``extract``), it parks the messages instead: they go in first at the
        next put, or from a helper thread once the lock is free (_deferred, rule 2)."""
        count = len(messages)
        lock = self._lock
        if lock._is_owned():
            self._parked += messages
            defer(self._unpark)
            return
        with lock:
            if not self._open:
                return
            parked = self._parked
            if parked:
                early = len(parked)  # the one call, before anything changes
                self._parked = []
                self.queue += parked
                self.appended += early
            self.appended += count
            self.queue += messages
            if self._waiting:
                self._waiting = False
                if self._wakers:
                    self._call_wakers()
                elif self.polling:
                    os.eventfd_write(self.efd, 1)
                else:
                    self._signal.release()

    def _unpark(self) -> None:
        if self._parked:
            self.put_many(())

    def held_here(self) -> bool:
        """Whether this thread holds the lock: a signal handler interrupted it (_deferred)."""
        return self._lock._is_owned()

    def _call_wakers(self) -> None:
        # Each waker is Python code (asyncio's): an exception can land inside one before it
        # scheduled its task, so every waker not known to have returned is called again (a
        # waker resolves a future only once: calling it twice is harmless).
        wakers, self._wakers = self._wakers, []
        done = 0
        try:
            for waker in wakers:
                waker()
                done += 1
        finally:
            for waker in wakers[done:]:
                waker()

    def close(self) -> None:
        """Stop accepting messages; what is queued stays readable (for post-mortems and tests)."""
        with self._lock:
            self._open = False
            reads, self.reads = self.reads, None
            if reads is not None:
                reads.close()
            if self.efd >= 0:
                os.close(self.efd)
                self.efd = -1

    def forget_in_child(self) -> None:
        """In a forked child (``_process._forget_parent``): this mailbox is the parent's. Drop
        its messages, refuse new ones, and close the child's copies of its eventfd and epoll
        set, without a lock (one a parent thread held at the fork would never be released)."""
        self._lock = new_lock()
        self._open = False
        self.queue.clear()
        self._parked = []
        self._wakers = []
        self._throttled = []
        reads, self.reads = self.reads, None
        for fd in (self.efd, -1 if reads is None else reads.epoll.fileno()):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.efd = -1

    def __len__(self) -> int:
        return len(self.queue)

    def snapshot(self) -> list[Any]:
        """A copy of the queued messages, oldest first, taking none."""
        with self._lock:
            return list(self.queue)

    def take_nowait(self, match: Callable[[Any], object] | None, seen: int = -1) -> tuple[bool, Any, int]:
        """Try to take the oldest matching message, offering ``match`` only the messages that
        arrived after ``seen`` (a previous call's return; -1: all of them).

        Returns ``(found, message, seen)``: pass ``seen`` back to the next call, or to a wait.
        """
        queue = self.queue
        if match is None:
            # PERF: _take written out for the common receive(): one lock round trip.
            removed = False
            resume: list[Socket] | None = None
            try:
                with self._lock:
                    if not queue:
                        return False, None, self.appended
                    message = queue[0]
                    if self._resume_at >= 0 and len(queue) - 1 <= self._resume_at:
                        resume = self._due_locked()
                    del queue[0]
                    removed = True  # no call between the removal and this
                if resume:
                    _resume(resume)
                return True, message, -1
            except BaseException:
                if removed:
                    with self._lock:
                        queue.appendleft(message)
                if resume:
                    _resume(resume)
                raise
        with self._lock:
            end = len(queue)
            start = 0 if seen < 0 else max(0, end - (self.appended - seen))
            fresh = list(itertools.islice(queue, start, end)) if start < end else []
            seen = self.appended
        # ``match`` runs without the lock: it may send messages (even to this mailbox), or take
        # some (a receive inside match): the message is found again by identity.
        for offset, message in enumerate(fresh):
            if match(message) and self._take(start + offset, message)[0]:
                return True, message, -1
        return False, None, seen

    def _take(self, at: int, message: Any) -> tuple[bool, Any, int]:
        """Remove ``message`` (expected at ``at``; found by identity if it moved), and resume
        the sockets due. Interrupt-safe (rule 2 of interrupts, as ``_recvwait.take_held``): an
        exception that lands after the removal, before this returns, puts the message back
        where it was, and resumes what was due all the same. A Python function returns to its
        caller with no point between where a handler could run: once this returns, so does
        ``receive``, with the message. Returns ``(False, None, -1)`` if it is gone already
        (taken by a receive that ``match`` made)."""
        queue = self.queue
        removed = False
        resume: list[Socket] | None = None
        try:
            with self._lock:
                if at >= len(queue) or queue[at] is not message:
                    at = next((i for i, m in enumerate(queue) if m is message), -1)
                    if at < 0:
                        return False, None, -1
                resume = self._due_locked() if len(queue) - 1 <= self._resume_at else None
                del queue[at]
                removed = True  # no call between the removal and this
            if resume:
                _resume(resume)  # outside the lock: a socket's lock comes before this one's
            return True, message, -1
        except BaseException:
            if removed:
                with self._lock:
                    queue.insert(min(at, len(queue)), message)
            if resume:
                _resume(resume)  # idempotent: whatever was due is resumed either way
            raise

    def take_all(self) -> list[Any]:
        """Remove and return every message, oldest first (``genudp.flush``)."""
        with self._lock:
            taken = list(self.queue)
            self.queue.clear()
            resume = self._due_locked() if self._throttled else None
        if resume:
            _resume(resume)
        return taken

    def throttle(self, sock: Socket, low: int) -> bool:
        """Called by the hub, with ``sock``'s lock held, when this mailbox reached ``sock``'s high
        watermark: record ``sock`` for resumption. Returns False (do not pause) if the owner has
        meanwhile already brought the mailbox down to ``low``."""
        with self._lock:
            if len(self.queue) <= low:
                return False
            self._throttled.append((sock, low))
            self._resume_at = max(self._resume_at, low)
            return True

    def forget(self, sock: Socket) -> None:
        """Drop ``sock`` from the paused sockets (it changed owner or closed)."""
        with self._lock:
            self._throttled = [(s, low) for s, low in self._throttled if s is not sock]
            self._resume_at = max((low for _, low in self._throttled), default=-1)

    def _due_locked(self) -> list[Socket]:
        """Sockets to resume now that the mailbox holds ``len(queue)`` messages."""
        size = len(self.queue)
        due = [sock for sock, low in self._throttled if size <= low]
        self._throttled = [(sock, low) for sock, low in self._throttled if size > low]
        self._resume_at = max((low for _, low in self._throttled), default=-1)
        return due

    def extract(self, select: Callable[[Any], bool]) -> tuple[list[Any], list[Socket]]:
        """Remove every message ``select`` accepts (owner only). Returns them in order, and the
        paused sockets due to resume now that the mailbox is smaller: the caller resumes them
        (with :func:`resume`) once it holds no socket's lock."""
        with self._lock:
            taken = [m for m in self.queue if select(m)]
            if taken:
                kept = [m for m in self.queue if not select(m)]
                self.queue.clear()
                self.queue.extend(kept)
            due = self._due_locked() if taken and len(self.queue) <= self._resume_at else []
            return taken, due

    def arm(self, seen: int, waker: Callable[[], None]) -> bool:
        """For an asyncio task: have ``waker`` called (once, under this lock, from whichever
        thread appends) when a message arrives after ``seen``. Returns False, arming nothing,
        when one already has."""
        with self._lock:
            if self.appended > seen:
                return False
            self._waiting = True
            self._wakers.append(waker)
            return True

    def disarm(self, waker: Callable[[], None]) -> None:
        """Withdraw ``waker`` if it was not called (a timeout or a cancellation)."""
        with self._lock:
            if waker in self._wakers:
                self._wakers.remove(waker)
                self._waiting = bool(self._wakers)

    def wait(self, seen: int, deadline: float | None) -> bool:
        """Sleep until a message arrives after ``seen`` or ``deadline`` passes.

        Returns False when the deadline passed with nothing new. Signals interrupt the sleep only
        to run their handlers (PEP 475); an exception from a handler propagates, and the mailbox
        is left consistent.
        """
        with self._lock:
            if self.appended > seen:
                return True
            self._waiting = True
        woken = False
        try:
            if deadline is None:
                woken = self._signal.acquire()
            else:
                remaining = deadline - time.monotonic()
                woken = remaining > 0 and self._signal.acquire(timeout=remaining)
        finally:
            if not woken:
                with self._lock:
                    if self._waiting:
                        self._waiting = False
                    else:
                        # A sender released the semaphore after we stopped waiting: take the
                        # token back so that the next wait does not return at once. Without
                        # blocking: an exception (from a signal handler) that arrived right
                        # after our acquire() took the token leaves none to take.
                        self._signal.acquire(blocking=False)
        return woken

    def sleep_begin(self, seen: int) -> bool:
        """The owner is about to sleep in epoll_wait on ``efd`` (``_owner_reads``): returns
        False, and does not sleep, when a message arrived after ``seen``."""
        with self._lock:
            if self.appended > seen:
                return False
            self._waiting = self.polling = True
            return True

    def sleep_end(self) -> bool:
        """The owner's epoll_wait returned: whether ``put`` woke it. The caller drains ``efd``
        whenever epoll reported it (not only when this says so: an exception that cut an earlier
        wait short may have left a write there, which would otherwise wake every later wait)."""
        with self._lock:
            signalled = not self._waiting
            self._waiting = self.polling = False
        return signalled


def resume(sockets: list[Socket]) -> None:
    """Resume the reading of paused sockets (see :meth:`Mailbox.extract`)."""
    _resume(sockets)


def _resume(sockets: list[Socket]) -> None:
    # Outside the mailbox lock: a socket's lock is always taken before its owner's mailbox's.
    for sock in sockets:
        sock._resume_reading()
