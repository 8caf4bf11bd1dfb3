"""Processes and mailboxes: Erlang's model on Python threads.

A *process* is a thread with a mailbox, named by a :class:`Pid`. ``spawn`` starts one; any other
thread becomes one the first time it calls ``genudp.self()`` (or anything that needs its
process), and stops being one when the thread ends.

Mailbox rules:
- ``send`` appends and never blocks; a message to an ended process is dropped, as in Erlang.
- ``receive(match)`` takes the *oldest* message that ``match`` accepts. Messages it skips keep
  their place and order (Erlang's save queue), and each message is offered to ``match`` once per
  ``receive`` call, so a long queue costs O(n) per call, not O(n^2).
- Only the owning process takes messages out of its mailbox, so a message found by scanning
  outside the lock is still where it was when it is removed: other threads only append.
- A blocked receive sleeps on a lock used as a semaphore, with a "someone waits" flag so that
  ``send`` pays for a wake-up only when there is a sleeper (``threading.Condition`` costs ~2x:
  it is pure Python and allocates a lock per wait).
- A thread process that owns active sockets instead sleeps in ``poll`` on them and on an
  eventfd that ``put`` writes: it reads what arrives itself (see ``_hub.py``), and nothing
  passes through the hub thread on the way to a process that keeps up.

When a process ends, in this order: its sockets close, its mailbox stops accepting messages, each
monitor gets ``("DOWN", ref, "process", pid, reason)``, and ``join`` returns.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import logging
import math
import os
import select
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from . import _hub
from ._errors import Timeout
from ._options import check_timeout

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = (
    "Pid",
    "Ref",
    "Mailbox",
    "spawn",
    "current",
    "send",
    "receive",
    "monitor",
    "demonitor",
)

_log: Final = logging.getLogger("genudp")
_ids = itertools.count(1)
_ref_ids = itertools.count(1)

#: Counts forks in this process's ancestry: a mailbox's eventfd made before a fork is shared
#: with the child, which must make its own.
_fork_gen = 0

#: Datagrams an owner reads per socket per wait when it finds them already queued.
_OWNER_BATCH: Final = 64
#: An owner that found nothing queued looks again (before it sleeps) after this many waits.
_PROBE_EVERY: Final = 8


def _after_fork_in_child() -> None:
    global _fork_gen
    _fork_gen += 1


os.register_at_fork(after_in_child=_after_fork_in_child)

#: Set by the test suite to see every process created (it checks their mailboxes for strays).
_creation_hook: Callable[[Pid], None] | None = None


class Ref:
    """A unique reference, as returned by ``monitor``; compare with ``is`` or ``==``."""

    __slots__ = ("_id", "_target")

    def __init__(self, target: Pid | None = None) -> None:
        self._id = next(_ref_ids)
        self._target = target

    def __repr__(self) -> str:
        return f"#Ref<{self._id}>"


class Mailbox:
    """A process's message queue: append from anywhere, selective take by the owner only."""

    __slots__ = (
        "_efd",
        "_efd_gen",
        "_lock",
        "_open",
        "_poll_fds",
        "_poller",
        "_polling",
        "_probe",
        "_queue",
        "_resume_at",
        "_signal",
        "_throttled",
        "_waiting",
        "_waits",
        "_wakers",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Any] = deque()
        self._signal = threading.Lock()
        self._signal.acquire()
        self._waiting = False
        # While the owner sleeps in poll (wait with readers) a wake-up is a write to this
        # eventfd, made on first use; the poll object is kept for the next wait on the same fds.
        self._polling = False
        self._waits = 0  # waits begun (read by the hub's lease)
        self._probe = 0  # waits left before _wait_reading looks for queued datagrams again
        self._efd = -1
        self._efd_gen = _fork_gen
        self._poller: Any = None
        self._poll_fds: list[int] = []
        self._open = True
        # Asyncio tasks of this process waiting on the mailbox: called (under the lock) instead
        # of releasing the semaphore. Several tasks of one process may wait at once.
        self._wakers: list[Callable[[], None]] = []
        # Sockets whose reading the hub paused because this mailbox reached their high
        # watermark, each with its low watermark; the owner resumes them as it catches up.
        self._throttled: list[tuple[Socket, int]] = []
        self._resume_at = -1

    def put(self, message: object) -> None:
        """Append one message; wake the owner if it sleeps. Never blocks on the owner."""
        with self._lock:
            if not self._open:
                return
            self._queue.append(message)
            if self._waiting:
                self._wake_locked()

    def put_many(self, messages: list[Any]) -> None:
        """Append a batch in order with one lock round trip and at most one wake-up."""
        with self._lock:
            if not self._open:
                return
            self._queue.extend(messages)
            if self._waiting:
                self._wake_locked()

    def _wake_locked(self) -> None:
        self._waiting = False
        wakers = self._wakers
        if not wakers:
            if self._polling:
                os.eventfd_write(self._efd, 1)
            else:
                self._signal.release()
        else:
            self._wakers = []
            for waker in wakers:
                waker()

    def close(self) -> None:
        """Stop accepting messages; what is queued stays readable (for post-mortems and tests)."""
        with self._lock:
            self._open = False
            if self._efd >= 0:
                os.close(self._efd)
                self._efd = -1

    def __len__(self) -> int:
        return len(self._queue)

    def snapshot(self) -> list[Any]:
        """A copy of the queued messages, oldest first, taking none."""
        with self._lock:
            return list(self._queue)

    def take_nowait(self, match: Callable[[Any], object] | None, start: int = 0) -> tuple[bool, Any, int]:
        """Try to take the oldest matching message at or after index ``start``.

        Returns ``(found, message, scanned)``: ``scanned`` is how many messages have been offered
        to ``match`` so far (pass it back as ``start`` to avoid offering them again).
        """
        queue = self._queue
        if match is None:
            with self._lock:
                if not queue:
                    return False, None, 0
                message = queue.popleft()
                resume = self._due_locked() if len(queue) <= self._resume_at else None
            if resume:
                _resume(resume)
            return True, message, 0
        with self._lock:
            end = len(queue)
            fresh = list(itertools.islice(queue, start, end)) if start < end else []
        # ``match`` runs without the lock: it may send messages (even to this mailbox).
        for offset, message in enumerate(fresh):
            if match(message):
                with self._lock:
                    del queue[start + offset]
                    resume = self._due_locked() if len(queue) <= self._resume_at else None
                if resume:
                    _resume(resume)
                return True, message, 0
        return False, None, start + len(fresh)

    def throttle(self, sock: Socket, low: int) -> bool:
        """Called by the hub, with ``sock``'s lock held, when this mailbox reached ``sock``'s high
        watermark: record ``sock`` for resumption. Returns False (do not pause) if the owner has
        meanwhile already brought the mailbox down to ``low``."""
        with self._lock:
            if len(self._queue) <= low:
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
        size = len(self._queue)
        due = [sock for sock, low in self._throttled if size <= low]
        self._throttled = [(sock, low) for sock, low in self._throttled if size > low]
        self._resume_at = max((low for _, low in self._throttled), default=-1)
        return due

    def extract(self, select: Callable[[Any], bool]) -> list[Any]:
        """Remove and return, in order, every message ``select`` accepts (owner only)."""
        with self._lock:
            taken = [m for m in self._queue if select(m)]
            if taken:
                kept = [m for m in self._queue if not select(m)]
                self._queue.clear()
                self._queue.extend(kept)
            return taken

    def arm(self, seen: int, waker: Callable[[], None]) -> bool:
        """For an asyncio task: have ``waker`` called (once, under this lock, from whichever
        thread appends) when a message beyond the first ``seen`` arrives. Returns False, arming
        nothing, when one already has."""
        with self._lock:
            if len(self._queue) > seen:
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
        """Sleep until a message beyond the first ``seen`` arrives or ``deadline`` passes.

        Returns False when the deadline passed with nothing new. Signals interrupt the sleep only
        to run their handlers (PEP 475); an exception from a handler propagates, and the mailbox
        is left consistent.
        """
        with self._lock:
            if len(self._queue) > seen:
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
                        # token back so that the next wait does not return at once.
                        self._signal.acquire()
        return woken

    def _wait_reading(self, seen: int, deadline: float | None, readers: list[Socket], hand: bool = False) -> Any:
        """``wait``, reading the owner's active sockets meanwhile: borrow from the hub each of
        ``readers`` that it reads now (or that this owner kept borrowed since its last wait),
        sleep in poll on them and on the eventfd that ``put`` writes, and deliver what arrives
        into this mailbox with the hub's checks and counters: the one datagram that woke us,
        or a batch per socket if datagrams were already queued. The sockets stay borrowed
        afterwards, under the hub's lease (see _hub.py). Only the owner's thread calls this.
        True may be a spurious wake-up: the caller looks again.

        With ``hand`` (a ``receive`` that takes any message), a datagram that woke an owner
        whose mailbox is empty is returned in a one-tuple instead of passing through the
        mailbox: it is the oldest message there would be (see Socket._owner_readable)."""
        borrowed: list[Socket] = []
        fds: list[int] = []
        self._waits += 1  # for the hub's lease: this owner came back
        try:
            for sock in readers:
                fd = sock._borrow()
                if fd >= 0:
                    borrowed.append(sock)
                    fds.append(fd)
            if not borrowed:
                return self.wait(seen, deadline)
            if deadline is None:
                timeout = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                timeout = math.ceil(remaining * 1000)
            if fds != self._poll_fds or self._efd_gen != _fork_gen:
                if self._efd_gen != _fork_gen:
                    # A forked child shares the parent's eventfd: it would take the parent's
                    # wake-ups. Get one of its own.
                    if self._efd >= 0:
                        os.close(self._efd)
                    self._efd = -1
                    self._efd_gen = _fork_gen
                if self._efd < 0:
                    self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
                poller = select.poll()
                poller.register(self._efd, select.POLLIN)
                for fd in fds:
                    poller.register(fd, select.POLLIN)
                self._poller, self._poll_fds = poller, fds
            # Datagrams already queued: the owner is behind its senders, so read batches (as
            # the hub does). Otherwise sleep, and read the one datagram that woke us. An owner
            # that had to sleep last time looks first only every _PROBE_EVERY waits: in a
            # ping-pong that look never finds anything, and costs a syscall.
            events: list[tuple[int, int]] = []
            if self._probe <= 0:
                events = self._poller.poll(0)
                self._probe = 0 if events else _PROBE_EVERY
            else:
                self._probe -= 1
            limit = _OWNER_BATCH
            signalled = False
            if not events:
                limit = 1
                with self._lock:
                    if len(self._queue) > seen:
                        return True
                    self._waiting = self._polling = True
                try:
                    events = self._poller.poll(timeout)
                finally:
                    with self._lock:
                        signalled = not self._waiting
                        self._waiting = self._polling = False
                    if signalled:
                        # put() wrote the eventfd under the lock before it cleared _waiting.
                        os.eventfd_read(self._efd)
                if hand and len(events) == 1 and events[0][0] != self._efd:
                    sock = borrowed[0] if len(borrowed) == 1 else borrowed[fds.index(events[0][0])]
                    message = sock._owner_readable(1, True)
                    return True if message is None else (message,)
            for fd, _mask in events:
                if fd != self._efd:
                    borrowed[fds.index(fd)]._owner_readable(limit)
            return signalled or bool(events)
        finally:
            for sock in borrowed:
                sock._leave()  # the wait's users entry; the socket stays borrowed
            if borrowed:
                # Leaving the wait with sockets borrowed: the hub must be looking (the lease).
                # _polling is already False, so a hub that stops looking meanwhile sees it.
                # (A borrowed socket is registered, so the hub exists.)
                hub = _hub._hub
                if hub is not None and not hub.timed:
                    hub.wake()


def _resume(sockets: list[Socket]) -> None:
    # Outside the mailbox lock: a socket's lock is always taken before its owner's mailbox's.
    for sock in sockets:
        sock._resume_reading()


class Pid:
    """A process: a thread (or, with ``genudp.aio``, an asyncio task) with a mailbox.

    ``send`` never blocks. ``is_alive()``, ``join(timeout)`` and ``info()`` may be called from
    any thread.
    """

    __slots__ = (
        "__weakref__",
        "_alive",
        "_done",
        "_id",
        "_lock",
        "_mailbox",
        "_monitors",
        "_reason",
        "_sockets",
        "name",
    )

    def __init__(self, name: str | None = None) -> None:
        self._id = next(_ids)
        self.name = name
        self._mailbox = Mailbox()
        self._lock = threading.Lock()
        self._alive = True
        self._done = threading.Event()
        self._reason: object = None
        self._monitors: dict[Ref, Pid] = {}
        self._sockets: set[Socket] = set()
        hook = _creation_hook
        if hook is not None:
            hook(self)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        state = "" if self._alive else " ended"
        return f"<genudp.Pid {self._id}{name}{state}>"

    def send(self, message: object) -> None:
        """Append ``message`` to this process's mailbox. Never blocks; dropped if it has ended."""
        self._mailbox.put(message)

    def is_alive(self) -> bool:
        """Whether the process is still running."""
        return self._alive

    def join(self, timeout: float | None = None) -> bool:
        """Block until the process ends or ``timeout`` seconds pass.

        Returns:
            True if it has ended, False if the timeout ran out first.
        """
        return self._done.wait(check_timeout(timeout))

    @property
    def exit_reason(self) -> object:
        """ "normal", the exception that ended the process, or None while it runs."""
        return self._reason

    def info(self) -> dict[str, Any]:
        """A snapshot: name, alive, message_queue_len, sockets (count)."""
        return {
            "name": self.name,
            "alive": self._alive,
            "message_queue_len": len(self._mailbox),
            "sockets": len(self._sockets),
        }

    # -- used by the socket layer -------------------------------------------------------------

    def _adopt_socket(self, sock: Socket) -> bool:
        with self._lock:
            if not self._alive:
                return False
            self._sockets.add(sock)
            return True

    def _drop_socket(self, sock: Socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _exit(self, reason: object) -> None:
        with self._lock:
            if not self._alive:
                return
            self._alive = False
            sockets = list(self._sockets)
            self._sockets.clear()
            monitors = self._monitors
            self._monitors = {}
        self._reason = reason
        for sock in sockets:
            try:
                sock._close_for_owner_exit(self)
            except Exception:  # pragma: no cover - close must not stop the exit
                _log.exception("genudp: closing %r when its owner ended", sock)
        self._mailbox.close()
        for ref, watcher in monitors.items():
            watcher.send(("DOWN", ref, "process", self, reason))
        self._done.set()


_tls = threading.local()

#: The process of the running asyncio task (see genudp.aio). A context variable, because a
#: task runs in a copy of its creator's context: tasks that a process's task creates (directly,
#: or through ``asyncio.wait_for``, ``gather`` ...) belong to the same process. The process
#: ends with the task that became it; ``genudp.aio.spawn`` starts a new one.
_task_pid: contextvars.ContextVar[Pid | None] = contextvars.ContextVar("genudp_process", default=None)


def _task_process(asyncio: Any) -> Pid | None:
    """The process of the running asyncio task, made on first use; None outside a task."""
    pid = _task_pid.get()
    if pid is not None and pid._alive:
        return pid
    task = asyncio.current_task()
    if task is None:
        return None
    pid = Pid(task.get_name())
    _task_pid.set(pid)
    task.add_done_callback(functools.partial(_task_done, pid))
    return pid


def _task_done(pid: Pid, task: Any) -> None:
    if task.cancelled():
        reason: object = "cancelled"
    else:
        reason = task.exception() or "normal"
    pid._exit(reason)


class _ThreadExit:
    """Kept in a thread-local slot of an adopted thread; its finalizer ends the process when the
    thread ends (CPython drops a thread's thread-local values when the thread finishes)."""

    __slots__ = ("__weakref__",)


def current() -> Pid:
    """The calling asyncio task's process, or else the calling thread's; made on first use."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and asyncio._get_running_loop() is not None:
        task_pid = _task_process(asyncio)
        if task_pid is not None:
            return task_pid
    try:
        pid: Pid = _tls.pid
        return pid
    except AttributeError:
        pass
    thread = threading.current_thread()
    pid = Pid(thread.name)
    _tls.pid = pid
    marker = _ThreadExit()
    _tls.exit_marker = marker
    weakref.finalize(marker, pid._exit, "normal")
    return pid


def spawn(fn: Callable[..., object], *args: object, name: str | None = None, **kwargs: object) -> Pid:
    """Start ``fn(*args, **kwargs)`` in a new thread that is a genudp process.

    The process ends when ``fn`` returns (reason "normal") or raises (the exception is the reason,
    and it is logged to the "genudp" logger). Spawned threads are daemon threads: they do not
    keep the interpreter alive; ``join`` the ones you need to finish.

    Returns:
        The new process's Pid, usable at once (messages sent before it runs are kept).
    """
    if not callable(fn):
        raise TypeError(f"spawn needs a callable; got {type(fn).__name__}")
    pid = Pid(name if name is not None else getattr(fn, "__name__", None))

    def run() -> None:
        _tls.pid = pid
        reason: object = "normal"
        try:
            fn(*args, **kwargs)
        except BaseException as exc:
            reason = exc
            _log.error("genudp: process %r ended with an exception", pid, exc_info=exc)
        finally:
            pid._exit(reason)

    thread = threading.Thread(target=run, name=f"genudp-{pid._id}" + (f"-{pid.name}" if pid.name else ""), daemon=True)
    thread.start()
    return pid


def send(pid: Pid, message: object) -> None:
    """Send ``message`` to ``pid``. Never blocks; dropped silently if the process has ended."""
    if type(pid) is not Pid:
        raise TypeError(f"send needs a Pid; got {type(pid).__name__}")
    pid._mailbox.put(message)


def running_loop() -> Any:
    """The asyncio event loop running in this thread, or None. No import: if asyncio was never
    imported, no event loop can be running."""
    asyncio = sys.modules.get("asyncio")
    return None if asyncio is None else asyncio._get_running_loop()


def receive(match: Callable[[Any], object] | None = None, timeout: float | None = None) -> Any:
    """Take the oldest message in the caller's mailbox that ``match`` accepts.

    Blocks until one arrives, using no CPU; messages ``match`` rejects keep their place.

    Args:
        match: a predicate; ``None`` accepts any message.
        timeout: seconds to wait; ``None`` waits forever, ``0`` only looks.

    Returns:
        The message, removed from the mailbox.

    Raises:
        genudp.Timeout: nothing matched within ``timeout``.
        RuntimeError: called from a running asyncio event loop, which it would stall.
    """
    limit = None if timeout is None else check_timeout(timeout)
    if match is not None and not callable(match):
        raise TypeError(f"match must be a callable predicate or None; got {type(match).__name__}")
    pid = current()
    mailbox = pid._mailbox
    seen = 0
    if mailbox._queue or match is not None:  # an empty mailbox has nothing to take (a hint:
        found, message, seen = mailbox.take_nowait(match)  # the wait looks again, locked)
        if found:
            return message
    if limit == 0:
        raise Timeout("no matching message in the mailbox")
    if running_loop() is not None:
        raise RuntimeError(
            "genudp.receive() blocks its thread and would stall the running event loop; "
            "in a task use `await genudp.aio.receive(...)`"
        )
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        # The process's sockets: those the hub reads, this thread reads while it waits (see
        # Mailbox._wait_reading). list() of a set is one C call, atomic under the GIL.
        sockets = pid._sockets
        if sockets:
            woken = mailbox._wait_reading(seen, deadline, list(sockets), match is None)
            if type(woken) is tuple:
                return woken[0]  # a datagram handed over, bypassing the (empty) mailbox
        else:
            woken = mailbox.wait(seen, deadline)
        if not woken:
            raise Timeout(f"no matching message within {timeout} s")
        found, message, seen = mailbox.take_nowait(match, seen)
        if found:
            return message


def monitor(pid: Pid) -> Ref:
    """Watch ``pid``: when it ends, the caller gets ``("DOWN", ref, "process", pid, reason)``.

    ``reason`` is "normal", the exception that ended it, or "noproc" if it had already ended.
    """
    if type(pid) is not Pid:
        raise TypeError(f"monitor needs a Pid; got {type(pid).__name__}")
    watcher = current()
    ref = Ref(pid)
    with pid._lock:
        if pid._alive:
            pid._monitors[ref] = watcher
            return ref
    watcher.send(("DOWN", ref, "process", pid, "noproc"))
    return ref


def demonitor(ref: Ref) -> None:
    """Stop a monitor; a DOWN message already delivered stays in the mailbox."""
    if type(ref) is not Ref:
        raise TypeError(f"demonitor needs a Ref from monitor(); got {type(ref).__name__}")
    target = ref._target
    if target is not None:
        with target._lock:
            target._monitors.pop(ref, None)
