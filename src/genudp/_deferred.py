"""Calls a signal handler makes while its own thread holds a genudp lock: finished elsewhere.

A signal handler runs in the main thread between two bytecodes of whatever that thread was
running, which may be genudp's own code inside one of its locks (a socket's, a mailbox's, a
process's, the hub's). A handler that then calls ``close()``, ``send`` or ``info()`` must not
wait for that lock: its holder is the very code the handler interrupted, suspended until the
handler returns. So every genudp lock is an ``RLock``, asked ``_is_owned()`` (this thread holds
it) and never taken twice on purpose. The rules:

1. ``Socket.close()`` that finds a lock it needs held by its own thread hands itself to
   :func:`defer` and returns. A helper thread makes the close once the interrupted code lets go
   of the lock, microseconds after the handler returns; a ``recv`` or ``send`` blocked on the
   socket wakes with "closed" as with any close.
2. ``Mailbox.put_many`` that finds its mailbox's lock held by its own thread parks the messages
   on the mailbox and hands their delivery to :func:`defer`. Parked messages go in before any
   message put after them, so a sender's messages keep their order.
3. Reads (``info()``, ``messages()``, ``repr``) take the lock again (it is an ``RLock``) and change
   nothing: what they report may be in the middle of the interrupted update. A send's fold of
   its log (``_counters``) is left to the next one when the lock is already held.
4. A deferred job runs once: on a thread started for it with ``_thread.start_new_thread``
   (``threading.Thread.start`` takes threading's own locks, which the handler may have
   interrupted too), or at interpreter exit if that thread has not finished it by then. A
   forked child drops the parent's jobs (they are about the parent's sockets and processes).
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

__all__ = ("OwnedLock", "defer", "new_lock", "run_pending", "wait_all")

_log = logging.getLogger("genudp")

#: Jobs not started yet, and the locks of jobs not finished (each released when its job is).
_jobs: deque[tuple[Callable[[], object], _thread.LockType]] = deque()
_unfinished: deque[_thread.LockType] = deque()

#: How long interpreter exit waits for a job another thread is running.
_EXIT_WAIT = 10.0


class OwnedLock(Protocol):
    """A lock that says whether this thread holds it (an RLock, typed with its ``_is_owned``)."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def _is_owned(self) -> bool: ...


def new_lock() -> OwnedLock:
    """Every genudp lock: an RLock, so that a call can ask whether its thread holds it."""
    return cast("OwnedLock", threading.RLock())


def defer(job: Callable[[], object]) -> None:
    """Run ``job`` on a helper thread (rule 4). Does not block; safe in a signal handler."""
    done = _thread.allocate_lock()
    done.acquire()
    _jobs.append((job, done))
    _unfinished.append(done)
    try:
        _thread.start_new_thread(run_pending, ())
    except RuntimeError:  # no thread to be had: the next defer, or interpreter exit, runs it
        _log.warning("genudp: could not start a thread for a deferred call; it runs later")


def run_pending() -> None:
    """Run every job not started yet, oldest first (each exactly once: ``popleft`` is atomic)."""
    while True:
        try:
            job, done = _jobs.popleft()
        except IndexError:
            return
        try:
            job()
        except Exception:
            _log.exception("genudp: deferred %r failed", job)
        finally:
            done.release()
            with contextlib.suppress(ValueError):  # a defer cut short before it listed the lock
                _unfinished.remove(done)


def wait_all(timeout: float) -> bool:
    """Run what has not started and wait for what has, up to ``timeout`` seconds per job:
    whether every job deferred before this call has finished."""
    run_pending()
    for done in list(_unfinished):
        if not done.acquire(timeout=timeout):
            return False
        done.release()
    return True


def _at_exit() -> None:
    wait_all(_EXIT_WAIT)


def _forget_in_child() -> None:
    _jobs.clear()
    _unfinished.clear()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_forget_in_child)
