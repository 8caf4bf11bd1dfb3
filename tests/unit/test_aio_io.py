"""The fenced shortcut of ``_aio_io.resolve_now``: it runs a waiting task's wake-up inside the
reader callback only for a future of asyncio's exact shape, resolves any other the usual way,
and a wake-up it took off the future always runs, exactly once, whatever cuts it short."""

from __future__ import annotations

import asyncio
from typing import Any

from genudp import _aio_io


class Boom(Exception):
    pass


def test_the_one_waiting_task_resumes_inside_the_call() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        resumed: list[bool] = []
        seen: list[list[bool]] = []

        async def waiter() -> None:
            await future
            resumed.append(True)

        def reader_callback() -> None:  # where genudp calls it: a loop callback, no task running
            _aio_io.resolve_now(future)
            seen.append(list(resumed))

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)  # let it start waiting
        loop.call_soon(reader_callback)
        await task
        assert seen == [[True]]  # it had resumed before resolve_now returned

    asyncio.run(main())


def test_a_future_with_two_callbacks_is_resolved_the_usual_way() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        called: list[int] = []
        future.add_done_callback(lambda f: called.append(1))
        future.add_done_callback(lambda f: called.append(2))
        _aio_io.resolve_now(future)
        assert future.done() and called == []  # scheduled, not run here
        await asyncio.sleep(0)
        assert called == [1, 2]

    asyncio.run(main())


def test_a_future_of_another_shape_is_resolved_the_usual_way() -> None:
    class Foreign:
        """A future whose callbacks are kept otherwise (another loop's, say)."""

        def __init__(self) -> None:
            self.result: Any = "unset"

        def done(self) -> bool:
            return bool(self.result != "unset")

        def set_result(self, value: Any) -> None:
            self.result = value

    future = Foreign()
    _aio_io.resolve_now(future)
    assert future.done() and future.result is None


def test_a_wake_up_cut_short_runs_once_all_the_same() -> None:
    """An exception right after the future was resolved (a signal handler's, say), with the
    task's wake-up already taken off it: the task must still resume, once."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        future: Any = asyncio.futures._PyFuture(loop=loop)  # type: ignore[attr-defined]
        resumed: list[bool] = []
        raised: list[BaseException] = []

        async def waiter() -> None:
            await future
            resumed.append(True)

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        assert len(future._callbacks) == 1
        set_result = future.set_result

        def set_then_raise(value: Any) -> None:
            set_result(value)
            raise Boom

        future.set_result = set_then_raise

        def reader_callback() -> None:
            try:
                _aio_io.resolve_now(future)
            except Boom as exc:
                raised.append(exc)
            assert resumed == []  # cut short before it ran: scheduled instead

        loop.call_soon(reader_callback)
        await asyncio.wait_for(task, 30)
        assert len(raised) == 1 and resumed == [True]

    asyncio.run(main())
