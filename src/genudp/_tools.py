"""``genudp doctor``, ``genudp listen``, ``genudp send``: the operator's tools.

Each command is a function ``run_*(args) -> int`` over the public API. Output fits 80 columns;
colour only on a TTY and never with ``NO_COLOR``. A user error (a bad address, a bad number) is
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from . import _process, _socket
from ._address import ADDRESS_FORMS, Address, Family, format_address, parse_address
from ._errors import Error
from ._options import check_active

__all__ = ("add_parsers",)

_DOCTOR_EXAMPLES = """\
examples:
  genudp doctor                       what limits datagram IPC here
  genudp doctor --json                the same, for machines
  genudp doctor --check /run/app.sock probe a live receiver (asks first)
  genudp doctor --check @metrics --yes
exit status: 0 nothing needs attention, 1 something does, 2 usage error
"""

_LISTEN_EXAMPLES = """\
examples:
  genudp listen /tmp/app.sock                 print datagrams until Ctrl-C
  genudp listen @metrics --count 10           an abstract name, 10 datagrams
  genudp listen 127.0.0.1:5140 --format json  UDP, one JSON object a line
  genudp listen [::1]:5140 --active once --format hex
"""

_SEND_EXAMPLES = """\
examples:
  genudp send /tmp/app.sock hello world       two datagrams: "hello", "world"
  printf 'a\\nb\\n' | genudp send @metrics      one datagram per line of stdin
  genudp send 127.0.0.1:5140 ping --repeat 1000 --timeout 0.5
"""


def add_parsers(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "doctor",
        help="what limits datagram IPC on this machine, and what to do",
        description="Check the limits that decide how local datagram IPC behaves here\n"
        "(this machine, this network namespace), and say what to change.",
        epilog=_DOCTOR_EXAMPLES,
        formatter_class=fmt,
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", metavar="ADDRESS", help="probe a live receiver at ADDRESS (sends datagrams)")
    p.add_argument("--yes", action="store_true", help="do not ask before sending probe datagrams")
    p.set_defaults(run=run_doctor)

    p = sub.add_parser(
        "listen",
        help="bind ADDRESS and print each datagram",
        description=f"Bind ADDRESS and print each datagram with time, sender and length,\n"
        f"until Ctrl-C or --count datagrams; a clean exit unlinks the socket file.\n"
        f"ADDRESS: {ADDRESS_FORMS}.",
        epilog=_LISTEN_EXAMPLES,
        formatter_class=fmt,
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("--count", type=int, metavar="N", help="exit after N datagrams")
    p.add_argument("--active", default="true", metavar="MODE", help="once, true (default) or a count N")
    p.add_argument("--format", choices=("text", "hex", "json"), default="text", help="output format")
    p.set_defaults(run=run_listen)

    p = sub.add_parser(
        "send",
        help="send each MESSAGE (or each stdin line) as a datagram",
        description=f"Send each MESSAGE as one datagram, or each line of stdin when none is\n"
        f"given; a full receiver makes it wait (see --timeout).\n"
        f"ADDRESS: {ADDRESS_FORMS}.",
        epilog=_SEND_EXAMPLES,
        formatter_class=fmt,
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument("messages", nargs="*", metavar="MESSAGE")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="give up on a full receiver after SECONDS")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="send everything N times")
    p.set_defaults(run=run_send)


# -- output helpers ---------------------------------------------------------------------------


def _colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _paint(text: str, code: str, stream: TextIO) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if _colour(stream) else text


def _usage_error(command: str, message: str) -> int:
    print(f"genudp {command}: {message}", file=sys.stderr)
    return 2


def _parse(command: str, text: str) -> tuple[Family, Address] | None:
    try:
        return parse_address(text)
    except ValueError as exc:
        print(f"genudp {command}: {exc}", file=sys.stderr)
        return None


# -- doctor -----------------------------------------------------------------------------------


@dataclass
class Finding:
    """One thing the doctor looked at."""

    name: str
    value: str
    meaning: str
    attention: bool = False
    advice: str = ""


def _read_sysctl(name: str) -> int | None:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _sysctl_advice(name: str, value: int) -> str:
    return f"sysctl -w {name}={value}\nto keep it, put in /etc/sysctl.d/60-datagram-ipc.conf:\n  {name} = {value}"


def diagnose() -> list[Finding]:
    """What limits datagram IPC here; each with its value, meaning and advice."""
    out: list[Finding] = []
    qlen = _read_sysctl("net.unix.max_dgram_qlen")
    if qlen is None:
        out.append(Finding("net.unix.max_dgram_qlen", "unreadable", "cannot read /proc/sys/net/unix"))
    else:
        out.append(
            Finding(
                "net.unix.max_dgram_qlen",
                str(qlen),
                f"a Unix-domain receiver holds {qlen + 1} datagrams; then senders block or get "
                "EAGAIN. Applies to receivers created after a change, per network namespace.",
                attention=qlen < 64,
                advice=_sysctl_advice("net.unix.max_dgram_qlen", 512) + "\nthen restart the receivers"
                if qlen < 64
                else "",
            )
        )
    for name, role, suggested in (
        ("net.core.rmem_default", "receive buffer a new socket gets", 1 << 20),
        ("net.core.rmem_max", "largest receive buffer (recbuf) a process may ask for", 8 << 20),
        ("net.core.wmem_default", "send buffer a new socket gets; bounds a local datagram", 1 << 20),
        ("net.core.wmem_max", "largest send buffer (sndbuf) a process may ask for", 8 << 20),
    ):
        value = _read_sysctl(name)
        meaning = role + (": UDP bursts beyond it are dropped" if name.startswith("net.core.rmem") else "")
        change = value is None or value < suggested
        out.append(
            Finding(
                name,
                "unreadable" if value is None else f"{value} bytes",
                meaning,
                attention=False,
                advice=_sysctl_advice(name, suggested) if change else f"fine; to change it: sysctl -w {name}=N",
            )
        )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out.append(
        Finding(
            "open files (RLIMIT_NOFILE)",
            f"{soft} (hard {hard})",
            "each socket is one file descriptor; a waiting local send uses one more",
            attention=soft < 1024,
            advice="raise it: ulimit -n 65536, or LimitNOFILE= in the service unit" if soft < 1024 else "",
        )
    )
    out.append(_probe_ipv6())
    out.append(_probe_abstract())
    out.append(_probe_rxq_ovfl())
    return out


def _probe_ipv6() -> Finding:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return Finding("IPv6", "available", "UDP over ::1 works")
    except OSError as exc:
        return Finding("IPv6", "unavailable", f"cannot bind ::1 ({exc.strerror}); inet6 sockets will fail")


def _probe_abstract() -> Finding:
    name = f"\0genudp-doctor-{uuid.uuid4().hex[:8]}"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind(name)
        return Finding(
            "abstract names",
            "available",
            "'@name' addresses work in this network namespace; they have no file permissions",
        )
    except OSError as exc:
        return Finding("abstract names", "unavailable", f"cannot bind an abstract name ({exc.strerror})")


def _probe_rxq_ovfl() -> Finding:
    option = getattr(socket, "SO_RXQ_OVFL", 40)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, option, 1)
        return Finding("SO_RXQ_OVFL", "supported", "the kernel can count UDP datagrams it dropped")
    except OSError as exc:
        return Finding("SO_RXQ_OVFL", "unsupported", f"kernel drop counts unavailable ({exc.strerror})")


@dataclass
class Probe:
    """What ``--check`` found at a live address."""

    address: str
    exists: bool | None
    bound: bool
    accepted: int | None
    detail: str


def probe(family: Family, address: Address, limit: int = 4096) -> Probe:
    """Probe a receiver: does its path exist, is it bound, how many datagrams fit right now.

    For a local receiver this *sends* up to ``limit`` datagrams (b"genudp-doctor probe"), which the
    receiver will see. For UDP it sends one, and reports an ICMP refusal if one comes back.
    """
    shown = format_address(family, *(address if isinstance(address, tuple) else (address, 0)))
    if family == "local":
        assert isinstance(address, (str, bytes))
        exists = None if isinstance(address, bytes) else os.path.exists(address)
        if exists is False:
            return Probe(shown, False, False, None, "no such file: nothing can be listening")
        with _socket.open(family="local", active=False) as s:
            accepted = 0
            while accepted < limit:
                try:
                    s.send(b"genudp-doctor probe", address, timeout=0)
                except Error as exc:
                    if exc.reason == "eagain":
                        break
                    if exc.reason in ("econnrefused", "enoent"):
                        return Probe(shown, exists, False, None, f"nothing is bound there ({exc.reason})")
                    return Probe(shown, exists, accepted > 0, accepted, f"send failed: {exc}")
                accepted += 1
        full = accepted < limit
        detail = (
            f"accepted {accepted} datagram(s) before its queue was full"
            if full
            else f"accepted {limit} datagrams without filling up (stopped there)"
        )
        return Probe(shown, exists, True, accepted, detail)
    assert isinstance(address, tuple)
    with _socket.open(family=family, active=False) as s:
        s.connect(address)
        s.send(b"genudp-doctor probe")
        try:
            s.recv(timeout=0.2)
        except Error as exc:
            if exc.reason == "econnrefused":
                return Probe(shown, None, False, None, "refused (ICMP port unreachable): nothing is bound")
            if exc.reason != "timeout":
                return Probe(shown, None, False, None, f"error: {exc}")
        return Probe(shown, None, True, None, "no refusal came back; UDP cannot confirm more than that")


def run_doctor(args: argparse.Namespace) -> int:
    findings = diagnose()
    checked: Probe | None = None
    if args.check is not None:
        parsed = _parse("doctor", args.check)
        if parsed is None:
            return 2
        if not args.yes:
            if not sys.stdin.isatty():
                return _usage_error("doctor", "--check sends datagrams to the receiver; confirm with --yes")
            answer = input(
                f"--check sends probe datagrams to {args.check}; its application will see them. Go on? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                print("not checked", file=sys.stderr)
                return 2
        checked = probe(*parsed)
    attention = any(f.attention for f in findings) or (checked is not None and not checked.bound)
    if args.json:
        json.dump(
            {
                "findings": [asdict(f) for f in findings],
                "check": asdict(checked) if checked else None,
                "attention": attention,
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        _print_findings(findings, checked, sys.stdout)
    return 1 if attention else 0


def _wrap(text: str, width: int, indent: str) -> Iterator[str]:
    import textwrap

    for paragraph in text.splitlines():
        yield from textwrap.wrap(paragraph, width, initial_indent=indent, subsequent_indent=indent) or [indent]


def _print_findings(findings: list[Finding], checked: Probe | None, out: TextIO) -> None:
    for f in findings:
        mark = _paint("!!", "33;1", out) if f.attention else _paint("ok", "32", out)
        out.write(f"{mark} {f.name}: {f.value}\n")
        for line in _wrap(f.meaning, 80, "   "):
            out.write(line + "\n")
        if f.advice:
            for line in f.advice.splitlines():
                out.write(f"   > {line}\n")
    if checked is not None:
        mark = _paint("ok", "32", out) if checked.bound else _paint("!!", "33;1", out)
        out.write(f"{mark} receiver at {checked.address}\n")
        for line in _wrap(checked.detail, 80, "   "):
            out.write(line + "\n")
    needs = [f.name for f in findings if f.attention]
    if checked is not None and not checked.bound:
        needs.append(f"receiver at {checked.address}")
    out.write("\n" + ("needs attention: " + ", ".join(needs) if needs else "nothing needs attention") + "\n")


# -- listen -----------------------------------------------------------------------------------


def run_listen(args: argparse.Namespace) -> int:
    parsed = _parse("listen", args.address)
    if parsed is None:
        return 2
    family, address = parsed
    try:
        active = _active_mode(args.active)
    except (TypeError, ValueError) as exc:
        return _usage_error("listen", f"--active: {exc}")
    if args.count is not None and args.count < 1:
        return _usage_error("listen", "--count must be at least 1")
    try:
        if family == "local":
            sock = _socket.open(path=address, active=active)  # type: ignore[arg-type]
        else:
            assert isinstance(address, tuple)
            sock = _socket.open(address[1], family=family, ip=address[0], active=active)
    except Error as exc:
        print(f"genudp listen: cannot bind {args.address}: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout
    print(f"listening on {args.address} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen = 0
    try:
        with sock:
            while args.count is None or seen < args.count:
                message = _process.receive()
                match message:
                    case ("udp", s, sender, port, data) if s is sock:
                        seen += 1
                        out.write(_format_datagram(args.format, family, sender, port, data) + "\n")
                        out.flush()
                        if active == "once":
                            sock.setopts(active="once")
                    case ("udp_passive", s) if s is sock:
                        assert type(active) is int
                        sock.setopts(active=active)
                    case _:
                        pass
    except KeyboardInterrupt:
        print(f"\nstopped after {seen} datagram(s)", file=sys.stderr)
    return 0


def _active_mode(text: str) -> Any:
    if text in ("true", "True"):
        return True
    if text == "once":
        return "once"
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"expected once, true or a count N; got {text!r}") from None
    if n < 1:
        raise ValueError(f"a count must be at least 1; got {n}")
    return check_active(n)


def _format_datagram(style: str, family: Family, sender: Any, port: int, data: bytes) -> str:
    now = datetime.datetime.now()
    who = format_address(family, sender, port)
    if style == "json":
        return json.dumps(
            {"time": now.isoformat(timespec="microseconds"), "from": who, "length": len(data), "hex": data.hex()}
        )
    head = f"{now:%H:%M:%S.%f} {who} {len(data)} B"
    if style == "hex":
        lines = [head]
        for offset in range(0, len(data), 16):
            chunk = data[offset : offset + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"  {offset:04x}  {chunk.hex(' '):<47}  {text}")
        return "\n".join(lines)
    body = data.decode("utf-8", "backslashreplace")
    printable = "".join(c if c.isprintable() else repr(c)[1:-1] for c in body)
    return f"{head}: {printable}"


# -- send -------------------------------------------------------------------------------------


def run_send(args: argparse.Namespace) -> int:
    parsed = _parse("send", args.address)
    if parsed is None:
        return 2
    family, address = parsed
    if args.repeat < 1:
        return _usage_error("send", "--repeat must be at least 1")
    if args.timeout is not None and args.timeout < 0:
        return _usage_error("send", "--timeout must be 0 or more")
    messages = [m.encode() for m in args.messages] if args.messages else None
    if messages is None:
        messages = [line.rstrip(b"\n") for line in sys.stdin.buffer]
    total = len(messages) * args.repeat
    tty = sys.stderr.isatty()
    sent = size = 0
    with _socket.open(family=family, active=False, send_timeout=args.timeout) as sock:
        for _ in range(args.repeat):
            for data in messages:
                try:
                    sock.send(data, address)
                except Error as exc:
                    if tty:
                        sys.stderr.write("\r\x1b[K")
                    print(f"genudp send: {exc} (after {sent} sent)", file=sys.stderr)
                    return 1
                sent += 1
                size += len(data)
                if tty and total > 1 and (sent % 100 == 0 or sent == total):
                    _progress_bar(sent, total)
    if tty and total > 1:
        sys.stderr.write("\r\x1b[K")
    print(f"sent {sent} datagram(s), {size} bytes, to {args.address}")
    return 0


def _progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
