"""Peer credentials (SO_PASSCRED): the kernel vouches for the sender's pid, uid and gid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import genudp

SENDER = (
    "import os, socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
    "s.sendto(str(os.getpid()).encode(), sys.argv[1])"
)


def send_from_child(path: str, **popen: Any) -> int:
    child = subprocess.Popen([sys.executable, "-c", SENDER, path], stdin=subprocess.DEVNULL, **popen)
    assert child.wait(60) == 0
    return child.pid


def test_passive_recv_returns_the_senders_credentials(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "creds.sock")
    with genudp.open(path=path, active=False, credentials=True) as r:
        pid = send_from_child(path)
        address, port, anc, data = r.recv(timeout=30)
    assert (address, port, int(data)) == (None, 0, pid)
    assert anc == {"pid": pid, "uid": os.getuid(), "gid": os.getgid()}


def test_active_messages_carry_credentials_in_otps_ancillary_position(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "creds.sock")
    with genudp.open(path=path, active=True, credentials=True) as r:
        pid = send_from_child(path)
        match genudp.receive(timeout=30):
            case ("udp", sock, None, 0, {"pid": p, "uid": uid, "gid": gid}, data) if sock is r:
                assert (p, uid, gid, int(data)) == (pid, os.getuid(), os.getgid(), pid)
            case other:
                pytest.fail(f"expected ('udp', sock, address, port, anc, data); got {other!r}")


def test_credentials_of_another_user_come_from_the_kernel(tmp_sock_dir: Path) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: this test must run there")
        pytest.skip("SKIPPED: needs root to start a sender as another user (CI runs it)")
    nobody = 65534
    os.chmod(tmp_sock_dir, 0o755)
    path = str(tmp_sock_dir / "creds.sock")
    # The child drops to nobody after it starts (the interpreter may live where nobody cannot
    # execute it); from then on, the kernel reports nobody.
    as_nobody = (
        "import os, socket, sys; "  # import first: the stdlib may not be readable by nobody
        f"os.setgroups([]); os.setgid({nobody}); os.setuid({nobody}); " + SENDER
    )
    with genudp.open(path=path, active=False, credentials=True, mode=0o666) as r:
        child = subprocess.Popen([sys.executable, "-c", as_nobody, path], stdin=subprocess.DEVNULL)
        assert child.wait(60) == 0
        pid = child.pid
        anc = r.recv(timeout=30)[2]
    assert anc == {"pid": pid, "uid": nobody, "gid": nobody}


def test_credentials_are_for_local_sockets() -> None:
    with pytest.raises(ValueError, match="credentials=True is for local sockets"):
        genudp.open(ip="127.0.0.1", credentials=True)
    with pytest.raises(TypeError, match="credentials must be True or False"):
        genudp.open(family="local", credentials="yes")  # type: ignore[arg-type]
