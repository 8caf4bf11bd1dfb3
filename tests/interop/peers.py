"""Two peers that speak one small vocabulary: genudp, and Erlang/OTP's gen_udp (an escript).

Behavioural tests take a peer and run the same steps against either, so where genudp and OTP
agree the same assertion covers both, and where they differ the test names the difference.

Addresses are tuples: ``("local", path_bytes)`` (``b""`` for an unbound sender) or
``("inet", ip, port)``. Outcomes are ``"OK"`` or ``"ERROR <reason>"``; messages are
``("udp", address, data)``, ``("udp_passive",)`` or ``("timeout",)``.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import genudp

ESCRIPT = Path(__file__).with_name("peer.escript")
Address = tuple[Any, ...]
Message = tuple[Any, ...]


def require_escript() -> str:
    """The escript executable, or a loud skip (a failure in CI, which must install erlang-nox)."""
    exe = shutil.which("escript")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("escript is missing in CI: .ci/run must install Debian's erlang-nox")
        pytest.skip("SKIPPED: Erlang/OTP is not installed (apt-get install erlang-nox); CI installs it")
    return exe


def _hex(data: bytes) -> str:
    return data.hex() or "-"


def _unhex(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


def _parse_address(words: list[str]) -> tuple[Address, list[str]]:
    if words[0] in ("local", "unspec"):
        return (words[0], _unhex(words[1])), words[2:]
    return ("inet", words[1], int(words[2])), words[3:]


def _dest_words(dest: Address | None) -> str:
    if dest is None:
        return "connected"
    if dest[0] == "local":
        return f"local {_hex(dest[1])}"
    return f"inet {dest[1]} {dest[2]}"


class Peer:
    """The common vocabulary; subclasses say how a command is carried out."""

    name = "peer"

    def open(
        self, family: str, bind: str | bytes | None = None, active: genudp.Active = False, buffer: int | None = 65536
    ) -> Address:
        """Open the peer's one socket; ``bind`` is a path/abstract name (local) or an IP."""
        raise NotImplementedError

    def send(self, data: bytes, dest: Address | None = None) -> str:
        raise NotImplementedError

    def connect(self, dest: Address) -> str:
        raise NotImplementedError

    def recv(self, timeout_ms: int = 10_000) -> Message | str:
        raise NotImplementedError

    def take(self, timeout_ms: int = 10_000) -> Message:
        raise NotImplementedError

    def set_active(self, active: genudp.Active) -> str:
        raise NotImplementedError

    def get_active(self) -> genudp.Active:
        raise NotImplementedError

    def strays(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class LinePeer(Peer):
    """A peer in another process that speaks ``peer.escript``'s line vocabulary."""

    backend = "inet"

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        self._proc = subprocess.Popen(
            argv,
            cwd=Path(__file__).parents[2],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._selector = selectors.DefaultSelector()
        assert self._proc.stdout is not None
        self._selector.register(self._proc.stdout, selectors.EVENT_READ)
        self.pending = False

    def request(self, line: str) -> None:
        """Send a command without waiting for its reply (see :meth:`reply`)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        self.pending = True

    def ready(self, timeout: float) -> bool:
        """Whether a reply line can be read within ``timeout`` seconds."""
        return bool(self._selector.select(timeout))

    def reply(self, timeout: float = 30.0, crash_ok: bool = False) -> str:
        assert self._proc.stdout is not None
        if not self.ready(timeout):
            raise AssertionError(f"{self.name}: no reply within {timeout} s")
        line = self._proc.stdout.readline()
        if not line:
            assert self._proc.stderr is not None
            raise AssertionError(f"{self.name} exited: {self._proc.stderr.read()}")
        self.pending = False
        text = line.rstrip("\n")
        assert crash_ok or not text.startswith("CRASH"), f"{self.name}: {text}"
        return text

    def cmd(self, line: str, timeout: float = 30.0, crash_ok: bool = False) -> str:
        self.request(line)
        return self.reply(timeout, crash_ok)

    def open(
        self, family: str, bind: str | bytes | None = None, active: genudp.Active = False, buffer: int | None = 65536
    ) -> Address:
        """``buffer`` is OTP's user-level buffer: OTP silently truncates a longer datagram to it,
        and its defaults are small (see test_behaviour). ``None`` keeps OTP's default."""
        if bind is None:
            where = "-"
        elif family == "local":
            where = _hex(bind.encode() if isinstance(bind, str) else bind)
        else:
            assert isinstance(bind, str)
            where = bind
        size = "default" if buffer is None else str(buffer)
        reply = self.cmd(f"open {self.backend} {family} {where} {str(active).lower()} {size}")
        words = reply.split()
        assert words[0] == "OK", reply
        if words[1] == "unnamed":
            return ("local", b"")
        return _parse_address(words[1:])[0]

    def send(self, data: bytes, dest: Address | None = None) -> str:
        return self.cmd(f"send {_dest_words(dest)} {_hex(data)}")

    def start_send(self, data: bytes, dest: Address | None = None) -> None:
        """Start a send that may block; :meth:`ready` and :meth:`reply` tell its outcome."""
        self.request(f"send {_dest_words(dest)} {_hex(data)}")

    def connect(self, dest: Address) -> str:
        # OTP 25's socket backend exits with badarg on a local connect: "CRASH ...".
        return self.cmd(f"connect {_dest_words(dest)}", crash_ok=True)

    def recv(self, timeout_ms: int = 10_000) -> Message | str:
        # OTP 25's inet backend crashes here on local sockets (erlang/otp#7605): "CRASH ...".
        return self._message(self.cmd(f"recv {timeout_ms}", timeout_ms / 1000 + 30, crash_ok=True))

    def take(self, timeout_ms: int = 10_000) -> Message:
        result = self._message(self.cmd(f"take {timeout_ms}", timeout_ms / 1000 + 30))
        assert not isinstance(result, str), result
        return result

    @staticmethod
    def _message(reply: str) -> Message | str:
        words = reply.split()
        if words[0] == "UDP":
            address, rest = _parse_address(words[1:])
            return ("udp", address, _unhex(rest[0]))
        if words[0] == "PASSIVE":
            return ("udp_passive",)
        if words[0] == "TIMEOUT":
            return ("timeout",)
        if words[0] in ("ERROR", "CRASH"):
            return reply
        raise AssertionError(f"unexpected reply {reply!r}")

    def set_active(self, active: genudp.Active) -> str:
        return self.cmd(f"setopts active {str(active).lower()}")

    def setopts(self, **opts: Any) -> str:
        """genudp agents only: any option, as JSON."""
        return self.cmd(f"setopts {json.dumps(opts)}")

    def get_active(self) -> genudp.Active:
        value = self.cmd("getopts active").split()[1]
        named: dict[str, genudp.Active] = {"true": True, "false": False, "once": "once"}
        return named[value] if value in named else int(value)

    def strays(self) -> int:
        return int(self.cmd("strays").split()[1])

    def close(self) -> None:
        """Close the socket; the escript stays up for the next test."""
        if self._proc.poll() is None:
            assert self.cmd("close") == "OK"

    def stop(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write("quit\n")
                self._proc.stdin.close()
            except BrokenPipeError:  # pragma: no cover - it had died already
                pass
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a send still blocked
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()
        self._selector.close()


class ErlangPeer(LinePeer):
    """An escript running ``peer.escript``; ``backend`` is OTP's inet_backend (inet or socket)."""

    def __init__(self, backend: str = "inet", netns: str | None = None) -> None:
        argv = [require_escript(), str(ESCRIPT)]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        super().__init__(argv, f"otp-{backend}")
        self.backend = backend

    def join(self, group: str, interface: str) -> str:
        """``{add_membership, {Group, Interface}}``."""
        return self.cmd(f"multicast {interface} {group}")

    def allow_broadcast(self) -> str:
        return self.cmd("broadcast")


class AgentPeer(LinePeer):
    """genudp in a process of its own (``tests/interop/agent.py``), optionally run in a
    network namespace with ``ip netns exec``."""

    def __init__(self, netns: str | None = None, name: str = "agent") -> None:
        argv = [sys.executable, "-m", "tests.interop.agent"]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        super().__init__(argv, name)

    def open_with(self, family: str, bind: str, active: genudp.Active = False, **opts: Any) -> Address:
        """Open with further ``genudp.open`` options (port, reuseaddr ...)."""
        reply = self.cmd(f"open genudp {family} {bind} {str(active).lower()} {json.dumps(opts)}")
        words = reply.split()
        assert words[0] == "OK", reply
        return _parse_address(words[1:])[0]


def _genudp_address(address: Any, port: int, family: str) -> Address:
    if family == "local":
        if address is None:
            return ("local", b"")
        return ("local", address if isinstance(address, bytes) else address.encode())
    return ("inet", address, port)


class GenudpPeer(Peer):
    """genudp in the calling thread (a genudp process)."""

    name = "genudp"

    def __init__(self) -> None:
        self.sock: genudp.Socket | None = None
        self.family = "local"

    def _sock(self) -> genudp.Socket:
        assert self.sock is not None, "open first"
        return self.sock

    @staticmethod
    def _dest(dest: Address | None) -> Any:
        if dest is None:
            return None
        if dest[0] == "local":
            return dest[1]
        return (dest[1], dest[2])

    def open(
        self, family: str, bind: str | bytes | None = None, active: genudp.Active = False, buffer: int | None = 65536
    ) -> Address:
        # ``buffer`` is OTP's; genudp has no user-level buffer to size and never truncates.
        self.family = family
        if family == "local":
            self.sock = genudp.open(family="local", path=bind, active=active, send_timeout=0)
        else:
            assert bind is None or isinstance(bind, str)
            self.sock = genudp.open(family=family, ip=bind, active=active, send_timeout=0)  # type: ignore[arg-type]
        name = self.sock.sockname()
        if family == "local":
            return _genudp_address(name, 0, family)
        return ("inet", name[0], name[1])

    @staticmethod
    def _outcome(call: Any, *args: Any) -> str:
        try:
            call(*args)
        except genudp.Error as exc:
            return f"ERROR {exc.reason}"
        return "OK"

    def send(self, data: bytes, dest: Address | None = None) -> str:
        return self._outcome(self._sock().send, data, self._dest(dest))

    def connect(self, dest: Address) -> str:
        return self._outcome(self._sock().connect, self._dest(dest))

    def recv(self, timeout_ms: int = 10_000) -> Message | str:
        try:
            address, port, data = self._sock().recv(timeout_ms / 1000)
        except genudp.Timeout:
            return "ERROR timeout"
        except genudp.Error as exc:
            return f"ERROR {exc.reason}"
        return ("udp", _genudp_address(address, port, self.family), data)

    def take(self, timeout_ms: int = 10_000) -> Message:
        sock = self._sock()
        try:
            message = genudp.receive(lambda m: m[1] is sock, timeout=timeout_ms / 1000)
        except genudp.Timeout:
            return ("timeout",)
        if message[0] == "udp_passive":
            return ("udp_passive",)
        _, _, address, port, data = message
        return ("udp", _genudp_address(address, port, self.family), data)

    def set_active(self, active: genudp.Active) -> str:
        return self._outcome(lambda: self._sock().setopts(active=active))

    def get_active(self) -> genudp.Active:
        value: genudp.Active = self._sock().getopts("active")["active"]
        return value

    def strays(self) -> int:
        return len(genudp.self().messages())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
