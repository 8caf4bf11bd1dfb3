"""Every public call, fed random values of every type: the only outcomes are a result, a
TypeError or ValueError that names the argument (and what arrived), raised before any syscall
(nothing sent, nothing taken), or a genudp.Error with a reason for what the OS said.

OverflowError, struct.error, BufferError, AttributeError, RuntimeError and the like are the
wrong kind of error for a caller's mistake: each of them once escaped from some call here.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genudp
import genudp.aio
from tests.integration.test_hostile_edges import nothing_waiting

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.builds(bytearray, st.binary(max_size=12)),
    st.just(memoryview(b"abcdef")[::2]),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.sampled_from(["127.0.0.1", "::1", "", "x\0"]), st.one_of(st.integers(-5, 70000), st.booleans())),
    st.just(object()),
    st.just(Path("/nonexistent-genudp/x.sock")),
)
#: A timeout argument: 0 (only looks), or anything that is not a valid wait.
timeouts = st.one_of(st.sampled_from([0, 0.0]), values.filter(lambda v: not _small_number(v)))


def _small_number(value: object) -> bool:
    """A valid timeout that would make the call wait (None, or a number above 0, infinity and
    10**400 included): not what this test is for."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value > 0 and (type(value) is int or not math.isnan(value))


def judge(call: Callable[[], object], *names: str) -> str:
    """Run ``call``; only a result, an argument error naming one of ``names``, or a
    genudp.Error may come out. Returns which: "ok", "argument" or "os"."""
    try:
        call()
    except genudp.Error as exc:
        assert exc.reason, exc
        return "os"
    except (TypeError, ValueError) as exc:
        text = str(exc)
        assert any(name in text for name in names), f"{type(exc).__name__} does not name {names}: {text!r}"
        assert any(w in text for w in ("got", "must", "expected", "needs")), (
            f"says neither what was expected nor what arrived: {text!r}"
        )
        return "argument"
    return "ok"


def run_async(coro_fn: Callable[[], Any]) -> Callable[[], object]:
    return lambda: asyncio.run(coro_fn())


@pytest.fixture
def sockets(tmp_sock_dir: Path) -> Iterator[dict[str, genudp.Socket]]:
    made = {
        "local_rx": genudp.open(path=str(tmp_sock_dir / "rx.sock"), active=False),
        "local_tx": genudp.open(family="local", active=False),
        "udp_rx": genudp.open(ip="127.0.0.1", active=False),
        "udp_tx": genudp.open(ip="127.0.0.1", active=False),
    }
    yield made
    for sock in made.values():
        sock.close()


@SETTINGS
@given(data=values, dest=values, timeout=st.one_of(st.just(genudp._sendwait.UNSET), timeouts))
def test_send_and_asend(sockets: dict[str, genudp.Socket], data: Any, dest: Any, timeout: Any) -> None:
    names = ("data", "dest", "host", "port", "timeout", "flowinfo", "scope_id")
    kw = {} if timeout is genudp._sendwait.UNSET else {"timeout": timeout}
    for family in ("local", "udp"):
        tx, rx = sockets[f"{family}_tx"], sockets[f"{family}_rx"]
        calls: list[Callable[[], object]] = [
            functools.partial(tx.send, data, dest, **kw),
            run_async(functools.partial(tx.asend, data, dest, **kw)),
        ]
        for call in calls:
            before = tx.info()["datagrams_sent"]
            outcome = judge(call, *names)
            sent = tx.info()["datagrams_sent"] - before
            # An argument error is raised before any syscall: nothing was sent.
            assert sent == (1 if outcome == "ok" else 0), (outcome, sent)
            while not nothing_waiting(rx):
                pass  # (a valid value may have reached the receiver: that is a result)


@SETTINGS
@given(timeout=timeouts)
def test_recv_arecv_receive_and_join(sockets: dict[str, genudp.Socket], timeout: Any) -> None:
    rx = sockets["local_rx"]
    judge(lambda: rx.recv(timeout), "timeout")
    judge(run_async(lambda: rx.arecv(timeout)), "timeout")
    judge(lambda: genudp.receive(None, timeout), "timeout")
    judge(run_async(lambda: genudp.aio.receive(None, timeout)), "timeout")
    judge(lambda: genudp.self().join(timeout), "timeout")
    judge(run_async(lambda: genudp.aio.join(genudp.self(), timeout)), "timeout")


@SETTINGS
@given(value=values)
def test_calls_taking_a_pid_a_ref_a_match_or_an_address(sockets: dict[str, genudp.Socket], value: Any) -> None:
    rx = sockets["local_rx"]
    judge(lambda: genudp.receive(value, 0), "match")
    judge(lambda: genudp.monitor(value), "Pid")
    judge(lambda: genudp.demonitor(value), "Ref")
    judge(lambda: rx.controlling_process(value), "Pid")
    judge(lambda: genudp.parse_address(value), "address")
    judge(lambda: sockets["local_tx"].connect(value), "dest")
    judge(lambda: sockets["udp_tx"].connect(value), "dest", "host", "port")
    judge(lambda: genudp.spawn(value), "callable", "spawn")
    judge(lambda: rx.getopts(value), "option", "name")
    assert rx.getopts("active") == {"active": False}
    with pytest.raises(genudp.Timeout):
        genudp.receive(timeout=0)  # nothing was sent to this process by any of it
