"""The hub's own life: it closes its epoll and eventfd when it stops, and an epoll_wait that
keeps failing ends it with one report and an error to its users, never a spin."""

from __future__ import annotations

import logging
import os

import pytest

import genudp
from genudp import _hub


def ended(hub: _hub.Hub, within: float = 30.0) -> bool:
    """Liveness: the hub's thread ends within ``within`` seconds (generous, for a loaded machine)."""
    hub._thread.join(within)
    return not hub.is_alive()


def test_stop_ends_the_thread_and_closes_its_fds() -> None:
    hub = _hub.Hub()
    wake_fd = hub._wake_fd
    assert os.readlink(f"/proc/self/fd/{wake_fd}") == "anon_inode:[eventfd]"
    assert not hub._epoll.closed
    hub.stop(30)
    assert not hub.is_alive()
    assert hub._epoll.closed
    with pytest.raises(genudp.Error) as caught:
        hub.arm(0, True)
    assert caught.value.reason == "closed"


def test_a_failing_epoll_wait_ends_the_hub_once_with_an_error(caplog: pytest.LogCaptureFixture) -> None:
    hub = _hub.Hub()
    epoll_fd = hub._epoll.fileno()
    with open(os.devnull, "rb") as devnull:
        # Something else in the program clobbers the hub's epoll fd: every epoll_wait now fails.
        os.dup2(devnull.fileno(), epoll_fd)
    with caplog.at_level(logging.ERROR, logger="genudp"):
        hub.wake()  # out of the epoll_wait it is in, into the next one, which fails
        assert ended(hub), "the hub kept running on a broken epoll fd (the old loop retried: a spin)"
    failures = [r for r in caplog.records if "epoll_wait failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert hub.failure is not None
    with pytest.raises(genudp.Error) as caught:
        hub.register(None, 0)  # type: ignore[arg-type]
    assert caught.value.reason in ("einval", "ebadf")
    assert "hub" in str(caught.value)


def test_hub_raises_the_failure_instead_of_handing_out_a_dead_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _hub.Hub()
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), hub._epoll.fileno())
    hub.wake()
    assert ended(hub)
    monkeypatch.setattr(_hub, "_hub", hub)
    with pytest.raises(genudp.Error) as caught:
        _hub.hub()
    assert "epoll_wait failed" in str(caught.value)
