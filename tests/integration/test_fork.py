"""After ``os.fork()`` the child owns no process, socket or hub of the parent's: its exit closes
and unlinks nothing of the parent's, it reads nothing from the parent's sockets, and genudp works
anew in it. Each case runs a small program of its own (a fork inside the test process would run
pytest's own exit in the child)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PRELUDE = """
import os, socket, sys, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() of a multi-threaded process
import genudp
path = sys.argv[1]
"""


def run(program: str, tmp: Path) -> str:
    script = tmp / "prog.py"
    script.write_text(PRELUDE + textwrap.dedent(program))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp / "parent.sock")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_child_that_exits_normally_unlinks_and_closes_nothing_of_the_parents(tmp_sock_dir: Path) -> None:
    out = run(
        """
        sock = genudp.open(path=path, active=False)
        child = os.fork()
        if child == 0:
            sys.exit(0)  # a normal exit: atexit handlers and finalizers run
        _, status = os.waitpid(child, 0)
        assert status == 0, status
        assert os.path.exists(path), "the child's exit unlinked the parent's socket file"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"still here", path)
        print(sock.recv(timeout=30)[2])
        sock.close()
        assert not os.path.exists(path)
        """,
        tmp_sock_dir,
    )
    assert out.strip() == "b'still here'"


def test_a_child_reads_nothing_from_the_parents_sockets(tmp_sock_dir: Path) -> None:
    out = run(
        """
        sock = genudp.open(path=path, active=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
            for n in range(3):
                raw.sendto(b"%d" % n, path)
            # The hub has them, or the kernel queue does: wait until all three are in the mailbox.
            deadline = time.monotonic() + 30
            while len(genudp.self().messages()) < 3 and time.monotonic() < deadline:
                time.sleep(0.001)  # deliberate: sampling the mailbox, which has no event to wait on
            raw.sendto(b"3", path)  # and one still in the kernel queue at the fork
            child = os.fork()
            if child == 0:
                try:
                    assert genudp.self().messages() == [], "the child saw the parent's mailbox"
                    genudp.receive(timeout=0.3)
                except genudp.Timeout:
                    os._exit(0)
                except BaseException as exc:
                    print(f"child: {exc!r}", flush=True)
                    os._exit(1)
                os._exit(2)  # it got a message of the parent's
            _, status = os.waitpid(child, 0)
            assert status == 0, status
        got = [genudp.receive(timeout=30).data for _ in range(4)]
        print(got)
        sock.close()
        """,
        tmp_sock_dir,
    )
    assert out.strip() == "[b'0', b'1', b'2', b'3']"


def test_genudp_works_anew_in_a_child(tmp_sock_dir: Path) -> None:
    out = run(
        """
        sock = genudp.open(path=path, active=True)  # the parent's hub is running
        child = os.fork()
        if child == 0:
            try:
                mine = genudp.open(path=path + ".child", active=True)  # a hub of the child's own
                mine.send(b"from the child", path)
                reply = genudp.receive(lambda m: m[0] == "udp" and m[1] is mine, timeout=30)
                assert reply.data == b"reply", reply
                mine.close()
                os._exit(0)
            except BaseException as exc:
                print(f"child: {exc!r}", flush=True)
                os._exit(1)
        message = genudp.receive(timeout=30)
        sock.send(b"reply", message.address)
        _, status = os.waitpid(child, 0)
        assert status == 0, status
        print(message.data, message.address == path + ".child")
        sock.close()
        """,
        tmp_sock_dir,
    )
    assert out.strip() == "b'from the child' True"
