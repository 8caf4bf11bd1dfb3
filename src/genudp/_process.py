"""Processes: Erlang's model on Python threads and asyncio tasks.

A *process* is a thread (or an asyncio task, see ``genudp.aio``) with a mailbox
(``_mailbox``), named by a :class:`Pid`. ``spawn`` starts one; any other thread becomes one the
first time it calls ``genudp.self()`` (or anything that needs its process), and stops being one
when the thread ends.

Rules:

- ``send`` appends and never blocks; a message to an ended process is dropped, as in Erlang.
- ``receive(match)`` takes the oldest message ``match`` accepts (the mailbox's save queue).
  A thread process that owns active sockets reads them itself while it waits
  (``_owner_reads.wait_reading``): nothing passes through the hub thread on the way to a
  process that keeps up.
- When a process ends, in this order: its sockets close, its mailbox stops accepting
  messages, each monitor gets ``("DOWN", ref, "process", pid, reason)``, and ``join`` returns.
- What other modules may use of a Pid: ``_mailbox`` (the process's mailbox, whose own essay
  says what is shared), ``_sockets`` (read as a set), ``_adopt_socket`` and ``_drop_socket``
  (the socket layer); ``_id``, ``_exit`` and this module's ``_task_pid`` (``aio``, which makes
  task processes). ``controlling_process`` is a ``Socket`` method bound from here: a hand-over
  is between two processes, and moves the socket's messages from one mailbox to the other.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ._deferred import new_lock
from ._errors import Error, Timeout
from ._mailbox import Mailbox
from ._mailbox import resume as _resume_paused
from ._messages import down, is_socket_message
from ._options import check_timeout
from ._owner_reads import wait_reading

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = (
    "Pid",
    "Ref",
    "spawn",
    "current",
    "send",
    "receive",
    "monitor",
    "demonitor",
    "flush",
)

_log: Final = logging.getLogger("genudp")
_ids = itertools.count(1)
_ref_ids = itertools.count(1)

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
        self._lock = new_lock()
        self._alive = True
        self._done = threading.Event()
        self._reason: object = None
        self._monitors: dict[Ref, Pid] = {}
        self._sockets: set[Socket] = set()
        _every_pid.add(self)
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

        Raises:
            RuntimeError: called in a running event loop for a process that has not ended, with
                a timeout other than 0 (it would stall the loop: ``await genudp.aio.join(pid)``).
        """
        limit = check_timeout(timeout)
        if self._done.is_set() or limit == 0:
            return self._done.is_set()
        if running_loop() is not None:
            raise RuntimeError(
                "pid.join() blocks its thread and would stall the running event loop; "
                "in a task use `await genudp.aio.join(pid)`"
            )
        return self._done.wait(limit)

    @property
    def exit_reason(self) -> object:
        """ "normal", the exception that ended the process, or None while it runs."""
        return self._reason

    def messages(self) -> list[Any]:
        """The messages in this process's mailbox, oldest first: a snapshot, taking none (OTP's
        ``process_info(Pid, messages)``). Any thread may call it; it does not block."""
        return self._mailbox.snapshot()

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
        self._mailbox.rescan = True  # the owner borrows it at its next wait (_owner_reads)
        return True

    def _held_here(self) -> bool:
        # Whether this thread holds this process's lock or its mailbox's (_deferred, rule 1).
        return self._lock._is_owned() or self._mailbox.held_here()

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
        self._reason = reason
        for sock in sockets:
            try:
                sock._close_for_owner_exit(self)
            except Exception:  # pragma: no cover - close must not stop the exit
                _log.exception("genudp: closing %r when its owner ended", sock)
        self._mailbox.close()
        # Each DOWN is sent under this process's lock, as it leaves the monitors: a demonitor
        # either took its monitor out first (no DOWN) or returns after its DOWN was delivered
        # (and can flush it). Oldest monitor first.
        while True:
            with self._lock:
                if not self._monitors:
                    break
                ref = next(iter(self._monitors))
                watcher = self._monitors.pop(ref)
                watcher.send(down(ref, self, reason))
        self._done.set()


_tls = threading.local()
#: Every process of this OS process, and the finalizers that end adopted threads' processes at
#: their thread's end (or at interpreter exit): what a forked child must disown (_forget_parent).
_every_pid: weakref.WeakSet[Pid] = weakref.WeakSet()
_thread_exits: set[weakref.finalize[Any, Any]] = set()


def _forget_parent() -> None:
    """In a forked child: own nothing of the parent's. Its processes end here without a word
    (no DOWN, no socket closed for them: those are the parent's), their finalizers are dropped
    (so the child's exit closes and unlinks nothing), and the calling thread becomes a new
    process on first use. Runs before any other thread exists, so it takes no lock: a lock some
    parent thread held at the fork would never be released here (each is replaced instead)."""
    global _tls
    for finalizer in list(_thread_exits):
        finalizer.detach()
    _thread_exits.clear()
    for pid in list(_every_pid):
        pid._lock = new_lock()
        pid._alive = False
        pid._reason = "forked"
        pid._sockets = set()
        pid._monitors = {}
        pid._done = threading.Event()
        pid._done.set()
        pid._mailbox.forget_in_child()
    _tls = threading.local()


os.register_at_fork(after_in_child=_forget_parent)

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
    _thread_exits.add(weakref.finalize(marker, pid._exit, "normal"))
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
    # Read before the look at the queue: a message that arrives in between moves appended past
    # seen, and the wait returns at once.
    seen = mailbox.appended
    if mailbox.queue or match is not None:  # an empty mailbox has nothing to take
        found, message, seen = mailbox.take_nowait(match)
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
        # The process's sockets: those the hub reads, this thread reads while it waits.
        sockets = pid._sockets
        woken = wait_reading(mailbox, sockets, seen, deadline) if sockets else mailbox.wait(seen, deadline)
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
    watcher.send(down(ref, pid, "noproc"))
    return ref


def demonitor(ref: Ref, *, flush: bool = False) -> None:
    """Stop a monitor. Does not block. Once it returns, no DOWN for ``ref`` will arrive; one that
    already did stays in the mailbox, unless ``flush`` (OTP's ``[flush]``) takes it out.

    Raises:
        TypeError: ``ref`` is not a Ref from monitor().
    """
    if type(ref) is not Ref:
        raise TypeError(f"demonitor needs a Ref from monitor(); got {type(ref).__name__}")
    target = ref._target
    if target is not None:
        with target._lock:
            target._monitors.pop(ref, None)
    if flush:
        _, due = current()._mailbox.extract(
            lambda m: isinstance(m, tuple) and len(m) == 5 and m[0] == "DOWN" and m[1] is ref
        )
        _resume_paused(due)


def flush() -> list[Any]:
    """Take and return every message in the caller's mailbox, oldest first (OTP's
    ``flush()``). Does not block."""
    return current()._mailbox.take_all()


def controlling_process(self: Socket, pid: Pid) -> None:
    """Hand the socket to ``pid``; only the owner may. Its undelivered messages move along.
    Does not block.

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
        self._give_back_locked()  # the old owner may have borrowed it
        moved, due = me._mailbox.extract(lambda message: is_socket_message(message, self))
        if moved:
            pid._mailbox.put_many(moved)
        self._owner = pid
        if self._paused:
            # Paused for the old owner's mailbox: the hub judges the new owner's afresh.
            me._mailbox.forget(self)
            self._paused = False
            self._update_registration_locked()
    # Other sockets of the old owner that its mailbox's size had paused, now that the move took
    # it down to their low watermark: resumed outside this socket's lock (never two at once).
    _resume_paused([sock for sock in due if sock is not self])
