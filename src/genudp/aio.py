"""genudp from asyncio: tasks as processes, awaitable receive, and async socket calls.

A task becomes a genudp process the first time it needs one (``genudp.aio.self()``, opening a
socket, ``await genudp.aio.receive(...)``), as a thread does; :func:`spawn` starts a new task that
is one. Tasks that a process's task creates afterwards (``create_task``, and those that
``asyncio.wait_for``, ``gather`` or ``shield`` create) belong to the same process: they share its
mailbox and may use its sockets, so ``await asyncio.wait_for(sock.arecv(), 5)`` works. The
process ends when the task that became it ends; use :func:`spawn` for a process of its own.

Thread processes and task processes send to each other both ways with the same
``genudp.send`` / ``pid.send``: a message to a task wakes it through its loop
(``call_soon_threadsafe``), and nothing ever blocks the loop.

Sockets a task owns deliver active messages to its mailbox. ``await sock.asend(...)`` and
``await sock.arecv(...)`` follow the full-receiver rules of ``send`` and ``recv``: they wait in
the event loop's selector without spinning (a Unix-domain sender watches the *destination's*
queue through a helper socket connected to it, since its own POLLOUT says nothing about the
receiver), buffer nothing, and send exactly once.

Cancellation: a task cancelled while waiting in ``asend`` did not send that datagram (every send
attempt is a non-blocking syscall made by the task itself); cancelled in ``receive`` or
``arecv``, it took nothing (the message stays in the mailbox, the datagram in the socket).

Works on any asyncio loop that supports ``add_reader``/``add_writer`` on sockets: the default
loop on Linux and uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ._aio_io import until_poked
from ._errors import Timeout
from ._options import check_timeout
from ._process import Pid, _task_pid, current, demonitor, monitor, send

__all__ = ("self", "spawn", "receive", "send", "join")

_log: Final = logging.getLogger("genudp")
#: Spawned tasks, kept alive until they finish (the loop keeps only weak references).
_running: set[asyncio.Task[None]] = set()


def self() -> Pid:
    """The calling task's process, made on first use.

    Raises:
        RuntimeError: not called from a running asyncio task.
    """
    _running_task("genudp.aio.self()")
    return current()


def _running_task(what: str) -> asyncio.Task[Any]:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is None:
        raise RuntimeError(f"{what} must be called from an asyncio task; from a thread use genudp's blocking calls")
    return task


def spawn(coro_fn: Callable[..., Awaitable[object]], *args: object, name: str | None = None, **kwargs: object) -> Pid:
    """Start ``coro_fn(*args, **kwargs)`` as a new task in the running loop, as a genudp process.

    Call it from code running in an event loop. The process ends when the coroutine returns
    (reason "normal"), raises (the exception; logged to the "genudp" logger) or is cancelled
    ("cancelled"). The Pid works from any thread: ``send``, ``is_alive()``, ``join()``.

    Raises:
        TypeError: ``coro_fn`` is not callable.
        RuntimeError: no event loop is running in this thread.
    """
    if not callable(coro_fn):
        raise TypeError(f"spawn needs an async function; got {type(coro_fn).__name__}")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "genudp.aio.spawn() must be called from code running in an event loop; from a thread use genudp.spawn()"
        ) from None
    pid = Pid(name if name is not None else getattr(coro_fn, "__name__", None))

    async def run() -> None:
        reason: object = "normal"
        try:
            await coro_fn(*args, **kwargs)
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        except BaseException as exc:
            reason = exc
            _log.error("genudp: process %r ended with an exception", pid, exc_info=exc)
        finally:
            pid._exit(reason)

    # The new task runs in a context of its own in which it is ``pid``; tasks it creates inherit
    # that (see _process._task_pid).
    context = contextvars.copy_context()
    context.run(_task_pid.set, pid)
    task = loop.create_task(run(), name=f"genudp-{pid._id}" + (f"-{pid.name}" if pid.name else ""), context=context)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return pid


async def receive(match: Callable[[Any], object] | None = None, timeout: float | None = None) -> Any:
    """Take the oldest message in the task's mailbox that ``match`` accepts; the awaitable
    twin of ``genudp.receive``, with the same selective semantics.

    Waits without blocking the loop. Messages ``match`` rejects keep their place. Cancelled
    while waiting, it takes nothing.

    Raises:
        genudp.Timeout: nothing matched within ``timeout`` seconds (``0``: only looks).
    """
    limit = check_timeout(timeout)
    if match is not None and not callable(match):
        raise TypeError(f"match must be a callable predicate or None; got {type(match).__name__}")
    _running_task("genudp.aio.receive()")
    mailbox = current()._mailbox
    found, message, seen = mailbox.take_nowait(match)
    if found:
        return message
    if limit == 0:
        raise Timeout("no matching message in the mailbox")
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    while True:
        if deadline is not None and loop.time() >= deadline:
            raise Timeout(f"no matching message within {timeout} s")
        await _wait_mailbox(loop, mailbox, seen, deadline)
        found, message, seen = mailbox.take_nowait(match, seen)
        if found:
            return message


async def _wait_mailbox(loop: asyncio.AbstractEventLoop, mailbox: Any, seen: int, deadline: float | None) -> None:
    """Until a message beyond ``seen`` arrives or ``deadline`` (loop time) passes."""
    future: asyncio.Future[None] = loop.create_future()
    loop_thread = threading.get_ident()

    def wake() -> None:
        # Called under the mailbox's lock by whichever thread appended. The loop runs the C
        # method future.cancel, not a genudp function (_aio_io.until_poked, rule 3).
        if threading.get_ident() == loop_thread:
            loop.call_soon(future.cancel)
        elif not loop.is_closed():
            # A loop closed with this task still waiting has no one left to wake: the message
            # stays in the mailbox, and the sender (for whom sending never fails) is not told.
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                loop.call_soon_threadsafe(future.cancel)

    if not mailbox.arm(seen, wake):
        return
    timer = None if deadline is None else loop.call_at(deadline, future.cancel)
    try:
        await until_poked(future)
    finally:
        mailbox.disarm(wake)
        if timer is not None:
            timer.cancel()


async def join(pid: Pid, timeout: float | None = None) -> bool:
    """Wait, without blocking the loop, until ``pid`` ends; True if it did within ``timeout``."""
    if type(pid) is not Pid:
        raise TypeError(f"join needs a Pid; got {type(pid).__name__}")
    ref = monitor(pid)
    try:
        await receive(lambda m: isinstance(m, tuple) and len(m) == 5 and m[0] == "DOWN" and m[1] is ref, timeout)
    except BaseException as exc:
        # Timed out, cancelled, interrupted: no monitor and no DOWN may stay behind.
        demonitor(ref, flush=True)
        if isinstance(exc, Timeout):
            return False
        raise
    return True
