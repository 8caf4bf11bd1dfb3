"""A syslog receiver at a path of its own, fed by util-linux's ``logger`` as ``/dev/log`` is."""

import os
import re
import subprocess
import tempfile

import genudp

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def parse(data: bytes) -> tuple[int, str, str]:
    """``<PRI>...: message`` -> (facility, severity, message)."""
    found = re.match(rb"<(\d+)>(.*)", data, re.S)
    if found is None:
        raise ValueError(f"not a syslog datagram: {data[:40]!r}")
    facility, severity = divmod(int(found.group(1)), 8)
    return facility, SEVERITIES[severity], found.group(2).decode(errors="replace").rsplit(": ", 1)[-1]


def main() -> list[tuple[int, str, str]]:
    path = os.path.join(tempfile.mkdtemp(), "log")
    lines = []
    with genudp.open(path=path, mode=0o666) as sock:
        for priority, text in (("user.notice", "backup done"), ("local3.warning", "disk 91% full")):
            subprocess.run(["logger", "--socket", path, "--socket-errors=on", "-p", priority, text], check=True)
        for _ in range(2):
            match genudp.receive(timeout=10):
                case ("udp", s, _, _, data) if s is sock:
                    lines.append(parse(data))
    os.rmdir(os.path.dirname(path))
    return lines


if __name__ == "__main__":
    print(main())
