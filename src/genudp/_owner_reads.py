"""Active sockets: who reads them, the hub or their owner, and how a datagram becomes a message.

Rule 1: everything about reading an active socket into its owner's mailbox lives here: the
hub's registration, the owner borrowing its sockets while it waits in ``receive``, the lease
that takes them back, and delivery (flow control, the active-mode budget, the counters). Other
modules call only the entry points below (and the ``Socket`` methods bound from them:
``_hub_readable``, ``_owner_readable``, ``_update_registration_locked``, ``_give_back_locked``).

Theory of operation.

1. A socket is *registered* with the hub exactly while it is active, open and not paused
   (:func:`update_registration_locked`). The hub reads a registered socket in batches and
   appends them to the owner's mailbox (:func:`hub_readable`).
2. Handing every datagram from the hub thread to an owner costs a wake-up, a thread switch and
   a GIL hand-over per message: about half the throughput and 2-8x the round trip (DESIGN.md
   §5). So a thread process that waits in ``receive`` *borrows* its registered sockets
   (:func:`wait_reading`): each is disarmed in the hub's epoll set (it stays registered, with
   no events) and added to the owner's own epoll set (:class:`OwnerPoll`), beside the mailbox's
   eventfd that ``put`` writes. The owner sleeps in ``epoll_wait`` and reads what arrives itself
   (:func:`owner_readable`): the one datagram that woke it, or a batch per socket if datagrams
   were already queued. A ``receive`` that takes any message gets the datagram that woke it
   handed straight back when its mailbox is empty: it is the oldest message there would be.
3. Borrowing happens once, not per wait: a socket stays borrowed when ``receive`` returns, since
   the owner is usually back within microseconds. So a wait costs one ``epoll_wait`` however
   many sockets the process owns. The owner looks for sockets to borrow only when something
   changed (``mailbox.rescan``: a socket adopted, registered again, or taken back).
4. The lease (:class:`Lease`, the hub's ticker): every ``LEASE`` seconds the hub looks at each
   owner with borrowed sockets, and takes all of them back (arms them in its own set again) from
   an owner that has been neither asleep in ``receive`` nor back in it for a whole lease. A busy
   owner's datagrams thus wait in the kernel for at most two leases, then queue in its mailbox
   as before. When every such owner has been asleep for ``_CALM_LOOKS`` looks, the hub stops
   looking and sleeps until an owner leaves its wait (``Hub.wake``): no timer runs while
   everyone is idle.
5. Every change of who reads a socket happens under the socket's lock, and every read checks,
   under that lock, that the socket is open, active and not paused: an event fetched by either
   reader for a socket that has since changed is harmless. A socket leaves an owner's epoll set
   explicitly (:func:`give_back_locked`) before its fd closes, when it turns passive or is
   paused, and when it changes owner: a readable socket nobody reads must not stay in a
   level-triggered set, where it would spin.

6. Interrupts (``_recvwait``'s rules 1 and 2, for active mode): the owner's read stores its
   datagram in the socket's ``_held`` in the same C call that reads it, and
   ``mailbox.holding`` names the socket meanwhile; one stretch with no call in it (no point
   where a signal handler can run) then appends the message, moves mode and counters on, and
   gives the held entry up as its last step (:func:`_commit_held_locked`). A datagram an
   exception left held goes first at the next wait (:func:`flush_held`) or hub read. Every
   change of registration and borrowing makes its effect before its record (``_registered``
   is None while in flux), so an exception between leaves a record that is behind and is made
   again; a reader that finds a socket it should not read (the hub, :func:`_settle`) puts it
   right instead of spinning.

Benign races, each noted where it happens: ``mailbox.waits``/``polling`` and
``sock._registered``/``_borrower`` are read without a lock as hints, and re-checked under the
socket's lock before anything changes.

The GIL: the lease's "stop looking, then check again" (``Lease.tick``) is correct because the
owner's store of ``polling`` and its load of ``timed`` are ordered under the GIL; genudp refuses
to import on a free-threaded build with the GIL off (``__init__``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
from itertools import starmap
from typing import TYPE_CHECKING, Any, Final

from . import _hub
from ._deferred import new_lock
from ._errors import Error, error_from_oserror, reason_of_errno
from ._libc import MSG_TRUNC, buffer, credentials, recv_credentials
from ._messages import make_udp, make_udp_anc, udp_passive
from ._options import after_delivery, delivery_budget

if TYPE_CHECKING:
    from collections.abc import Set

    from ._mailbox import Mailbox
    from ._socket import Socket

__all__ = (
    "LEASE",
    "Lease",
    "OwnerPoll",
    "give_back_locked",
    "hub_failed",
    "hub_readable",
    "flush_held",
    "owner_readable",
    "resume_reading",
    "update_registration_locked",
    "wait_reading",
)

_log: Final = logging.getLogger("genudp")

#: How long (seconds) a process may keep borrowed sockets while it is not in ``receive``.
LEASE: Final = 0.01
#: Looks that found every owner asleep in ``receive`` before the hub stops looking.
_CALM_LOOKS: Final = 3
#: Datagrams the hub reads per socket per round.
_HUB_BATCH: Final = 64
#: Datagrams an owner reads per socket per wait when it finds them already queued.
_OWNER_BATCH: Final = 64
#: An owner that found nothing queued looks again (before it sleeps) after this many waits.
_PROBE_EVERY: Final = 8
#: The longest one epoll_wait may sleep (it takes an int of milliseconds).
_MAX_EPOLL_WAIT: Final = (2**31 - 1) / 1000
#: Events one epoll_wait returns at most (level-triggered: the rest come at the next).
_MAX_EVENTS: Final = 256

#: Counts forks in this process's ancestry: an epoll set or eventfd made before a fork is
#: shared with the child, which must make its own.
_fork_gen = 0


def _after_fork_in_child() -> None:
    global _fork_gen, _lease, _lease_lock
    _fork_gen += 1
    _lease = None
    _lease_lock = new_lock()


# -- the hub's registration ------------------------------------------------------------------


def update_registration_locked(sock: Socket) -> None:
    """Be in the hub's epoll set exactly while active, open and not paused (rule 1). Called with
    the socket's lock held, whenever one of the three changes."""
    want = sock._mode is not False and not sock._state and not sock._paused
    # Each change makes its effect first and records it after (rule 6): an exception between
    # leaves a record that is behind, and the next call (or the reader that finds the socket
    # readable: hub_readable, wait_reading) does the effect again, which is idempotent.
    # While a change is under way the record says None ("in flux", falsy): one cut short is
    # made again, whichever way the next call goes.
    registered = sock._registered
    if want and registered is not True:
        sock._registered = None
        _hub.hub().register(sock, sock._fd)
        sock._registered = True
        sock._owner._mailbox.rescan = True  # the owner borrows it at its next wait
    elif not want and registered is not False:
        _unregister_locked(sock)


def _unregister_locked(sock: Socket) -> None:
    give_back_locked(sock)
    sock._registered = None
    hub = _hub.current_hub()
    if hub is not None:
        hub.unregister(sock, sock._fd)
    sock._registered = False


def resume_reading(sock: Socket) -> None:
    """The owner's mailbox is down to ``sock``'s low watermark: let the hub read it again."""
    with sock._lock:
        if sock._paused:
            sock._paused = False
            try:
                update_registration_locked(sock)
            except BaseException:
                update_registration_locked(sock)  # idempotent: finish what an exception cut short
                raise


def give_back_locked(sock: Socket) -> None:
    """End a borrow (rule 5): the socket leaves its owner's epoll set, and the hub reads it
    again if it is still registered. Called with the socket's lock held; idempotent."""
    reads = sock._borrower
    if reads is None:
        return
    # The hub first, then the owner's set, then the record (rule 6): cut short, both read it
    # for a while (harmless: every read is under this lock), never neither.
    if sock._registered:
        hub = _hub.current_hub()
        if hub is not None:
            hub.arm(sock._fd, True)
    reads.remove(sock._fd)
    sock._borrower = None


def hub_failed(sock: Socket, exc: BaseException) -> None:
    """The hub could not read ``sock``: count the reason among its errors."""
    with sock._lock:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        sock._errors[reason] = sock._errors.get(reason, 0) + 1


def hub_readable(sock: Socket) -> None:
    """The hub found ``sock`` readable."""
    with sock._lock:
        _deliver_locked(sock, _HUB_BATCH)


def _deliver_locked(sock: Socket, limit: int) -> None:
    """Read up to ``limit`` datagrams (fewer if the active count allows fewer) into the owner's
    mailbox: for the hub, or for the owner itself while it waits. The socket's lock is held."""
    if sock._state or sock._mode is False or sock._paused:
        if not sock._state:
            _unregister_locked(sock)  # read, yet not to be: a change an exception cut short (rule 6)
        return
    mailbox = sock._owner._mailbox
    while sock._held:
        _commit_held_locked(sock, mailbox)  # left by an interrupted owner read: oldest first
        if sock._mode is False:
            return
    # Flow control: an owner that does not keep up must not make its mailbox grow without
    # bound. At the high watermark the hub stops reading this socket; the kernel queue then
    # fills (local senders wait; UDP drops, counted as kernel_drops), and the owner resumes
    # reading when its mailbox is down to the low watermark.
    if len(mailbox) >= sock._high and mailbox.throttle(sock, sock._low):
        sock._paused = True
        sock._counters.pauses += 1
        update_registration_locked(sock)
        return
    budget = min(delivery_budget(sock._mode), limit)
    buf, view = buffer()
    recvfrom_into = sock._sock.recvfrom_into
    convert = sock._convert
    batch: list[tuple[Any, ...]] = []
    total = 0
    truncated = 0
    error: OSError | None = None
    creds = sock._credentials
    for _ in range(budget):
        try:
            if creds:
                got, source, anc = recv_credentials(sock._sock, buf)
            else:
                got, source = recvfrom_into(buf, 0, MSG_TRUNC)
        except BlockingIOError:
            break
        except OSError as exc:
            # A pending socket error (ICMP port unreachable on a connected UDP socket):
            # reading it clears it. Count it; do not let it stop the reader.
            error = exc
            break
        if got > len(buf):
            truncated += 1
        address, port = convert(source)
        if creds:
            batch.append(make_udp_anc(("udp", sock, address, port, anc, view[:got].tobytes())))
        else:
            batch.append(make_udp(("udp", sock, address, port, view[:got].tobytes())))
        total += got
    if error is not None and error.errno is not None:
        reason = reason_of_errno(error.errno)
        sock._errors[reason] = sock._errors.get(reason, 0) + 1
    if not batch:
        return
    c = sock._counters
    c.received += len(batch)
    c.bytes_received += total
    c.truncated += truncated
    transition = after_delivery(sock._mode, len(batch))
    if transition.passive_message:
        batch.append(udp_passive(sock))
    mailbox.put_many(batch)
    if transition.mode is not sock._mode:
        sock._mode = transition.mode
        update_registration_locked(sock)


def owner_readable(sock: Socket, limit: int) -> None:
    """The owner's epoll found its borrowed ``sock`` readable: deliver up to ``limit``
    datagrams, as the hub would, but interrupt-safe (rule 6).

    ``limit`` is 1 when the datagram woke the owner: an owner that had to wait has kept up, a
    second read would almost always find the queue empty, and a read that fails costs as much
    as one that succeeds. A larger ``limit`` (datagrams were queued before the owner came to
    wait) reads until the queue is empty.

    It runs in the owner's thread, inside its ``receive``: an error here is the caller's, and
    propagates (the hub's own errors are counted and logged instead, by the hub).
    """
    with sock._lock:
        mailbox = sock._owner._mailbox
        held = sock._held
        if (
            limit == 1
            and sock._mode is True
            and not held
            and not sock._state
            and not sock._paused
            and not sock._credentials
            and len(mailbox.queue) < sock._high
        ):
            # PERF: the common case (the datagram that woke the owner, active true) written out:
            # the same steps as below, with no Python call but the read's.
            bufs = sock._rbufs
            if bufs is None:
                bufs = sock._recv_buffers()
            mailbox.holding = sock
            try:
                held.extend(starmap(sock._sock.recvfrom_into, ((bufs[0], 0, MSG_TRUNC),)))
            except BlockingIOError:
                return  # the hub read it first (it had the event before the borrow)
            except OSError as exc:
                _count_error(sock, exc)
                return
            got, source = held[0]
            data = bufs[0][:got]
            # sock._convert, inline: inet sources are tuples, local ones str, bytes or None.
            if type(source) is tuple:
                message = make_udp(("udp", sock, source[0], source[1], data))
            else:
                message = make_udp(("udp", sock, source, 0, data))
            c = sock._counters
            with mailbox._lock:
                # As in _commit_held_locked: no call from here to the popleft.
                if mailbox._open:
                    mailbox.appended += 1
                    mailbox.queue += (message,)
                mailbox.holding = None
                c.received += 1
                c.bytes_received += got
                held.popleft()
            return
        for _ in range(limit):
            if sock._held:
                _commit_held_locked(sock, mailbox)  # one an interrupted read left (rule 6)
                continue
            if sock._state or sock._mode is False or sock._paused:
                return
            if len(mailbox.queue) >= sock._high:
                _deliver_locked(sock, 1)  # pauses it (flow control)
                return
            mailbox.holding = sock
            try:
                # Rule 6: the read stores its result in the same C call (_recvwait, rule 1).
                sock._read_held(MSG_TRUNC)
            except BlockingIOError:
                return  # the hub read it first (it had the event before the borrow)
            except OSError as exc:
                _count_error(sock, exc)
                return
            _commit_held_locked(sock, mailbox)


def _count_error(sock: Socket, exc: OSError) -> None:
    """A pending socket error that a read returned (and so cleared): count it, go on."""
    if exc.errno is not None:
        reason = reason_of_errno(exc.errno)
        sock._errors[reason] = sock._errors.get(reason, 0) + 1


def flush_held(mailbox: Mailbox) -> None:
    """Deliver the datagram an exception left held by the owner's read (rule 6), before the
    owner waits: its kernel queue no longer says it is there."""
    sock = mailbox.holding
    if sock is not None:
        with sock._lock:
            if sock._held and not sock._state and sock._mode is not False:
                _commit_held_locked(sock, mailbox)
            elif not sock._held:
                mailbox.holding = None


def _commit_held_locked(sock: Socket, mailbox: Mailbox) -> None:
    """Make the oldest held datagram a message and append it (rule 6): the message is built
    first, then one stretch with no call in it (no point where a signal handler can run) puts
    it in the mailbox and moves the mode and the counters on, and the ``popleft`` that gives
    the held entry up is its last step. The socket's lock is held; the owner is awake (it is
    the reader), so nobody needs waking."""
    held = sock._held
    entry = held[0]
    got = entry[0]
    buf = sock._rbuf
    assert buf is not None
    data = buf[:got]
    truncated = int(got > len(buf))
    if len(entry) == 4:  # recvmsg_into's (nbytes, ancillary, flags, address): credentials
        address, port = sock._convert(entry[3])
        message = make_udp_anc(("udp", sock, address, port, credentials(entry[1]), data))
    else:
        address, port = sock._convert(entry[1])
        message = make_udp(("udp", sock, address, port, data))
    mode = sock._mode
    if mode is True or mode is False:  # False: a leftover flushed by the hub (never passive here)
        messages: tuple[Any, ...] = (message,)
        count = 1
    else:
        transition = after_delivery(mode, 1)
        mode = transition.mode
        messages = (message, udp_passive(sock)) if transition.passive_message else (message,)
        count = 2 if transition.passive_message else 1
    c = sock._counters
    with mailbox._lock:
        # No call from here to the popleft (see the docstring).
        if mailbox._open:
            mailbox.appended += count
            mailbox.queue += messages
        mailbox.holding = None
        sock._mode = mode
        c.received += 1
        c.bytes_received += got
        c.truncated += truncated
        held.popleft()
    if mode is False:
        update_registration_locked(sock)  # once, or N run out: passive now


# -- the owner's own epoll set ---------------------------------------------------------------


class OwnerPoll:
    """One process's epoll set: its mailbox's eventfd and the sockets it has borrowed.

    ``add`` runs in the owner's thread; ``remove`` in any thread (the lease, close, setopts,
    a hand-over), with the socket's lock held; ``close`` when the process ends. Its own lock
    orders them, so no epoll_ctl reaches a closed (and perhaps reused) epoll fd.
    """

    __slots__ = ("_closed", "_lock", "efd", "epoll", "fds", "gen", "mailbox", "probe")

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.gen = _fork_gen
        self._lock = new_lock()
        self._closed = False
        self.probe = 0
        self.fds: dict[int, Socket] = {}
        self.epoll = select.epoll()
        self.efd = mailbox.efd
        self.epoll.register(self.efd, select.EPOLLIN)

    def add(self, fd: int, sock: Socket) -> bool:
        with self._lock:
            if self._closed:
                return False
            try:
                self.epoll.register(fd, select.EPOLLIN)
            except FileExistsError:  # left by a give-back an exception cut short (rule 6)
                self.epoll.modify(fd, select.EPOLLIN)
            self.fds[fd] = sock
            return True

    def held_here(self) -> bool:
        """Whether this thread holds this set's lock (_deferred, rule 1)."""
        return self._lock._is_owned()

    def remove(self, fd: int) -> None:
        with self._lock:
            self.fds.pop(fd, None)
            if not self._closed:
                with contextlib.suppress(OSError, ValueError):
                    self.epoll.unregister(fd)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.fds.clear()
            self.epoll.close()


def _borrow(sock: Socket, reads: OwnerPoll) -> None:
    """Read ``sock`` in the owner's epoll set instead of the hub, if the hub reads it now."""
    if not sock._registered:
        return  # passive, paused or closing (a hint: registration sets mailbox.rescan)
    with sock._lock:
        held = sock._borrower
        if not sock._registered or sock._state or (held is not None and held.gen == _fork_gen):
            return
        hub = _hub.hub()
        # The owner's set first, then the hub disarmed (the fd stays registered), then the
        # record (rule 6): cut short, both read it for a while, never neither; wait_reading
        # finishes a borrow it finds half made.
        if not reads.add(sock._fd, sock):
            return
        lease().keep(reads)
        hub.arm(sock._fd, False)
        sock._borrower = reads


def _settle(sock: Socket, reads: OwnerPoll) -> None:
    """``sock`` is in the owner's set but not recorded as borrowed by it (rule 6): finish the
    borrow if the socket is still the owner's to read, or else take it out of the set (left
    there, a readable socket would wake every wait)."""
    with sock._lock:
        if sock._borrower is reads:
            return
        if sock._borrower is None and sock._registered and not sock._state and sock._owner._mailbox is reads.mailbox:
            hub = _hub.current_hub()
            if hub is not None:
                hub.arm(sock._fd, False)
            sock._borrower = reads
        else:
            reads.remove(sock._fd)


def _prepare(mailbox: Mailbox, sockets: Set[Socket]) -> OwnerPoll:
    """The owner's epoll set, made on first use (and anew in a forked child), with every socket
    the hub reads now borrowed."""
    reads: OwnerPoll | None = mailbox.reads
    if reads is None or reads.gen != _fork_gen:
        if reads is not None:
            # A forked child holds copies of the parent's epoll fd and eventfd: closing the
            # copies leaves the parent's alone.
            with contextlib.suppress(OSError):
                reads.epoll.close()
            if mailbox.efd >= 0:
                with contextlib.suppress(OSError):
                    os.close(mailbox.efd)
                mailbox.efd = -1
        if mailbox.efd < 0:
            mailbox.efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        reads = mailbox.reads = OwnerPoll(mailbox)
    mailbox.rescan = False  # cleared before the scan: a change meanwhile sets it again
    try:
        for sock in list(sockets):  # list() of a set: one C call, atomic under the GIL
            _borrow(sock, reads)
    except BaseException:
        mailbox.rescan = True  # cut short (rule 6): the next wait scans again
        raise
    return reads


def wait_reading(mailbox: Mailbox, sockets: Set[Socket], seen: int, deadline: float | None) -> bool:
    """``Mailbox.wait`` for a thread process that owns sockets: sleep in its epoll set, reading
    the sockets it borrowed meanwhile (rules 2-3). Only the owner's thread calls this.

    Returns True (perhaps a spurious wake-up: the caller looks again) or False (the deadline
    passed).
    """
    if mailbox.holding is not None:
        flush_held(mailbox)  # a datagram an exception left held (rule 6): deliver it first
        return True
    mailbox.waits += 1  # for the lease: this owner came back
    reads: OwnerPoll | None = mailbox.reads
    try:
        if reads is None or mailbox.rescan or reads.gen != _fork_gen:
            try:
                reads = _prepare(mailbox, sockets)
            except OSError as exc:  # EMFILE making the epoll set or the eventfd, say
                if isinstance(exc, Error):
                    raise
                raise error_from_oserror(exc, " preparing to wait in receive") from None
        fds = reads.fds
        if not fds:
            return mailbox.wait(seen, deadline)
        if deadline is None:
            timeout = -1.0
        else:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return False
            timeout = min(timeout, _MAX_EPOLL_WAIT)  # then True, and the caller waits again
        # Datagrams already queued: the owner is behind its senders, so read batches (as the
        # hub does). Otherwise sleep, and read the one datagram that woke us. An owner that had
        # to sleep last time looks first only every _PROBE_EVERY waits: in a ping-pong that
        # look never finds anything, and costs a syscall.
        events: list[tuple[int, int]] = []
        if reads.probe <= 0:
            events = reads.epoll.poll(0, _MAX_EVENTS)
            reads.probe = 0 if events else _PROBE_EVERY
        else:
            reads.probe -= 1
        limit = _OWNER_BATCH
        signalled = False
        efd = reads.efd
        if not events:
            limit = 1
            if not mailbox.sleep_begin(seen):
                return True
            try:
                events = reads.epoll.poll(timeout, _MAX_EVENTS)
            finally:
                signalled = mailbox.sleep_end()
        for fd, _mask in events:
            if fd == efd:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(efd)  # put() wrote it (see Mailbox.sleep_end)
            else:
                sock = fds.get(fd)  # None: given back meanwhile (rule 5)
                if sock is None:
                    continue
                if sock._borrower is not reads:
                    _settle(sock, reads)  # a borrow or a give-back an exception cut short
                sock._owner_readable(limit)
        # Nothing came: the deadline passed, or a long wait's slice did (True: wait again).
        return signalled or bool(events) or (deadline is not None and time.monotonic() < deadline)
    finally:
        if reads is not None and reads.fds:
            # Leaving the wait with sockets borrowed: the hub must be looking (the lease).
            # polling is already False, so a hub that stops looking meanwhile sees it.
            held = _lease
            if held is not None and not held.timed:
                hub = _hub.current_hub()
                if hub is not None:
                    hub.wake()


# -- the lease -------------------------------------------------------------------------------


class Lease:
    """The hub's ticker (rule 4): takes borrowed sockets back from owners that stay away."""

    interval: float = LEASE

    def __init__(self) -> None:
        self.timed = False
        self._calm = 0
        # Owners with borrowed sockets, each with what the last look saw:
        # [its mailbox's wait count, whether it was asleep in epoll_wait].
        self._owners: dict[OwnerPoll, list[int]] = {}

    def keep(self, reads: OwnerPoll) -> None:
        """``reads`` borrowed a socket (called with that socket's lock held)."""
        if reads not in self._owners:
            self._owners[reads] = [-1, 1]

    def start(self) -> None:
        self.timed = True
        self._calm = 0

    def tick(self) -> None:
        all_asleep = True
        owners = self._owners
        for reads, seen in list(owners.items()):
            mailbox = reads.mailbox
            waits, asleep = mailbox.waits, int(mailbox.polling)  # hints (see the essay)
            if not reads.fds:
                owners.pop(reads, None)
                continue
            if not asleep and not seen[1] and waits == seen[0]:
                # Away for a whole lease. Forget the owner first: a socket it borrows again
                # meanwhile keep()s it again, and is not left unwatched.
                owners.pop(reads, None)
                for sock in list(reads.fds.values()):
                    with sock._lock:
                        if sock._borrower is reads:
                            give_back_locked(sock)
                mailbox.rescan = True
                continue
            seen[0], seen[1] = waits, asleep
            all_asleep = all_asleep and bool(asleep)
        self._calm = self._calm + 1 if all_asleep else 0
        if self._calm >= _CALM_LOOKS or not owners:
            # Stop looking, then check again that every owner still sleeps: one that woke in
            # between either saw timed False (and wakes the hub) or is seen awake here.
            self.timed = False
            if all(reads.mailbox.polling for reads in list(owners)):
                self._calm = 0
                return
            self.timed = True


_lease: Lease | None = None
_lease_lock = new_lock()


def lease() -> Lease:
    """The lease, installed as the hub's ticker on first use."""
    global _lease
    held = _lease
    hub = _hub.hub()
    if held is not None and hub.ticker is held:
        return held
    with _lease_lock:
        if _lease is None:
            _lease = Lease()
        if hub.ticker is not _lease:
            hub.ticker = _lease
        return _lease


os.register_at_fork(after_in_child=_after_fork_in_child)
