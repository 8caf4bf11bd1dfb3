"""``genudp doctor``: what limits datagram IPC on this machine, and a probe of a live receiver."""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import uuid
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import genudp
from genudp import Address, Error, Family

from ._term import paint, parse, usage_error, wrap

__all__ = ("add_parser", "diagnose", "probe", "run_doctor")

_EXAMPLES = """\
examples:
  genudp doctor                       what limits datagram IPC here
  genudp doctor --json                the same, for machines
  genudp doctor --check /run/app.sock probe a live receiver (asks first)
  genudp doctor --check @metrics --yes --all   the probe and the machine
exit status: 0 nothing needs attention, 1 something does, 2 usage error
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="what limits datagram IPC on this machine, and what to do",
        description="Check the limits that decide how local datagram IPC behaves here\n"
        "(this machine, this network namespace), and say what to change.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", metavar="ADDRESS", help="probe a live receiver at ADDRESS (sends datagrams)")
    p.add_argument("--yes", action="store_true", help="do not ask before sending probe datagrams")
    p.add_argument("--all", action="store_true", help="with --check: the machine's limits too")
    p.set_defaults(run=run_doctor)


@dataclass
class Finding:
    """One thing the doctor looked at."""

    name: str
    value: int | str | None  # a number where there is one (its unit apart), else a word
    meaning: str
    attention: bool = False
    advice: str = ""  # only where attention is needed
    unit: str = ""


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
        out.append(Finding("net.unix.max_dgram_qlen", None, "cannot read /proc/sys/net/unix"))
    else:
        out.append(
            Finding(
                "net.unix.max_dgram_qlen",
                qlen,
                f"a Unix-domain receiver holds {qlen + 1} datagrams; then senders block or get "
                "EAGAIN. Applies to receivers created after a change, per network namespace.",
                unit="datagrams",
                attention=qlen < 64,
                advice=_sysctl_advice("net.unix.max_dgram_qlen", 512) + "\nthen restart the receivers"
                if qlen < 64
                else "",
            )
        )
    for name, role in (
        ("net.core.rmem_default", "receive buffer a new socket gets"),
        ("net.core.rmem_max", "largest receive buffer (recbuf) a process may ask for"),
        ("net.core.wmem_default", "send buffer a new socket gets; bounds a local datagram"),
        ("net.core.wmem_max", "largest send buffer (sndbuf) a process may ask for"),
    ):
        value = _read_sysctl(name)
        meaning = role + (": UDP bursts beyond it are dropped" if name.startswith("net.core.rmem") else "")
        # Informational: the defaults serve most programs, and a program asks for more itself
        # (recbuf=, sndbuf=) up to the maximum. Advice is for what needs attention only.
        out.append(Finding(name, value, meaning, unit="bytes" if value is not None else ""))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out.append(
        Finding(
            "open files (RLIMIT_NOFILE)",
            soft,
            f"each socket is one file descriptor; a waiting local send uses one more (hard limit {hard})",
            attention=soft < 1024,
            advice="raise it: ulimit -n 65536, or LimitNOFILE= in the service unit" if soft < 1024 else "",
            unit="files",
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
    healthy: bool = False  # bound, and took the probe (or drained within it)


#: How long --check waits for a full receiver to make room before it calls it stuck.
_DRAIN_WAIT = 1.0


def probe(family: Family, address: Address, limit: int = 4096) -> Probe:
    """Probe a receiver: does its path exist, is it bound, how many datagrams fit right now.

    For a local receiver this *sends* up to ``limit`` datagrams (b"genudp-doctor probe"), which the
    receiver will see. For UDP it sends one, and reports an ICMP refusal if one comes back.
    """
    shown = genudp.format_address(family, *(address if isinstance(address, tuple) else (address, 0)))
    if family == "local":
        assert isinstance(address, (str, bytes))
        exists = None if isinstance(address, bytes) else os.path.exists(address)
        if exists is False:
            return Probe(shown, False, False, None, "no such file: nothing can be listening")
        with genudp.open(family="local", active=False) as s:
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
            if accepted == 0:
                # Full before the probe began: is anyone reading? Wait a moment for room.
                try:
                    s.send(b"genudp-doctor probe", address, timeout=_DRAIN_WAIT)
                except Error as exc:
                    detail = (
                        f"its queue is full and did not drain within {_DRAIN_WAIT:g} s ({exc.reason}): is it reading?"
                    )
                    return Probe(shown, exists, True, 0, detail)
                return Probe(shown, exists, True, 1, "its queue was full, and drained within the probe", True)
        full = accepted < limit
        detail = (
            f"accepted {accepted} datagram(s) before its queue was full"
            if full
            else f"accepted {limit} datagrams without filling up (stopped there)"
        )
        return Probe(shown, exists, True, accepted, detail, True)
    assert isinstance(address, tuple)
    with genudp.open(family=family, active=False) as s:
        s.connect(address)
        s.send(b"genudp-doctor probe")
        try:
            s.recv(timeout=0.2)
        except Error as exc:
            if exc.reason == "econnrefused":
                return Probe(shown, None, False, None, "refused (ICMP port unreachable): nothing is bound")
            if exc.reason != "timeout":
                return Probe(shown, None, False, None, f"error: {exc}")
        return Probe(shown, None, True, None, "no refusal came back; UDP cannot confirm more than that", True)


def run_doctor(args: argparse.Namespace) -> int:
    findings = diagnose() if args.check is None or args.all else []
    checked: Probe | None = None
    if args.check is not None:
        parsed = parse("doctor", args.check)
        if parsed is None:
            return 2
        if not args.yes:
            if not sys.stdin.isatty():
                return usage_error("doctor", "--check sends datagrams to the receiver; confirm with --yes")
            answer = input(
                f"--check sends probe datagrams to {args.check}; its application will see them. Go on? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                print("not checked", file=sys.stderr)
                return 2
        checked = probe(*parsed)
    attention = any(f.attention for f in findings) or (checked is not None and not checked.healthy)
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


def _print_findings(findings: list[Finding], checked: Probe | None, out: TextIO) -> None:
    for f in findings:
        mark = paint("!!", "33;1", out) if f.attention else paint("ok", "32", out)
        value = "unreadable" if f.value is None else f"{f.value} {f.unit}".strip()
        out.write(f"{mark} {f.name}: {value}\n")
        for line in wrap(f.meaning, 80, "   "):
            out.write(line + "\n")
        if f.advice and f.attention:
            for line in f.advice.splitlines():
                out.write(f"   > {line}\n")
    if checked is not None:
        mark = paint("ok", "32", out) if checked.healthy else paint("!!", "33;1", out)
        out.write(f"{mark} receiver at {checked.address}\n")
        for line in wrap(checked.detail, 80, "   "):
            out.write(line + "\n")
    needs = [f.name for f in findings if f.attention]
    if checked is not None and not checked.healthy:
        needs.append(f"receiver at {checked.address}")
    out.write("\n" + ("needs attention: " + ", ".join(needs) if needs else "nothing needs attention") + "\n")
