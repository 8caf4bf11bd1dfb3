"""``genudp send`` and ``listen`` for daily use: the real executable against real peers (``logger``,
OpenBSD ``nc``, ``socat``), and the signals, streams and mistakes operators bring.

Each listener is waited for by the first line it prints on stderr (the address it bound), never
by sleeping."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.blocking import BLOCKING_WCHANS
from tests.cli.test_tools import genudp_argv, need_socat

TIMEOUT = 60
#: A host name with only an IPv6 address (.ci/run adds it to /etc/hosts).
IP6_ONLY = "genudp-ip6-only"


def need(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing in CI: .ci/run must install Debian's {package}")
        pytest.skip(f"SKIPPED: {tool} is not installed (apt-get install {package}); CI installs it")
    return found


class Listener:
    """``genudp listen ...`` running; ``where`` is the address from its first stderr line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [*genudp_argv(), "listen", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        assert self.proc.stderr is not None and self.proc.stdout is not None
        first = self.proc.stderr.readline()
        found = re.match(r"listening on (\S+)", first)
        assert found, f"no 'listening on' line: {first!r} {self.proc.stderr.read()[-2000:]}"
        self.where = found.group(1)

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return self.proc.returncode, out, err


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        if listener.proc.poll() is None:
            listener.proc.kill()
        listener.proc.communicate(timeout=TIMEOUT)  # and its pipes closed, ended by itself or not


def listen(listeners: list[Listener], *args: str, **kwargs: object) -> Listener:
    listener = Listener(*args, **kwargs)  # type: ignore[arg-type]
    listeners.append(listener)
    return listener


def send(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*genudp_argv(), "send", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )


def test_sigterm_and_sighup_stop_listen_as_ctrl_c_does_and_it_restarts_on_the_same_path(
    tmp_path: Path, listeners: list[Listener]
) -> None:
    path = str(tmp_path / "l.sock")
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        listener = listen(listeners, path)
        assert send(path, "one").returncode == 0
        assert listener.line().endswith(": one\n")
        status, _, err = listener.stop(signum)
        assert status == 0, err
        assert "stopped after 1 datagram(s)" in err and "Traceback" not in err
        assert not os.path.exists(path), f"{signal.Signals(signum).name} left the socket file"


def test_listen_on_port_0_says_which_port_it_got_first(listeners: list[Listener]) -> None:
    listener = listen(listeners, "127.0.0.1:0")
    host, port = listener.where.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert send(listener.where, "hello").returncode == 0
    assert listener.line().endswith(": hello\n")


def test_stdin_lines_are_sent_as_they_arrive(tmp_path: Path, listeners: list[Listener]) -> None:
    path = str(tmp_path / "tail.sock")
    listener = listen(listeners, path)
    sender = subprocess.Popen([*genudp_argv(), "send", path], stdin=subprocess.PIPE, text=True)
    assert sender.stdin is not None
    sender.stdin.write("first\n")
    sender.stdin.flush()
    # The listener prints "first" while the sender's stdin is still open: sent as it arrived.
    assert listener.line().endswith(": first\n")
    sender.stdin.write("second\n")
    sender.stdin.close()
    assert sender.wait(TIMEOUT) == 0
    assert listener.line().endswith(": second\n")


def test_options_may_come_anywhere_on_the_line(tmp_path: Path, listeners: list[Listener]) -> None:
    path = str(tmp_path / "opts.sock")
    listener = listen(listeners, path, "--count", "4")
    assert send(path, "--timeout", "1", "a").returncode == 0
    assert send(path, "--repeat", "2", "b", "--timeout", "1").returncode == 0
    assert send(path, "c", "--timeout", "1").returncode == 0
    lines = [listener.line() for _ in range(4)]
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["a\n", "b\n", "b\n", "c\n"]


def test_logger_into_listen_over_a_path_and_over_udp(tmp_path: Path, listeners: list[Listener]) -> None:
    logger = need("logger", "bsdutils")
    path = str(tmp_path / "log")
    local = listen(listeners, path)
    subprocess.run(
        [logger, "-u", path, "--socket-errors=on", "-p", "user.err", "disk full"], check=True, timeout=TIMEOUT
    )
    line = local.line()
    assert "(unbound)" in line and line.rstrip().endswith("disk full") and "<11>" in line
    udp = listen(listeners, "127.0.0.1:0")
    port = udp.where.rsplit(":", 1)[1]
    subprocess.run([logger, "-d", "-n", "127.0.0.1", "-P", port, "over udp"], check=True, timeout=TIMEOUT)
    assert udp.line().rstrip().endswith("over udp")


def test_nc_into_listen_and_send_bind_into_nc(tmp_path: Path, listeners: list[Listener]) -> None:
    nc = need("nc", "netcat-openbsd")
    path = str(tmp_path / "from-nc.sock")
    listener = listen(listeners, path, "--credentials")
    client = tmp_path / "nc-client.sock"
    command = [nc, "-uU", "-w", "1", "-s", str(client), path]
    subprocess.run(command, input="from nc\n", text=True, timeout=TIMEOUT, check=True)
    line = listener.line()
    assert str(client) in line and "pid=" in line and line.rstrip().endswith("from nc\\n"), line

    # nc -luU prints what it receives; send --bind gives it a sender address to answer to.
    server_path = str(tmp_path / "nc-server.sock")
    server = subprocess.Popen([nc, "-luU", server_path], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        while not os.path.exists(server_path):
            assert server.poll() is None, "nc -luU ended"
            os.sched_yield()  # nc binds within milliseconds; nothing to read from it until then
        me = str(tmp_path / "me.sock")
        # nc answers the address a datagram came from, so the sender waits there for the reply.
        command = [*genudp_argv(), "send", server_path, "to nc", "--bind", me, "--replies", "1"]
        sender = subprocess.Popen([*command, "--reply-timeout", "30"], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdin is not None
        assert server.stdout.read(len("to nc")) == "to nc"  # nc prints it as it came: no newline
        server.stdin.write("back from nc\n")
        server.stdin.flush()
        out, _ = sender.communicate(timeout=TIMEOUT)
        assert sender.returncode == 0
        assert out.splitlines()[-1].endswith(": back from nc\\n"), out
        assert not os.path.exists(me), "--bind left its file behind"
    finally:
        server.kill()
        server.communicate(timeout=TIMEOUT)


def test_send_replies_from_socat_echo_over_a_path_and_udp(tmp_path: Path) -> None:
    socat = need_socat()
    path = str(tmp_path / "echo.sock")
    echo = subprocess.Popen([socat, f"UNIX-RECVFROM:{path},fork", "SYSTEM:tr a-z A-Z"])
    try:
        while not os.path.exists(path):
            assert echo.poll() is None, "socat ended"
            os.sched_yield()
        done = send(path, "ping", "--replies", "1", "--reply-timeout", "10")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].endswith(": PING")
    finally:
        echo.kill()
        echo.wait(TIMEOUT)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    udp = subprocess.Popen([socat, f"UDP4-RECVFROM:{port},bind=127.0.0.1,fork", "SYSTEM:tr a-z A-Z"])
    try:
        for _attempt in range(100):  # socat binds within milliseconds: until it answers
            done = send(f"127.0.0.1:{port}", "ping", "--replies", "1", "--reply-timeout", "0.2")
            if done.returncode == 0:
                break
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].endswith(": PING")
    finally:
        udp.kill()
        udp.wait(TIMEOUT)


def test_a_sender_path_that_is_not_utf8_is_printed_escaped(tmp_path: Path, listeners: list[Listener]) -> None:
    path = str(tmp_path / "strict.sock")
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict", LC_ALL="C.UTF-8")
    listener = listen(listeners, path, env=env)
    for style in ("text", "json"):
        raw = os.fsencode(tmp_path) + b"/s\xff\xfe" + style.encode() + b".sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
            tx.bind(raw)
            tx.sendto(b"odd", path)
        line = listener.line()
        assert "\\xff\\xfe" in line and line.rstrip().endswith("odd"), line
    status, _, err = listener.stop()
    assert status == 0 and "Traceback" not in err
    assert not os.path.exists(path)


def test_json_gives_null_for_an_unbound_sender_utc_time_and_text(tmp_path: Path, listeners: list[Listener]) -> None:
    path = str(tmp_path / "json.sock")
    listener = listen(listeners, path, "--format", "json")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
        tx.sendto("héllo".encode(), path)
        tx.sendto(b"\xff\x00", path)
    first, second = json.loads(listener.line()), json.loads(listener.line())
    assert first["from"] is None and first["text"] == "héllo" and first["time"].endswith("Z")
    assert "text" not in second and second["hex"] == "ff00"


def test_mistakes_are_told_in_the_command_lines_words(tmp_path: Path) -> None:
    regular = tmp_path / "notes.txt"
    regular.write_text("x")
    cases = {
        str(regular): "is a regular file, not a socket",
        str(tmp_path): "is a directory, not a socket",
        "app.sock": "for a file in this directory write ./app.sock",
        "udp://127.0.0.1:9": "without the scheme",
        "unix:./x.sock": "write the path itself",
    }
    for address, words in cases.items():
        done = send(address, "x")
        assert done.returncode != 0 and words in done.stderr, (address, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(stale)  # closed without unlinking: a stale file
    done = subprocess.run(
        [*genudp_argv(), "listen", stale], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 1 and "--unlink-stale" in done.stderr and "unlink_stale=" not in done.stderr


def test_listen_unlink_stale_replaces_a_stale_file(tmp_path: Path, listeners: list[Listener]) -> None:
    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(stale)
    listener = listen(listeners, stale, "--unlink-stale")
    assert send(stale, "fresh").returncode == 0
    assert listener.line().endswith(": fresh\n")


def test_a_blocked_send_says_it_waits_and_ends_on_sigterm_with_one_line(tmp_path: Path) -> None:
    path = str(tmp_path / "full.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx:
        rx.bind(path)  # never read: full after 11 datagrams
        sender = subprocess.Popen(
            [*genudp_argv(), "send", path, *[str(n) for n in range(20)]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert sender.stderr is not None
        # The 12th datagram waits: the sender then sleeps in the kernel (its wait channel says so).
        _wait_asleep_sending(sender)
        sender.send_signal(signal.SIGTERM)
        _, err = sender.communicate(timeout=TIMEOUT)
    assert sender.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "genudp send: stopped by SIGTERM" and "Traceback" not in err


def _wait_asleep_sending(proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the sender ended instead of blocking"
        for task in os.listdir(f"/proc/{proc.pid}/task"):
            try:
                with open(f"/proc/{proc.pid}/task/{task}/wchan") as f:
                    wchan = f.read()
            except OSError:
                continue
            if any(w in wchan for w in BLOCKING_WCHANS):
                return
        time.sleep(0.001)  # deliberate: sampling /proc until the sender sleeps in the kernel
    pytest.fail("the sender never blocked")


def test_the_guides_command_line_example_works_ten_times_in_ten(tmp_path: Path) -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "guide.md").read_text()
    block = next(b for b in re.findall(r"^```sh\n(.*?)^```", guide, re.S | re.M) if "genudp listen" in b)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for _run in range(10):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip().endswith("world"), done.stdout


def test_listen_reports_kernel_drops_as_they_happen_and_at_the_end(listeners: list[Listener]) -> None:
    listener = listen(listeners, "127.0.0.1:0", "--recbuf", "4096")
    host, port = listener.where.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
        for n in range(20_000):  # far more than a 4 KiB buffer holds while the listener prints
            flood.sendto(b"%d" % n, (host, int(port)))
    assert listener.line()  # it is receiving
    status, _, err = listener.stop()
    assert status == 0
    reported = [int(n) for n in re.findall(r"the kernel dropped (\d+) datagram", err)]
    assert reported and all(n > 0 for n in reported), err
    summary = re.search(r"; the kernel dropped (\d+)", err)
    assert summary is not None and int(summary.group(1)) == sum(reported), err


def test_doctor_check_calls_a_full_receiver_that_does_not_drain_stuck(tmp_path: Path) -> None:
    path = str(tmp_path / "stuck.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
        rx.bind(path)
        tx.setblocking(False)
        try:
            while True:
                tx.sendto(b"fill", path)
        except BlockingIOError:
            pass  # full, and nobody reads it
        done = subprocess.run(
            [*genudp_argv(), "doctor", "--check", path, "--yes"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    assert done.returncode == 1, done.stdout
    assert "did not drain" in done.stdout and "needs attention" in done.stdout
    assert "net.unix.max_dgram_qlen" not in done.stdout  # the probe alone, without --all


def test_a_host_name_that_resolves_only_over_ipv6_works(listeners: list[Listener]) -> None:
    name = IP6_ONLY
    try:
        families = {info[0] for info in socket.getaddrinfo(name, 9, type=socket.SOCK_DGRAM)}
    except OSError:
        families = set()
    if families != {socket.AF_INET6}:
        if os.environ.get("CI"):
            pytest.fail(f"{name} does not resolve to ::1 alone in CI: .ci/run adds it to /etc/hosts")
        pytest.skip(f"SKIPPED: {name} does not resolve to ::1 alone here (add '::1 {name}' to /etc/hosts)")
    listener = listen(listeners, "[::1]:0")
    port = listener.where.rsplit(":", 1)[1]
    done = send(f"{name}:{port}", "over v6")
    assert done.returncode == 0, done.stderr
    assert listener.line().rstrip().endswith("over v6")


LONG_RUNS = {"repro": ["repro", "--datagrams", "200000"], "bench": ["bench", "--only", "send"]}


@pytest.mark.parametrize("command", sorted(LONG_RUNS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_long_command_ends_on_a_signal_with_one_line_its_children_and_files_gone(
    signum: signal.Signals, command: str
) -> None:
    before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("genudp-")}
    repro = subprocess.Popen(
        [*genudp_argv(), *LONG_RUNS[command]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C at a terminal reaches the whole group: so does SIGINT here
    )
    children = _wait_children(repro.pid, 2)
    if signum == signal.SIGINT:
        os.killpg(repro.pid, signum)  # as a terminal's Ctrl-C does
    else:
        repro.send_signal(signum)
    _, err = repro.communicate(timeout=TIMEOUT)
    assert repro.returncode == 128 + signum, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(f"genudp {command}: "), err
    for child in children:
        _wait_gone(child)
    left = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("genudp-")} - before
    assert not left, f"left behind: {left}"


def _wait_children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found: list[int] = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
        if len(found) >= count:
            return found
        time.sleep(0.01)  # deliberate: sampling /proc until the command has started its children
    pytest.fail("the command never started its child processes")


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return  # ended; its parent (gone) was the one to reap it
        except FileNotFoundError:
            return
        time.sleep(0.01)  # deliberate: sampling /proc until the child has ended
    pytest.fail(f"child {pid} outlived its parent")


def test_plain_doctor_gives_advice_only_where_attention_is_needed() -> None:
    done = subprocess.run([*genudp_argv(), "doctor"], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    item = ""
    for line in done.stdout.splitlines():
        if line.startswith(("ok ", "!! ")):
            item = line
        elif line.startswith("   > "):
            assert item.startswith("!! "), f"advice under an item that is fine: {item!r}"


def test_a_send_waiting_on_a_full_receiver_says_so_on_a_terminal(tmp_path: Path) -> None:
    import pty

    path = str(tmp_path / "slow.sock")
    controller, terminal = pty.openpty()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx:
        rx.bind(path)
        sender = subprocess.Popen(
            [*genudp_argv(), "send", path, *[str(n) for n in range(12)]],
            stdout=subprocess.DEVNULL,
            stderr=terminal,
        )
        os.close(terminal)
        said = b""
        while b"is full" not in said:
            chunk = os.read(controller, 1024)  # blocks until the sender writes to its terminal
            assert chunk, "the sender closed its terminal without saying it waits"
            said += chunk
        assert rx.recv(100) == b"0"  # room for one more: the waiting send goes through
        assert sender.wait(TIMEOUT) == 0
    os.close(controller)
    assert b"waiting: " + path.encode() + b" is full" in said


def test_send_sndbuf_sets_the_buffer_and_its_limit_is_told_as_a_flag(tmp_path: Path, listeners: list[Listener]) -> None:
    path = str(tmp_path / "big.sock")
    listener = listen(listeners, path)
    big = "x" * 6000
    small = send(path, big, "--sndbuf", "4096")  # the kernel doubles it: about 8 KiB
    assert small.returncode == 0, small.stderr
    assert listener.line().rstrip().endswith(big)
    refused = send(path, "y" * 20000, "--sndbuf", "4096")
    assert refused.returncode == 1
    assert "raise it with --sndbuf" in refused.stderr and "sndbuf=" not in refused.stderr, refused.stderr
