"""The full-receiver scenario: sequence-numbered accounting of every datagram.

This module owns the scenario that ``genudp repro`` prints and that the torture suite
(``tests/stress``) asserts on, so the two can never disagree about what was measured.

Shape of a run:
- A *receiver* subprocess binds a Unix-domain path with ``active=N``, reads slowly (it sleeps
  ``reader_pause`` after every ``reader_burst`` datagrams: the slowness is the scenario), and
  writes each datagram's ``sender seq`` to its stdout the moment it takes it from its mailbox.
  Its queue (``max_dgram_qlen + 1`` datagrams) is therefore full most of the time.
- *Sender threads* in this process and in *sender processes* each send ``per_sender`` sequence-numbered datagrams
  and record which sends returned and which raised, by reason. After a raise an application has to
  do something: these back off ``backoff`` seconds and go on with the next number.
- A SIGALRM timer fires at ``signal_hz`` in every sending process, with a handler that returns.
- Optionally the receiver is killed (SIGKILL) and restarted at the same path mid-stream.

Then the books must balance: what was delivered is exactly what returned (no loss, no phantom
delivery of a raised datagram, no duplicate), in each sender's order; no mailbox holds a message
the scenario did not send; and senders used little CPU while blocked. With restarts, datagrams that
the kernel accepted into a receiver that was then killed are legitimately lost: at most the
receiver's queue, its mailbox window and the one in its hands, per restart.

This module runs as ``python -m genudp._harness.scenario receive|send ...`` for the subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import genudp
from genudp import Error

from . import as_child, child_env

__all__ = ("Config", "Receiver", "Result", "SenderResult", "max_dgram_qlen", "payload", "run")

_STOP = b"STOP"
#: Seconds a sender must spend blocked before its CPU share is held to the 5 % bound.
MIN_JUDGED_BLOCKED = 1.0


def max_dgram_qlen() -> int:
    """``net.unix.max_dgram_qlen`` of this network namespace (10 when it cannot be read)."""
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 10


@dataclass(frozen=True)
class Config:
    """What to run. The defaults are ``genudp repro``'s."""

    threads: int = 3
    processes: int = 1
    per_sender: int = 2500
    send_timeout: float | None = None
    signal_hz: int = 1000
    reader_pause: float = 0.002
    reader_burst: int = 5
    reader_active: int = 10
    restarts: int = 0
    payload: int = 64
    backoff: float = 0.001
    deadline: float = 120.0

    @property
    def senders(self) -> int:
        return self.threads + self.processes

    @property
    def mode(self) -> str:
        timeout = "None" if self.send_timeout is None else f"{self.send_timeout:g}"
        return f"send_timeout={timeout}" + (f", {self.restarts} restart(s)" if self.restarts else "")


@dataclass
class SenderResult:
    """One sender's own account."""

    sid: int
    kind: str
    returned: list[int] = field(default_factory=list)
    raised: dict[str, list[int]] = field(default_factory=dict)
    cpu: float = 0.0
    wall: float = 0.0
    eagain_waits: int = 0
    direct_sends: int = 0
    direct_seconds: float = 0.0
    wait_seconds: float = 0.0
    wait_cpu: float = 0.0
    eintr_retries: int = 0
    strays: list[str] = field(default_factory=list)
    signals: int = 0
    failure: str | None = None

    @property
    def cpu_share(self) -> float:
        """All the CPU this sender's thread used, as a share of its wall time."""
        return self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def blocked_seconds(self) -> float:
        """Time in sends that waited, or may have: counted waits plus direct sends."""
        return self.wait_seconds + self.direct_seconds

    @property
    def blocked_cpu_share(self) -> float:
        """CPU per second blocked in send. Without direct sends: the CPU of the counted waits
        themselves. With them (their CPU cannot be told apart from sending work): all of the
        sender's CPU, an upper bound."""
        if self.blocked_seconds <= 0:
            return 0.0
        if self.direct_sends:
            return self.cpu / self.blocked_seconds
        return self.wait_cpu / self.wait_seconds


@dataclass
class Result:
    """A run's books. ``problems()`` is empty exactly when genudp's promise held."""

    config: Config
    qlen: int
    senders: list[SenderResult]
    delivered: list[tuple[int, int]]
    receiver_strays: int
    restarts_done: int
    wall: float
    signals: int
    driver_strays: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return sum(len(s.returned) + sum(len(v) for v in s.raised.values()) for s in self.senders)

    @property
    def sent(self) -> int:
        return sum(len(s.returned) for s in self.senders)

    @property
    def raised(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for s in self.senders:
            for reason, seqs in s.raised.items():
                out[reason] += len(seqs)
        return dict(sorted(out.items()))

    def _returned_set(self) -> set[tuple[int, int]]:
        return {(s.sid, seq) for s in self.senders for seq in s.returned}

    @property
    def lost(self) -> int:
        return len(self._returned_set() - set(self.delivered))

    @property
    def phantom(self) -> int:
        """Delivered although its send raised (or was never made)."""
        return len(set(self.delivered) - self._returned_set())

    @property
    def duplicated(self) -> int:
        return len(self.delivered) - len(set(self.delivered))

    @property
    def reordered(self) -> int:
        last: dict[int, int] = {}
        out = 0
        for sid, seq in self.delivered:
            if seq <= last.get(sid, -1):
                out += 1
            last[sid] = seq
        return out

    @property
    def strays(self) -> int:
        return self.receiver_strays + len(self.driver_strays) + sum(len(s.strays) for s in self.senders)

    @property
    def max_cpu_share(self) -> float:
        return max((s.cpu_share for s in self.senders), default=0.0)

    @property
    def max_blocked_cpu_share(self) -> float:
        return max((s.blocked_cpu_share for s in self.senders), default=0.0)

    @property
    def cpu_judged(self) -> bool:
        """Whether every sender was blocked long enough (1 s) for its CPU share to mean much:
        in short runs the first wait's one-off costs dominate."""
        return all(s.blocked_seconds >= MIN_JUDGED_BLOCKED for s in self.senders if s.eagain_waits)

    @property
    def eagain_waits(self) -> int:
        return sum(s.eagain_waits for s in self.senders)

    @property
    def direct_sends(self) -> int:
        return sum(s.direct_sends for s in self.senders)

    @property
    def eintr_retries(self) -> int:
        return sum(s.eintr_retries for s in self.senders)

    def loss_allowance(self) -> int:
        """Datagrams a killed receiver may take with it: its queue, its active window, one in hand."""
        return self.restarts_done * (self.qlen + 1 + self.config.reader_active + 1)

    def problems(self) -> list[str]:
        out = [f"sender {s.sid} failed: {s.failure}" for s in self.senders if s.failure]
        if self.lost > self.loss_allowance():
            out.append(f"{self.lost} datagram(s) whose send returned were never delivered")
        if self.phantom:
            out.append(f"{self.phantom} datagram(s) delivered although their send raised")
        if self.duplicated:
            out.append(f"{self.duplicated} datagram(s) delivered twice")
        if self.reordered:
            out.append(f"{self.reordered} datagram(s) out of their sender's order")
        if self.strays:
            out.append(f"{self.strays} stray message(s) in mailboxes")
        if self.cpu_judged and self.max_blocked_cpu_share > 0.05:
            out.append(f"a blocked sender used {self.max_blocked_cpu_share:.1%} of a core (limit 5%)")
        if self.config.restarts and self.restarts_done < self.config.restarts:
            out.append(f"only {self.restarts_done} of {self.config.restarts} receiver restarts happened")
        expected = self.config.senders * self.config.per_sender
        if self.attempted != expected:
            out.append(f"{self.attempted} of {expected} sends were attempted")
        out.extend(self.notes)
        return out

    def summary(self) -> dict[str, Any]:
        """The table's row, as JSON-friendly values."""
        return {
            "mode": self.config.mode,
            "attempted": self.attempted,
            "sent": self.sent,
            "raised": self.raised,
            "delivered": len(self.delivered),
            "lost": self.lost,
            "lost_allowed": self.loss_allowance(),
            "phantom": self.phantom,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "strays": self.strays,
            "sender_cpu_max": round(self.max_cpu_share, 4),
            "blocked_cpu_max": round(self.max_blocked_cpu_share, 4),
            "blocked_cpu_judged": self.cpu_judged,
            "eagain_waits": self.eagain_waits,
            "direct_sends": self.direct_sends,
            "eintr_retries": self.eintr_retries,
            "signals": self.signals,
            "restarts": self.restarts_done,
            "wall_seconds": round(self.wall, 2),
            "verdict": "ok" if not self.problems() else "FAIL",
            "problems": self.problems(),
        }


# -- the driver -------------------------------------------------------------------------------


Progress = Callable[[int, int], None]


def run(config: Config, progress: Progress | None = None) -> Result:
    """Run the scenario once and return its books. Call from the main thread (for SIGALRM)."""
    qlen = max_dgram_qlen()
    total = config.senders * config.per_sender
    with tempfile.TemporaryDirectory(prefix="genudp-repro-") as tmp:
        path = os.path.join(tmp, "receiver.sock")
        receiver = Receiver(path, config, progress, total)
        receiver.start()
        signals = [0]
        started = time.monotonic()
        with _signal_storm(config.signal_hz, signals):
            children = [_spawn_sender_process(path, config, config.threads + n) for n in range(config.processes)]
            results = [SenderResult(sid, "thread") for sid in range(config.threads)]
            pids = [genudp.spawn(_sender_body, r, path, config, name=f"sender-{r.sid}") for r in results]

            def senders_done() -> bool:
                return not any(p.is_alive() for p in pids) and all(c.poll() is not None for c, _ in children)

            restarts = _restart_while_sending(receiver, config, total, senders_done)
            for pid in pids:
                if not _join(pid, config.deadline):
                    results[pids.index(pid)].failure = "did not finish before the deadline"
            for proc, sid in children:
                results.append(_collect_sender_process(proc, sid, config))
        notes = receiver.stop()
        wall = time.monotonic() - started
        me = genudp.self()
        driver_strays = [repr(m) for m in me.messages()]
    return Result(
        config=config,
        qlen=qlen,
        senders=results,
        delivered=receiver.delivered,
        receiver_strays=receiver.strays,
        restarts_done=restarts,
        wall=wall,
        signals=signals[0] + sum(s.signals for s in results),
        driver_strays=driver_strays,
        notes=notes,
    )


def _restart_while_sending(receiver: Receiver, config: Config, total: int, senders_done: Callable[[], bool]) -> int:
    done = 0
    for n in range(1, config.restarts + 1):
        # Kill at evenly spaced points of the stream, while senders are blocked on a full queue.
        # The points leave a last stretch free: datagrams sent while a receiver restarts fail
        # ("enoent"), and a loaded machine restarts slowly (300 ms here, 130 failed sends of
        # 400), so the last kill at 2/3 of the stream was sometimes never reached.
        if not receiver.wait_delivered(total * n // (config.restarts + 2), config.deadline, senders_done):
            break
        receiver.kill_and_restart()
        done += 1
    return done


@contextlib.contextmanager
def _signal_storm(hz: int, counter: list[int]) -> Iterator[None]:
    """SIGALRM at ``hz`` for the duration, with a handler that counts and returns.

    Delivery is the kernel's: a process-directed signal goes to the main thread when it can
    take it (Python runs handlers only there), else to another thread, whose wait it
    interrupts.
    """
    if hz <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        counter[0] += 1

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 1 / hz, 1 / hz)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _join(pid: genudp.Pid, timeout: float) -> bool:
    """Join in short slices, so that the main thread runs pending signal handlers meanwhile."""
    deadline = time.monotonic() + timeout
    while not pid.join(0.02):
        if time.monotonic() >= deadline:
            return False
    return True


def payload(sid: int, seq: int, size: int) -> bytes:
    head = b"%d %d " % (sid, seq)
    return head + b"." * max(0, size - len(head))


def _sender_body(result: SenderResult, path: str, config: Config) -> None:
    """One sender: send, record, back off after a raise. Runs as a genudp process."""
    with genudp.open(family="local", active=False, send_timeout=config.send_timeout) as sock:
        started, cpu = time.monotonic(), time.thread_time()
        returned, raised = result.returned, result.raised
        for seq in range(config.per_sender):
            try:
                sock.send(payload(result.sid, seq, config.payload), path)
            except Error as exc:
                raised.setdefault(exc.reason, []).append(seq)
                # The application's back-off after a failed send; longer while nobody listens.
                gone = exc.reason in ("enoent", "econnrefused")
                time.sleep(config.backoff * (10 if gone else 1))
                continue
            returned.append(seq)
        result.cpu = time.thread_time() - cpu
        result.wall = time.monotonic() - started
        info = sock.info()
    result.eagain_waits = info["eagain_waits"]
    result.direct_sends = info["direct_sends"]
    result.direct_seconds = info["direct_seconds"]
    result.wait_seconds = info["wait_seconds"]
    result.wait_cpu = info["wait_cpu_seconds"]
    result.eintr_retries = info["eintr_retries"]
    result.strays = [repr(m) for m in genudp.self().messages()]


class Receiver:
    """The slow receiver subprocess and the thread that reads its account."""

    def __init__(self, path: str, config: Config, progress: Progress | None, total: int) -> None:
        self.path = path
        self.config = config
        self.progress = progress
        self.total = total
        self.delivered: list[tuple[int, int]] = []
        self.strays = 0
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._notes: list[str] = []

    def start(self) -> None:
        cfg = self.config
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "genudp._harness.scenario",
                "receive",
                self.path,
                str(cfg.reader_pause),
                str(cfg.reader_burst),
                str(cfg.reader_active),
            ],
            env=child_env(),
            process_group=0,  # the terminal's Ctrl-C is the parent's to answer (as_child)
            stdout=subprocess.PIPE,
            # The receiver exits when this pipe closes, so it never outlives its driver.
            stdin=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if line != b"READY\n":
            raise RuntimeError(f"the receiver did not start: {line!r}")
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            self._read_lines(proc.stdout)

    def _read_lines(self, lines: Iterator[bytes]) -> None:
        for line in lines:
            if line.startswith(b"STRAYS "):
                self.strays += int(line.split()[1])
                continue
            sid, seq = line.split()
            with self._cond:
                self.delivered.append((int(sid), int(seq)))
                self._cond.notify_all()
            if self.progress is not None and len(self.delivered) % 250 == 0:
                self.progress(len(self.delivered), self.total)

    def wait_delivered(self, count: int, timeout: float, give_up: Callable[[], bool]) -> bool:
        """Wait until ``count`` datagrams were delivered; False on timeout or once ``give_up()``
        (the senders finished, so no more will come). ``give_up`` is checked every 50 ms."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.delivered) < count:
                if give_up() or time.monotonic() >= deadline:
                    return False
                self._cond.wait(0.05)
            return True

    def kill_and_restart(self) -> None:
        assert self._proc is not None and self._reader is not None
        self._proc.kill()
        self._proc.wait()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._reader.join()
        # The killed receiver could not unlink its file: a new receiver must replace it.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.start()

    def stop(self) -> list[str]:
        """Send STOP (it queues behind every datagram already accepted) and collect the end.

        STOP goes through a plain blocking socket: the harness must not depend on the code under
        test (the suite also runs with a deliberately broken ``send``)."""
        assert self._proc is not None and self._reader is not None
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
            raw.settimeout(self.config.deadline)
            try:
                raw.sendto(_STOP, self.path)
            except OSError as exc:
                self._notes.append(f"could not send STOP to the receiver: {exc}")
        try:
            self._proc.wait(self.config.deadline)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            self._notes.append("the receiver did not finish before the deadline")
        self._reader.join()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        return self._notes


def _exit_when_stdin_closes() -> None:
    # Raw reads: a daemon thread inside a buffered reader would hold its lock at shutdown.
    while os.read(0, 4096):
        pass
    os._exit(3)


def _receiver_main(path: str, pause: float, burst: int, active: int) -> int:
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    out = sys.stdout.buffer
    sock = genudp.open(path=path, active=active)
    out.write(b"READY\n")
    out.flush()
    strays = 0
    count = 0
    while True:
        message = genudp.receive()
        match message:
            case ("udp", s, _address, _port, data) if s is sock:
                if data == _STOP:
                    break
                sid, seq, _ = data.split(b" ", 2)
                out.write(sid + b" " + seq + b"\n")
                out.flush()
                count += 1
                if count % burst == 0:
                    time.sleep(pause)  # the scenario: a receiver that reads slowly
            case ("udp_passive", s) if s is sock:
                sock.setopts(active=active)
            case _:
                strays += 1
    # STOP may have been the last of an active window: the udp_passive after it is legitimate.
    for message in genudp.flush():
        if message != ("udp_passive", sock):
            strays += 1
    out.write(b"STRAYS %d\n" % strays)
    out.flush()
    sock.close()
    return 0


# -- sender processes -------------------------------------------------------------------------


def _spawn_sender_process(path: str, config: Config, sid: int) -> tuple[subprocess.Popen[bytes], int]:
    spec = json.dumps({"path": path, "sid": sid, "config": asdict(config)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "genudp._harness.scenario", "send", spec],
        env=child_env(),
        process_group=0,  # the terminal's Ctrl-C is the parent's to answer (as_child)
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    return proc, sid


def _collect_sender_process(proc: subprocess.Popen[bytes], sid: int, config: Config) -> SenderResult:
    try:
        out, _ = proc.communicate(timeout=config.deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return SenderResult(sid, "process", failure="did not finish before the deadline")
    if proc.returncode != 0:
        return SenderResult(sid, "process", failure=f"exited with status {proc.returncode}")
    data = json.loads(out)
    return SenderResult(**data)


def _sender_process_main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    config = Config(**spec["config"])
    result = SenderResult(spec["sid"], "process")
    # DESIGN.md §5's layout: the storm's handler runs on the main thread (Python runs handlers
    # only there) and the sender is another thread, so the sender's CPU is its own. (The
    # targeted storm test in tests/integration aims every signal at a waiting sender.)
    counter = [0]
    with _signal_storm(config.signal_hz, counter):
        pid = genudp.spawn(_sender_body, result, spec["path"], config, name=f"sender-{result.sid}")
        if not _join(pid, config.deadline):
            result.failure = "did not finish before the deadline"
    result.signals = counter[0]
    json.dump(asdict(result), sys.stdout)
    return 0


def main(argv: list[str]) -> int:
    as_child()
    if argv and argv[0] == "receive":
        return _receiver_main(argv[1], float(argv[2]), int(argv[3]), int(argv[4]))
    if argv and argv[0] == "send":
        return _sender_process_main(argv[1])
    print("usage: python -m genudp._harness.scenario receive PATH PAUSE BURST ACTIVE | send SPEC", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
