"""asyncio plumbing: ``asend`` and ``arecv``, and how a socket waits in an event loop.

Rules:

- A task blocks its loop only briefly. Every attempt is a non-blocking syscall made by the
  task itself; a wait is a future resolved by the loop (``add_reader``/``add_writer``), with
  one exception: an ``asend`` to a full Unix-domain destination first waits in a blocking
  sendto of at most 1 ms (``_sendwait.brief_kernel_send``), and such waits add up to at most
  2 ms before one waits in the loop and lets it run. The kernel wakes that sendto the moment
  the receiver takes a datagram, so a stream keeps the receiver's pace; a receiver that is
  not reading costs the loop 1 ms once, then the wait is the loop's.
- Cancelled while waiting, ``asend`` sent nothing and ``arecv`` took nothing.
- A Unix-domain sender's own POLLOUT says nothing about the receiver (DESIGN.md §2): a full
  destination is watched through a helper socket connected to it, plus a timer in case the
  path is re-bound.
- A socket stays registered with the loop between ``arecv`` waits (:class:`AioReader`): a
  registration per wait costs four epoll_ctl calls and most of a round trip. The registration
  holds an entry in the socket's fd guard, so the fd is not closed (and its number reused)
  while the loop's selector still has it.
- Interrupts (rule 3; rules 1 and 2 are ``_recvwait``'s): what a loop callback does to wake a
  waiting task is the C method ``future.cancel`` (:func:`until_poked`), never a genudp
  function, where a signal handler's exception could land before anyone was woken (asyncio
  only logs it). Fd readiness callbacks that must be Python (:class:`AioReader`) are
  level-triggered, so one cut short runs again at the next iteration.

The fenced shortcut. :func:`resolve_now` runs the waiting task's wake-up inside the loop's
reader callback instead of on the next loop iteration (one ``epoll_wait`` and the loop's
bookkeeping less per datagram). It reads asyncio's private ``Future._callbacks``, and takes the
shortcut only when that has asyncio's exact shape (a list of one ``(callback, context)``);
any other future (another loop's, a future asyncio changed) is resolved the usual way, and
``tests/unit/test_aio_io.py`` runs both ways.

The functions ``arecv``, ``asend`` and ``readable`` are ``Socket`` methods (bound in
``_socket.py``); they use the socket's state as ``_socket.py``'s essay allows.
"""

from __future__ import annotations

import os
import socket as _socket_mod
import time
from itertools import starmap
from typing import TYPE_CHECKING, Any, Final

from ._errors import Error, Timeout, error_from_oserror
from ._libc import CREDS_SPACE, MSG_TRUNC, Bytes, writable_now
from ._options import check_timeout
from ._process import running_loop
from ._recvwait import rbuf
from ._sendwait import FIRST_TICK, MAX_TICK, UNSET, Unset, aio_waited, bounded, brief_kernel_send

if TYPE_CHECKING:
    from ._socket import Socket

__all__ = ("AioReader", "arecv", "asend", "loop_wait", "readable", "resolve", "resolve_now")

_DONTWAIT: Final = _socket_mod.MSG_DONTWAIT


async def asend(self: Socket, data: Bytes, dest: Any = None, *, timeout: float | Unset | None = UNSET) -> None:
    """``send`` for asyncio tasks: the same results and errors, waiting in the event loop.

    Returns once the kernel accepted the datagram, exactly once; raises and it was not sent.
    A full destination is waited for in the loop's selector, without spinning and without
    buffering: a Unix-domain sender watches the destination's queue through a helper socket
    connected to it. Cancelled while waiting, the datagram was not sent. ``close()`` wakes a
    waiting ``asend`` at once with "closed".
    """
    # PERF: as in send, the common case is one non-blocking syscall, kept short and inline
    # (benchmarks/micro/send_paths.py); tests/unit/test_fast_paths.py pins it to the slow path.
    users = self._users
    try:
        users.append(None)  # fd guard: first statement of the try that releases it
        if timeout is not UNSET:
            timeout = check_timeout(timeout)
        if dest is not None:
            known = self._dest  # as in send: checked before any syscall (resolve_dest)
            if dest is known[0] or (type(dest) is known[2] and dest == known[0]):
                dest = known[1]
            else:
                dest = self._resolve_dest(dest)
        if self._state:
            raise Error("closed", "the socket is closed")
        try:
            sock = self._sock
            sent = sock.sendto(data, _DONTWAIT, dest) if dest is not None else sock.send(data, _DONTWAIT)
        except BlockingIOError:
            sent = -1
        except (OSError, TypeError, ValueError, OverflowError, BufferError) as exc:
            raise self._send_failure(exc, data, dest) from None
        if sent < 0:
            try:
                limit = self._wait_limit(timeout)  # "eagain" for 0
                if self.family == "local":  # to dest, or (None) to the connected peer
                    started = time.monotonic()
                    sent = brief_kernel_send(self, data, dest, limit)
                    if sent < 0 and limit is not None:
                        limit = max(limit - (time.monotonic() - started), 1e-6)
                if sent < 0:
                    self._check_waiting()
                    sent = await _asend_wait(self, data, dest, limit)
            except (OSError, TypeError, ValueError, OverflowError, BufferError) as exc:
                raise self._send_failure(exc, data, dest) from None
        self._record_sent(sent)  # after the syscall: off a round trip's critical path
    finally:
        users.pop()
        if self._state and not users:
            self._leave_closed()


async def _asend_wait(self: Socket, data: Bytes, dest: Any, limit: float | None) -> int:
    started = time.monotonic()
    deadline = None if limit is None else started + limit
    helper: _socket_mod.socket | None = None
    efd = self._eventfd()
    tick = FIRST_TICK
    try:
        if self.family == "local" and dest is not None:
            # An unconnected local socket is always "writable": POLLOUT on a helper socket
            # connected to the destination reflects the destination's queue instead.
            helper = _socket_mod.socket(_socket_mod.AF_UNIX, _socket_mod.SOCK_DGRAM | _socket_mod.SOCK_CLOEXEC)
            helper.connect(dest)
        while True:
            # Wait for whichever is full: the destination (helper), or our own send buffer.
            blocked = -1
            if helper is not None and not writable_now(efd, helper.fileno()):
                blocked = helper.fileno()
            elif not writable_now(efd, self._fd):
                blocked = self._fd
            self._check_waiting()
            # Both say writable yet the send failed: back off on a timer rather than spin.
            # A helper wait also wakes every MAX_TICK, in case the path was re-bound.
            timer = tick if blocked < 0 else (MAX_TICK if helper is not None else None)
            waited = bounded(timer, deadline)
            if waited is not None and waited <= 0:
                raise Timeout(f"the destination stayed full for {limit} s; not sent")
            ready = await loop_wait([efd], [blocked] if blocked >= 0 else [], waited)
            aio_waited()
            if not ready and blocked < 0:
                tick = min(tick * 2, MAX_TICK)
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
            c.eagain_waits += 1
            c.wait_seconds += time.monotonic() - started


async def arecv(self: Socket, timeout: float | None = None) -> tuple[Any, ...]:
    """``recv`` for asyncio tasks: the same results and errors, waiting in the event loop.

    Cancelled while waiting, it took nothing: the datagram stays in the socket. ``close()``
    wakes a waiting ``arecv`` at once with "closed".
    """
    # PERF: every step here is on a round trip's critical path, from the loop's wake-up to the
    # caller's next send, so the common steps are inlined: the read (``_read_held``), and the
    # wait on the loop this socket is registered with (``readable``). Inlined, a one-sided round
    # trip took about 2 us less (benchmarks/micro/aio_rtt.py); tests/integration/test_fast_paths.py
    # pins it to recv. A datagram read is held until take_held gives it up (_recvwait, rules 1-2).
    limit = None if timeout is None else check_timeout(timeout)
    self._check_recv()
    held = self._held
    if held:
        return self._take_held()  # taken from the kernel by a call an exception cut short
    users = self._users
    try:
        users.append(None)  # fd guard: first statement of the try that releases it
        if self._state:
            raise Error("closed", "the socket is closed")
        buf = self._rbuf
        if buf is None:
            buf = rbuf(self)
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            try:
                if self._credentials:
                    held.extend(starmap(self._sock.recvmsg_into, (([buf], CREDS_SPACE, MSG_TRUNC),)))
                else:
                    held.extend(starmap(self._sock.recvfrom_into, ((buf, 0, MSG_TRUNC),)))
                break
            except BlockingIOError:
                pass
            waited = bounded(None, deadline)
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
                await readable(self, waited)
            if self._state:
                raise Error("closed", "the socket was closed while waiting")
    except OSError as exc:
        if isinstance(exc, Error):
            raise
        raise error_from_oserror(exc) from None
    finally:
        users.pop()
        if self._state and not users:
            self._leave_closed()
    # After the guard's finally, which makes calls: nothing runs between the commit and the
    # caller (_recvwait, rule 2).
    return self._take_held()


async def readable(self: Socket, timeout: float | None) -> None:
    """Until the socket may be readable, ``timeout`` passes, or close() (in an event loop).

    The socket stays registered with the loop between waits; it is dropped when data arrives
    with no task waiting, so that a level-triggered readiness nobody consumes cannot spin the
    loop.
    """
    loop = running_loop()
    reader = self._aio
    if reader is None or reader.loop is not loop:
        if reader is not None:
            # Registered with another loop: watch a duplicate fd for this wait only.
            efd = self._eventfd()
            await loop_wait([efd, self._fd], [], timeout)
            return
        reader = self._aio = AioReader(self, loop)
    future = reader.wait()
    timer = None if timeout is None else loop.call_later(timeout, future.cancel)
    try:
        await until_poked(future)
    finally:
        if timer is not None:
            timer.cancel()
        reader.forget(future)


async def until_poked(future: Any) -> None:
    """Await a wait's ``future`` until something pokes it: a result, or ``future.cancel``.

    Rule 3 of interrupts: what wakes a waiting task from a loop callback is, where it can be,
    the C method ``future.cancel`` itself (idempotent: a second poke does nothing), never a
    genudp function. A signal handler's exception can land at any bytecode of a Python
    callback, before it woke anyone, and asyncio only logs it: the task would sleep forever. A
    C callback has no such point. The caller looks again whatever woke it; a CancelledError
    propagates only when the task itself is being cancelled."""
    import asyncio

    try:
        await future
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise


def resolve(future: Any) -> None:
    if not future.done():
        future.set_result(None)


def resolve_now(future: Any) -> None:
    """Resolve ``future`` and run its one done-callback, the waiting task's wake-up, right here
    in the loop's reader callback (see the module's essay: the fenced shortcut).

    Only for arecv's own futures, resolved from a reader callback, where no task is running.
    A future with no callback, or more than one, is resolved the usual way. What the callback
    raises propagates: a task lets only KeyboardInterrupt and SystemExit out.
    """
    if future.done():
        return
    callbacks = getattr(future, "_callbacks", None)
    if type(callbacks) is not list or len(callbacks) != 1 or len(callbacks[0]) != 2:
        future.set_result(None)
        return
    callback, context = callbacks[0]
    try:
        future.remove_done_callback(callback)
        future.set_result(None)
        context.run(callback, future)
    except BaseException:
        _wake_once(future, callback, context)
        raise


def _wake_once(future: Any, callback: Any, context: Any) -> None:
    """An exception (from the callback, or from a signal handler between two steps above) cut
    ``resolve_now`` short: the task must still wake, exactly once. Its wake-up either is still
    attached to the future (``set_result`` schedules it), or was taken off and has not run
    (the task still waits on this very future: schedule it), or has run."""
    if not future.done():
        attached = any(cb is callback for cb, _ in getattr(future, "_callbacks", None) or ())
        future.set_result(None)
        if attached:
            return
    loop = future.get_loop()
    task = getattr(callback, "__self__", None)
    if getattr(task, "_fut_waiter", None) is future:
        loop.call_soon(callback, future, context=context)


class AioReader:
    """A socket's registration with one event loop, for ``arecv`` (see :func:`readable`).

    While registered it holds an entry in the socket's fd guard (taken in :meth:`wait`, given
    back by :meth:`_unregister`), so that the fd is not closed while the loop's selector has it.
    """

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
            sock = self.sock
            users = sock._users
            done = False
            try:
                users.append(None)  # fd guard: held while the loop's selector has the fd
                sock._check_open()
                self.loop.add_reader(sock._fd, self._readable)
                self.registered = done = True
            finally:
                if not done:
                    users.pop()
                    # An exception right after add_reader returned: take the fd back from the
                    # loop too (remove_reader is a no-op where add_reader did not get through).
                    self.loop.remove_reader(sock._fd)
                    if sock._state and not users:
                        sock._leave_closed()
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
        woken = 0
        try:
            for future in waiters:
                resolve_now(future)  # the waiting task resumes here
                woken += 1
        except BaseException:
            # A task let KeyboardInterrupt or SystemExit out, or a signal handler raised: the
            # loop stops, and every waiter not woken yet (the one cut short included: resolve
            # does nothing to a future that is done) wakes when it runs again.
            for later in waiters[woken:]:
                resolve(later)
            raise

    def _unregister(self) -> None:
        if self.registered:
            self.registered = False
            sock = self.sock
            try:
                self.loop.remove_reader(sock._fd)
            finally:
                users = sock._users
                users.pop()
                if sock._state and not users:
                    sock._leave_closed()

    def _drop(self) -> None:
        # In the loop's thread: the socket is closing.
        self._unregister()
        waiters, self.waiters = self.waiters, []
        for future in waiters:
            resolve(future)

    def _let_go(self, loop: Any) -> None:
        # The fd leaves the loop's selector, and the guard entry that kept it open goes.
        if self.registered:
            self.registered = False
            try:
                loop.remove_reader(self.sock._fd)
            finally:
                self.sock._users.pop()

    def close(self) -> None:
        """From close(), in any thread, with the socket's lock held (so nothing here may call
        back into the socket: close() itself releases the fd once the guard is empty)."""
        loop = self.loop
        try:
            if loop.is_closed():
                raise RuntimeError("closed")
            if running_loop() is loop:
                # In the loop's own thread (a task closed it, or its process ended): let go of
                # the fd now. Deferred, it would wait for a loop iteration that may never come
                # (run_until_complete returns right after the task that closed it).
                self._let_go(loop)
                waiters, self.waiters = self.waiters, []
                for future in waiters:
                    resolve(future)
            elif not loop.is_running():
                # Another thread, and the loop is not running (it may never run again: a
                # loop.close() would then strand the fd). No select is in progress, so the fd
                # leaves the loop's selector from here; the waiters wake when the loop runs.
                self._let_go(loop)
                if self.waiters:
                    loop.call_soon_threadsafe(self._drop)
            else:
                loop.call_soon_threadsafe(self._drop)
        except RuntimeError:
            # The loop is gone, and its selector with it: only the guard entry remains.
            if self.registered:
                self.registered = False
                self.sock._users.pop()


def _watch(loop: Any, reading: bool, fd: int, callback: Any) -> None:
    """``add_reader``/``add_writer``, recovering from a stale epoll entry. An exception that
    lands inside the selector's ``register`` right after its epoll_ctl (a signal handler's)
    makes the selector forget the fd while epoll keeps it; closing the duplicate does not
    drop the entry (the socket's own fd keeps the file open), and the next duplicate, given
    the same number, then fails with EEXIST. The stale entry is the same file at the same
    number: deleting it from the loop's epoll set is safe."""
    add = loop.add_reader if reading else loop.add_writer
    try:
        add(fd, callback)
    except FileExistsError:
        epoll = getattr(getattr(loop, "_selector", None), "_selector", None)
        if epoll is None or not hasattr(epoll, "unregister"):
            raise
        epoll.unregister(fd)
        add(fd, callback)


async def loop_wait(readers: list[int], writers: list[int], timeout: float | None) -> bool:
    """In the running event loop: until one of the fds is ready (True) or ``timeout`` seconds
    pass (False). Each fd is watched through a duplicate of it, since a loop keeps one callback
    per fd and several tasks may wait on one socket."""
    import asyncio  # only asyncio users pay for the import

    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    added: list[tuple[bool, int]] = []
    timer = None
    started = loop.time()
    try:
        for reading, fds in ((True, readers), (False, writers)):
            for fd in fds:
                watched = os.dup(fd)
                added.append((reading, watched))
                _watch(loop, reading, watched, future.cancel)
        if timeout is not None:
            timer = loop.call_later(timeout, future.cancel)
        await until_poked(future)
        return timeout is None or loop.time() - started < timeout
    finally:
        if timer is not None:
            timer.cancel()
        for reading, watched in added:
            (loop.remove_reader if reading else loop.remove_writer)(watched)
            os.close(watched)
