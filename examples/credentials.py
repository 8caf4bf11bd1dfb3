"""credentials=True: each datagram on a local socket says which process sent it, as the kernel
saw it (SO_PASSCRED): pid, uid and gid, which a control socket uses to decide whom to obey."""

import os
import subprocess
import sys
import tempfile

import genudp

CHILD = "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'reload', sys.argv[1])"


def main() -> list[tuple[bool, int, bytes]]:
    path = os.path.join(tempfile.mkdtemp(), "control.sock")
    seen = []
    with genudp.open(path=path, credentials=True):
        child = subprocess.Popen([sys.executable, "-c", CHILD, path])
        _, _, _, _, anc, data = genudp.receive(timeout=10)
        child.wait(10)
        seen.append((anc["pid"] == child.pid, anc["uid"], data))
        with genudp.open(family="local", active=False) as me:
            me.send(b"status", path)
        _, _, _, _, anc, data = genudp.receive(timeout=10)
        seen.append((anc["pid"] == os.getpid(), anc["uid"], data))
    os.rmdir(os.path.dirname(path))
    return seen


if __name__ == "__main__":
    print(main())
