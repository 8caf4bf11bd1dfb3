"""One test body, run by thread processes or by asyncio task processes.

A test written against :class:`Runtime` is an ``async def`` body. The "threads" runtime runs it
with no event loop at all: its awaitables never suspend, so the coroutine is driven to the end in
one step, calling the blocking API (``send``, ``recv``, ``genudp.receive``) in the test's
thread. The "asyncio" and "uvloop" runtimes run it as the main task of a fresh loop, calling the
awaitable API (``asend``, ``arecv``, ``genudp.aio.receive``); that task is the test's process.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import genudp
import genudp.aio
from tests.blocking import wait_blocked

T = TypeVar("T")

RUNTIMES = ("threads", "asyncio", "uvloop")


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


@dataclass
class Pending:
    """A call started in the background (a send or recv expected to wait)."""

    done: bool = False
    error: BaseException | None = None
    result: Any = None
    waiting: bool = False
    pid: genudp.Pid | None = None
    task: asyncio.Task[None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Runtime:
    name = "runtime"
    is_async = False

    def run(self, body: Callable[[], Coroutine[Any, Any, T]]) -> T:
        raise NotImplementedError

    async def send(self, sock: genudp.Socket, data: bytes, dest: Any = None, **kw: Any) -> None:
        raise NotImplementedError

    async def recv(self, sock: genudp.Socket, timeout: float | None = None) -> tuple[Any, ...]:
        raise NotImplementedError

    async def receive(self, match: Callable[[Any], object] | None = None, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def start(self, call: Callable[[], Awaitable[Any]], blocking: Callable[[], Any]) -> Pending:
        """Start a call expected to wait, in a process of its own (a thread, or a task); return
        once it waits (or has finished)."""
        raise NotImplementedError

    async def start_send(self, sock: genudp.Socket, data: bytes, dest: Any = None, **kw: Any) -> Pending:
        return await self.start(lambda: sock.asend(data, dest, **kw), lambda: sock.send(data, dest, **kw))

    async def outcome(self, pending: Pending, timeout: float = 30) -> Pending:
        """Wait (at most ``timeout`` s) for a started call to finish."""
        raise NotImplementedError

    async def join(self, pid: genudp.Pid, timeout: float | None = None) -> bool:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError


class Threads(Runtime):
    name = "threads"

    def run(self, body: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the body as a thread process of its own, as the asyncio runtimes run it as a task
        process of its own: what it opens closes when it ends."""
        outcome: list[Any] = []

        def process() -> None:
            coro = body()
            try:
                coro.send(None)
            except StopIteration as stop:
                outcome.append(("ok", stop.value))
                return
            except BaseException as exc:
                outcome.append(("error", exc))
                return
            coro.close()
            outcome.append(("error", AssertionError("a thread-runtime body awaited something that suspends")))

        pid = genudp.spawn(process, name="body")
        assert pid.join(120), "the test body did not finish within 120 s"
        how, value = outcome[0]
        if how == "error":
            raise value
        result: T = value
        return result

    async def send(self, sock: genudp.Socket, data: bytes, dest: Any = None, **kw: Any) -> None:
        sock.send(data, dest, **kw)

    async def recv(self, sock: genudp.Socket, timeout: float | None = None) -> tuple[Any, ...]:
        return sock.recv(timeout)

    async def receive(self, match: Callable[[Any], object] | None = None, timeout: float | None = None) -> Any:
        return genudp.receive(match, timeout)

    async def start(self, call: Callable[[], Awaitable[Any]], blocking: Callable[[], Any]) -> Pending:
        pending = Pending()

        def body() -> None:
            try:
                pending.result = blocking()
            except BaseException as exc:
                pending.error = exc
            finally:
                pending.done = True

        pending.pid = genudp.spawn(body, name="pending")
        if not pending.done:
            wait_blocked(pending.pid)
        pending.waiting = True
        return pending

    async def outcome(self, pending: Pending, timeout: float = 30) -> Pending:
        assert pending.pid is not None
        assert pending.pid.join(timeout), f"the call did not finish within {timeout} s"
        return pending

    async def join(self, pid: genudp.Pid, timeout: float | None = None) -> bool:
        return pid.join(timeout)

    async def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)  # deliberate: the scenario's own duration, never synchronisation


class Asyncio(Runtime):
    name = "asyncio"
    is_async = True

    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        return None

    def run(self, body: Callable[[], Coroutine[Any, Any, T]]) -> T:
        async def main() -> T:
            genudp.aio.self()
            return await body()

        with asyncio.Runner(loop_factory=self.loop_factory()) as runner:
            return runner.run(main())

    async def send(self, sock: genudp.Socket, data: bytes, dest: Any = None, **kw: Any) -> None:
        await sock.asend(data, dest, **kw)

    async def recv(self, sock: genudp.Socket, timeout: float | None = None) -> tuple[Any, ...]:
        return await sock.arecv(timeout)

    async def receive(self, match: Callable[[Any], object] | None = None, timeout: float | None = None) -> Any:
        return await genudp.aio.receive(match, timeout)

    async def start(self, call: Callable[[], Awaitable[Any]], blocking: Callable[[], Any]) -> Pending:
        pending = Pending()

        async def body() -> None:
            pending.waiting = True
            try:
                pending.result = await call()
            except BaseException as exc:
                pending.error = exc
                if isinstance(exc, asyncio.CancelledError):
                    raise
            finally:
                pending.done = True

        pending.task = asyncio.get_running_loop().create_task(body())
        # A task runs until it first suspends: once it has begun, it is waiting (or done).
        while not pending.waiting:
            await asyncio.sleep(0)
        return pending

    async def outcome(self, pending: Pending, timeout: float = 30) -> Pending:
        assert pending.task is not None
        await asyncio.wait_for(asyncio.shield(pending.task), timeout)
        return pending

    async def join(self, pid: genudp.Pid, timeout: float | None = None) -> bool:
        return await genudp.aio.join(pid, timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # deliberate: the scenario's own duration, never synchronisation


class Uvloop(Asyncio):
    name = "uvloop"

    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory


def make(name: str) -> Runtime:
    return {"threads": Threads, "asyncio": Asyncio, "uvloop": Uvloop}[name]()
