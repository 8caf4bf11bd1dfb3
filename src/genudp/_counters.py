"""A socket's counters, by name, and the typed snapshot ``Socket.info()`` returns.

Rule 1: every counter a socket keeps is a named slot of one of the three classes below, and
``info()`` is built only by :func:`socket_info`. A positional ``c[2] += 1`` meant "received" in
one list and "truncated" in another before; a misspelt slot name is now an AttributeError.

Who writes what, and why some need no lock (this is the whole protocol):

- :class:`SocketCounters`: under the socket's lock. The hub and an owner reading for itself
  (``_owner_reads``) count deliveries; senders count waits; the send log is folded in here.
- :class:`RecvCounters`: passive ``recv``/``arecv`` counts, written by the owner's thread only
  (only the owner may ``recv``), so no lock; ``info()`` reads them as they are.
- :class:`DirectCounters`: one per sending thread (a dict keyed by thread id, added to under
  the lock), each written by its own thread only.
- The send log (``Socket._sent``, a deque of sizes): any thread appends with one atomic call,
  and :func:`fold_sent` pops exactly as many entries as it counts, so a send that appends
  meanwhile is left for the next fold, never lost. (This relies on ``deque.append`` and
  ``popleft`` being atomic, which holds with and without the GIL: deque takes its own lock on
  free-threaded builds.) ``info()`` does not fold: it adds a copy of the log to its copy of
  the counters, and changes nothing (so a signal handler may call it anywhere: _deferred,
  rule 3). A fold that finds the lock already held by its own thread (a send from a signal
  handler that interrupted a fold) leaves the log to the next one.

Pure: no socket, select or threading here. ``info`` is a ``Socket`` method bound from here: it
takes the socket's own lock to copy what is counted under it, and builds the dict.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, TypedDict

if TYPE_CHECKING:
    from ._process import Pid
    from ._socket import Socket

_STATES = ("open", "closing", "closed")

__all__ = ("DirectCounters", "info", "RecvCounters", "SocketCounters", "SocketInfo", "fold_sent", "socket_info")


class SocketCounters:
    """What a socket counts under its lock."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "eagain_waits",
        "eintr_retries",
        "pauses",
        "received",
        "sent",
        "truncated",
        "wait_cpu_seconds",
        "wait_seconds",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.bytes_sent = 0
        self.received = 0  # delivered to the mailbox (the hub, or the owner reading for itself)
        self.bytes_received = 0
        self.truncated = 0
        self.eagain_waits = 0
        self.wait_seconds = 0.0
        self.wait_cpu_seconds = 0.0
        self.eintr_retries = 0
        self.pauses = 0


class RecvCounters:
    """Passive ``recv``/``arecv``: written by the owner's thread only."""

    __slots__ = ("bytes_received", "received", "truncated")

    def __init__(self) -> None:
        self.received = 0
        self.bytes_received = 0
        self.truncated = 0


class DirectCounters:
    """Sends made straight as one blocking call, by one thread (written by that thread only)."""

    __slots__ = ("seconds", "sends")

    def __init__(self) -> None:
        self.sends = 0
        self.seconds = 0.0


def fold_sent(log: deque[int], counters: SocketCounters) -> None:
    """Move the sizes logged in ``log`` into ``counters`` (the caller holds the socket's lock)."""
    n = len(log)
    counters.sent += n
    counters.bytes_sent += sum(itertools.starmap(log.popleft, itertools.repeat((), n)))


class SocketInfo(TypedDict):
    """What ``Socket.info()`` returns: a snapshot of the counters since open."""

    family: str
    owner: Pid
    active: Any
    state: str
    datagrams_sent: int
    bytes_sent: int
    datagrams_received: int
    bytes_received: int
    eagain_waits: int
    wait_seconds: float
    wait_cpu_seconds: float
    eintr_retries: int
    direct_sends: int
    direct_seconds: float
    paused: bool
    pauses: int
    kernel_drops: int | None
    truncated: int
    errors: dict[str, int]


def socket_info(
    *,
    family: str,
    owner: Pid,
    active: Any,
    state: str,
    counters: SocketCounters,
    recv: RecvCounters,
    direct: Iterable[DirectCounters],
    paused: bool,
    kernel_drops: int | None,
    errors: dict[str, int],
) -> SocketInfo:
    """The ``info()`` dict; ``counters`` and ``errors`` are copies taken under the lock."""
    sends = seconds = 0.0
    for d in direct:
        sends += d.sends
        seconds += d.seconds
    return {
        "family": family,
        "owner": owner,
        "active": active,
        "state": state,
        "datagrams_sent": counters.sent,
        "bytes_sent": counters.bytes_sent,
        "datagrams_received": counters.received + recv.received,
        "bytes_received": counters.bytes_received + recv.bytes_received,
        "eagain_waits": counters.eagain_waits,
        "wait_seconds": counters.wait_seconds,
        "wait_cpu_seconds": counters.wait_cpu_seconds,
        "eintr_retries": counters.eintr_retries,
        "direct_sends": int(sends),
        "direct_seconds": seconds,
        "paused": paused,
        "pauses": counters.pauses,
        "kernel_drops": kernel_drops,
        "truncated": counters.truncated + recv.truncated,
        "errors": errors,
    }


def copy_counters(counters: SocketCounters) -> SocketCounters:
    """A snapshot of ``counters`` (take it under the socket's lock)."""
    out = SocketCounters()
    for name in SocketCounters.__slots__:
        setattr(out, name, getattr(counters, name))
    return out


def info(self: Socket) -> SocketInfo:
    """Counters since open: a snapshot, safe to call from any process. Does not block.

    Keys: datagrams_sent, bytes_sent, datagrams_received, bytes_received, eagain_waits (sends
    that found the destination or buffer full and waited), wait_seconds (time those sends
    spent waiting), wait_cpu_seconds (CPU the waiting threads used meanwhile: a wait that
    spins shows here), truncated (datagrams larger than the receive buffer), errors (by
    reason), paused and pauses (flow control), kernel_drops (UDP: datagrams the kernel
    dropped for a full queue; None for local sockets), plus family, owner, active and state.

    eintr_retries counts waits (in send or recv) that a signal interrupted and genudp
    resumed.

    direct_sends counts sends made straight as one blocking call because the destination
    was full at a recent send (local sockets without a send timeout): the kernel may have
    made each wait, for at most 40 ms; a longer wait becomes an eagain wait. direct_seconds
    is the time spent in them (waiting or not); it is not in wait_seconds, and a signal
    during one is retried by Python itself (PEP 475), not counted in eintr_retries.
    """
    with self._lock:
        log = tuple(self._sent)  # one C call: a concurrent append is in it or not, whole
        counters = copy_counters(self._counters)
        errors = dict(self._errors)
        direct = list(self._direct_counters.values())
    counters.sent += len(log)
    counters.bytes_sent += sum(log)
    return socket_info(
        family=self.family,
        owner=self._owner,
        active=self._mode,
        state=_STATES[self._state],
        counters=counters,
        recv=self._recv_counters,
        direct=direct,
        paused=self._paused,
        kernel_drops=self._kernel_drops(),
        errors=errors,
    )


#: Sizes logged in ``Socket._sent`` are folded into the counters beyond this many.
FOLD_AT: Final = 1024


def record_sent(self: Socket, sent: int) -> None:
    """Count a datagram sent: one deque append (``send``'s common path writes this out inline)."""
    log = self._sent
    log.append(sent)
    if len(log) > FOLD_AT:
        self._fold_sent()


def fold_sent_locking(self: Socket) -> None:
    """Fold the send log into the counters, under the socket's lock; not when this thread
    holds it already (a signal handler's send: see the protocol above)."""
    if self._lock._is_owned():
        return
    with self._lock:
        fold_sent(self._sent, self._counters)
