"""``genudp doctor``, ``listen`` and ``send``: through main([...]), and as the executable against
socat (UNIX-RECVFROM / UNIX-SENDTO, UDP4-RECVFROM / UDP4-SENDTO), in both directions."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import genudp
from genudp._cli import main


def genudp_argv() -> list[str]:
    exe = shutil.which("genudp")
    return [exe] if exe else [sys.executable, "-m", "genudp"]


def need_socat() -> str:
    socat = shutil.which("socat")
    if socat is None:
        if os.environ.get("CI"):
            pytest.fail("socat is missing in CI: .ci/run must install Debian's socat")
        pytest.skip("SKIPPED: socat is not installed (apt-get install socat); CI installs it")
    return socat


def qlen() -> int:
    with open("/proc/sys/net/unix/max_dgram_qlen") as f:
        return int(f.read())


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def read_until(stream: IO[bytes], marker: bytes) -> bytes:
    """Read lines from a child's pipe until one contains ``marker`` (the child's "ready")."""
    seen = b""
    for line in stream:
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"the process ended before saying {marker!r}: {seen!r}")


@pytest.fixture
def proc_cleanup() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=30)


# -- doctor -----------------------------------------------------------------------------------


def test_doctor_reports_each_limit_and_its_exit_status_says_if_anything_needs_attention(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["doctor"])
    out = capsys.readouterr().out
    for name in (
        "net.unix.max_dgram_qlen",
        "net.core.rmem_default",
        "net.core.rmem_max",
        "net.core.wmem_default",
        "net.core.wmem_max",
        "open files",
        "IPv6",
        "abstract names",
        "SO_RXQ_OVFL",
    ):
        assert name in out
    assert f"holds {qlen() + 1} datagrams" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "\x1b[" not in out  # no colour when stdout is not a TTY
    if qlen() < 64:
        assert status == 1
        assert "sysctl -w net.unix.max_dgram_qlen=512" in out
        assert "/etc/sysctl.d/" in out
        assert "needs attention: net.unix.max_dgram_qlen" in out
    else:
        assert status == 0 and "nothing needs attention" in out


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    names = [f["name"] for f in report["findings"]]
    assert names[0] == "net.unix.max_dgram_qlen"
    assert report["findings"][0]["value"] == qlen()  # a number, its unit apart
    assert report["findings"][0]["unit"] == "datagrams"
    assert report["attention"] == (status == 1)


def test_doctor_check_counts_what_a_live_receiver_accepts(
    tmp_sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_sock_dir / "live.sock")
    with genudp.open(path=path, active=False) as r:
        main(["doctor", "--check", path, "--yes", "--json"])
        report = json.loads(capsys.readouterr().out)
        check = report["check"]
        assert (check["exists"], check["bound"], check["accepted"]) == (True, True, qlen() + 1)
        got = []
        while True:
            try:
                got.append(r.recv(timeout=0)[2])
            except genudp.Timeout:
                break
        assert got == [b"genudp-doctor probe"] * (qlen() + 1)


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        ("missing", "no such file"),
        ("stale", "nothing is bound"),
        ("udp", "nothing is bound"),
    ],
)
def test_doctor_check_reports_a_dead_receiver(
    make: str, detail: str, tmp_sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if make == "missing":
        address = str(tmp_sock_dir / "missing.sock")
    elif make == "stale":
        address = str(tmp_sock_dir / "stale.sock")
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        raw.bind(address)
        raw.close()
    else:
        address = f"127.0.0.1:{free_udp_port()}"
    assert main(["doctor", "--check", address, "--yes"]) == 1
    out = capsys.readouterr().out
    assert detail in out and "needs attention" in out


def test_doctor_check_asks_before_sending(tmp_sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # stdin is not a TTY under pytest: without --yes it refuses, naming the flag.
    assert main(["doctor", "--check", str(tmp_sock_dir / "x.sock")]) == 2
    assert "--yes" in capsys.readouterr().err


# -- send and listen through main() -----------------------------------------------------------


def test_send_arguments_then_stdin_lines(
    tmp_sock_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    path = str(tmp_sock_dir / "r.sock")
    with genudp.open(path=path, active=False) as r:
        assert main(["send", path, "hello", "two words", ""]) == 0
        assert "sent 3 datagram(s), 14 bytes" in capsys.readouterr().out
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"line one\nline two\n")))
        assert main(["send", path]) == 0
        capsys.readouterr()
        got = [r.recv(timeout=30)[2] for _ in range(5)]
    assert got == [b"hello", b"two words", b"", b"line one", b"line two"]


def test_send_repeat_and_timeout_on_a_full_receiver(tmp_sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_sock_dir / "full.sock")
    with genudp.open(path=path, active=False):
        assert main(["send", path, "x", "--repeat", str(qlen() + 5), "--timeout", "0.05"]) == 1
        captured = capsys.readouterr()
    assert "timeout" in captured.err and f"(after {qlen() + 1} sent)" in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "nonsense", "x"],
        ["send", "1.2.3.4:99999", "x"],
        ["listen", "@"],
        ["listen", "[::1]5"],
        ["doctor", "--check", "relative.sock", "--yes"],
    ],
)
def test_a_bad_address_is_one_line_listing_the_forms(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "/path, ./path, @abstract, host:port, [v6addr]:port" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["listen", "/tmp/x.sock", "--count", "0"],
        ["listen", "/tmp/x.sock", "--active", "sometimes"],
        ["send", "@x", "--repeat", "0"],
    ],
)
def test_bad_numbers_are_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", ["repro", "doctor", "listen", "send"])
def test_every_command_has_help_with_examples_in_80_columns(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert max(len(line) for line in out.splitlines()) <= 80, out


def test_send_reports_an_error_without_a_traceback(tmp_sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", str(tmp_sock_dir / "nobody.sock"), "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genudp send: enoent") and "Traceback" not in err


# -- the executable, against socat ------------------------------------------------------------


def test_genudp_send_to_socat_unix_recvfrom(tmp_sock_dir: Path, proc_cleanup: list[Any]) -> None:
    socat = need_socat()
    path = str(tmp_sock_dir / "socat.sock")
    peer = subprocess.Popen(
        [socat, "-d", "-d", "-u", f"UNIX-RECVFROM:{path}", "STDOUT"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc_cleanup.append(peer)
    assert peer.stderr is not None
    read_until(peer.stderr, b"receiving on")
    done = subprocess.run([*genudp_argv(), "send", path, "hello socat"], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out, _ = peer.communicate(timeout=30)
    assert out == b"hello socat"


def test_socat_unix_sendto_to_genudp_listen(tmp_sock_dir: Path, proc_cleanup: list[Any]) -> None:
    socat = need_socat()
    path = str(tmp_sock_dir / "listen.sock")
    listener = subprocess.Popen(
        [*genudp_argv(), "listen", path, "--count", "2", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc_cleanup.append(listener)
    assert listener.stderr is not None
    read_until(listener.stderr, b"listening on")
    for payload in (b"from socat", b"\x00\xffbinary"):
        subprocess.run([socat, "-u", "STDIN", f"UNIX-SENDTO:{path}"], input=payload, timeout=30, check=True)
    out, _ = listener.communicate(timeout=30)
    records = [json.loads(line) for line in out.splitlines()]
    assert [bytes.fromhex(r["hex"]) for r in records] == [b"from socat", b"\x00\xffbinary"]
    assert [r["length"] for r in records] == [10, 8]
    assert listener.returncode == 0
    assert not os.path.exists(path), "a clean exit must unlink the socket file"


def test_genudp_send_to_socat_udp4_recvfrom(proc_cleanup: list[Any]) -> None:
    socat = need_socat()
    port = free_udp_port()
    peer = subprocess.Popen(
        [socat, "-d", "-d", "-u", f"UDP4-RECVFROM:{port},bind=127.0.0.1", "STDOUT"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc_cleanup.append(peer)
    assert peer.stderr is not None
    read_until(peer.stderr, b"receiving on")
    done = subprocess.run(
        [*genudp_argv(), "send", f"127.0.0.1:{port}", "over udp"], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out, _ = peer.communicate(timeout=30)
    assert out == b"over udp"


def test_socat_udp4_sendto_to_genudp_listen(proc_cleanup: list[Any]) -> None:
    socat = need_socat()
    port = free_udp_port()
    listener = subprocess.Popen(
        [*genudp_argv(), "listen", f"127.0.0.1:{port}", "--count", "1", "--active", "once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc_cleanup.append(listener)
    assert listener.stderr is not None
    read_until(listener.stderr, b"listening on")
    subprocess.run([socat, "-u", "STDIN", f"UDP4-SENDTO:127.0.0.1:{port}"], input=b"udp hello", timeout=30, check=True)
    out, _ = listener.communicate(timeout=30)
    line = out.decode().strip()
    assert line.endswith("9 B: udp hello"), line
    assert " 127.0.0.1:" in line


def _run_on_a_tty(argv: list[str], env: dict[str, str]) -> str:
    """Run with stdout and stderr on a pseudo-terminal; return what it printed."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    proc.wait(timeout=60)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("no_color", [False, True])
def test_colour_only_on_a_tty_and_never_with_no_color(no_color: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = "1"
    out = _run_on_a_tty([*genudp_argv(), "doctor"], env)
    assert "net.unix.max_dgram_qlen" in out
    assert ("\x1b[" in out) is (not no_color), out[:200]


def test_send_repeat_shows_progress_on_a_tty(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "progress.sock")
    with genudp.open(path=path, active=True) as r:
        out = _run_on_a_tty([*genudp_argv(), "send", path, "tick", "--repeat", "300"], dict(os.environ))

        def mine(m: Any) -> bool:
            return bool(m[0] == "udp" and m[1] is r)

        for _ in range(300):
            genudp.receive(mine, timeout=30)
    assert "[" + "#" * 40 + "] 300/300" in out
    assert "sent 300 datagram(s)" in out
