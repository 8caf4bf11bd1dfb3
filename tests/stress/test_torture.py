"""The torture suite: sequence-numbered accounting under a full receiver and a signal storm.

Each run pushes 10,000 datagrams from four senders (three threads here, one separate process) to
a Unix-domain receiver that reads slowly, so its queue is full most of the time, while SIGALRM
fires at 1 kHz in every sending process. ``Result.problems()`` is the verdict: delivered ==
returned (no loss, no phantom delivery of a raised datagram, no duplicate), each sender's order
kept, no stray message in any mailbox, CPU while blocked <= 5 %.
"""

from __future__ import annotations

from typing import Any

import pytest

from genudp import _socket
from genudp._harness.scenario import Config, Result, run

pytestmark = pytest.mark.stress

MODES = {
    "wait": Config(send_timeout=None),
    "eagain": Config(send_timeout=0),
    "timeout-5ms": Config(send_timeout=0.005),
    "wait-receiver-killed-twice": Config(send_timeout=None, restarts=2),
}


def report(result: Result) -> None:
    summary = result.summary()
    print()
    for key, value in summary.items():
        print(f"  {key:16} {value}")
    for s in result.senders:
        print(
            f"  sender {s.sid} ({s.kind}): returned {len(s.returned)}, raised "
            f"{ {k: len(v) for k, v in s.raised.items()} }, cpu {s.cpu_share:.2%} of wall, "
            f"{s.blocked_cpu_share:.2%} while blocked ({s.wait_seconds:.2f} s blocked)"
        )


@pytest.mark.parametrize("mode", list(MODES))
def test_every_datagram_is_accounted_for(mode: str) -> None:
    config = MODES[mode]
    result = run(config)
    report(result)
    assert result.problems() == []
    assert result.attempted == 10_000
    assert result.strays == 0 and result.duplicated == 0 and result.phantom == 0 and result.reordered == 0
    if config.restarts:
        assert result.restarts_done == config.restarts
        assert result.lost <= result.loss_allowance()
        assert set(result.raised) <= {"enoent", "econnrefused"}
    else:
        assert result.lost == 0
    # The scenario really is the hard one: the queue was full often, and the storm really blew.
    if config.send_timeout == 0:
        assert result.raised.get("eagain", 0) > 1000
        assert set(result.raised) == {"eagain"}
    else:
        # After a send waited, the next ones go straight into a blocking call (direct sends):
        # together they show the queue full again and again.
        assert result.eagain_waits > 50
        assert result.eagain_waits + result.direct_sends > 500
    if config.send_timeout == 0.005:
        assert set(result.raised) <= {"timeout"}
    assert result.signals >= 0.25 * config.signal_hz * result.wall
    assert result.max_blocked_cpu_share <= 0.05
    if config.send_timeout != 0:
        assert result.cpu_judged, "senders were blocked too briefly to judge their CPU"


def test_the_books_catch_a_send_that_reports_success_on_eagain(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTP-19332 in miniature: on EAGAIN, claim the datagram was sent without sending it. The
    accounting must call that out; if it did not, the torture suite could not fail."""

    def broken_wait(self: _socket.Socket, data: Any, dest: Any, timeout: Any) -> int:
        return len(data)

    monkeypatch.setattr(_socket.Socket, "_send_wait", broken_wait)
    result = run(Config(threads=2, processes=0, per_sender=1000, signal_hz=0))
    report(result)
    assert result.lost > 0
    assert any("never delivered" in p for p in result.problems())
    assert result.summary()["verdict"] == "FAIL"
