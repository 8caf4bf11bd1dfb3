"""A genudp peer that speaks peer.escript's line vocabulary, so that tests can run genudp in
another process, and in another network namespace (``ip netns exec NS python -m
tests.interop.agent``), and drive it exactly as they drive Erlang.

Two extensions: ``open`` takes a JSON object of further ``genudp.open`` options after its
``active`` word (e.g. ``{"port": 4000, "reuseaddr": true}``); and ``setopts <json object>``
(e.g. ``{"add_membership": ["239.1.1.1", "10.0.0.2"]}``; two-element lists become tuples)
-> OK | ERROR <reason>.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import genudp


def _hex(data: bytes) -> str:
    return data.hex() or "-"


def _unhex(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


def _address(family: str, address: Any, port: int) -> str:
    if family == "local":
        if address is None:
            return "unspec -"
        raw = address if isinstance(address, bytes) else address.encode()
        return f"local {_hex(raw)}"
    return f"inet {address} {port}"


def _active(word: str) -> genudp.Active:
    named: dict[str, genudp.Active] = {"true": True, "false": False, "once": "once"}
    return named[word] if word in named else int(word)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        items = [_tuples(v) for v in value]
        return tuple(items) if len(items) == 2 and not isinstance(items[0], (list, tuple)) else items
    return value


class Agent:
    def __init__(self) -> None:
        self.sock: genudp.Socket | None = None
        self.family = "inet"

    def _dest(self, words: list[str]) -> Any:
        if words[0] == "connected":
            return None
        if words[0] == "local":
            return _unhex(words[1])
        return (words[1], int(words[2]))

    def _outcome(self, call: Any, *args: Any) -> str:
        try:
            call(*args)
        except genudp.Error as exc:
            return f"ERROR {exc.reason}"
        return "OK"

    def _message(self, message: tuple[Any, ...]) -> str:
        if message[0] == "udp_passive":
            return "PASSIVE"
        _, _, address, port, data = message
        return f"UDP {_address(self.family, address, port)} {_hex(data)}"

    def command(self, words: list[str]) -> str:
        op = words[0]
        if op == "open":
            if self.sock is not None:
                self.sock.close()
            _, family, bind, active = words[1:5]
            # A sixth word may be a JSON object of further open() options (port, reuseaddr ...).
            extra = json.loads(" ".join(words[5:])) if len(words) > 5 and words[5].startswith("{") else {}
            self.family = family
            if family == "local":
                path = None if bind == "-" else _unhex(bind)
                if isinstance(path, bytes) and not path.startswith(b"\0"):
                    path = path.decode()  # type: ignore[assignment]
                self.sock = genudp.open(path=path, family="local", active=_active(active), send_timeout=0, **extra)
            else:
                ip = None if bind == "-" else bind
                self.sock = genudp.open(family=family, ip=ip, active=_active(active), send_timeout=0, **extra)  # type: ignore[arg-type]
            name = self.sock.sockname()
            return "OK " + (_address(family, name, 0) if family == "local" else _address(family, name[0], name[1]))
        sock = self.sock
        assert sock is not None or op in ("close", "strays"), "open first"
        if op == "send":
            assert sock is not None
            return self._outcome(sock.send, _unhex(words[-1]), self._dest(words[1:-1]))
        if op == "connect":
            assert sock is not None
            return self._outcome(sock.connect, self._dest(words[1:]))
        if op == "recv":
            assert sock is not None
            try:
                address, port, data = sock.recv(int(words[1]) / 1000)
            except genudp.Error as exc:
                return f"ERROR {exc.reason}"
            return f"UDP {_address(self.family, address, port)} {_hex(data)}"
        if op == "take":
            try:
                return self._message(genudp.receive(timeout=int(words[1]) / 1000))
            except genudp.Timeout:
                return "TIMEOUT"
        if op == "setopts":
            assert sock is not None
            if words[1] == "active":
                return self._outcome(lambda: sock.setopts(active=_active(words[2])))
            opts = {name: _tuples(value) for name, value in json.loads(" ".join(words[1:])).items()}
            return self._outcome(lambda: sock.setopts(**opts))
        if op == "getopts":
            assert sock is not None
            return f"ACTIVE {str(sock.getopts('active')['active']).lower()}"
        if op == "strays":
            mailbox = genudp.self().messages()
            return f"STRAYS {len(mailbox)} {mailbox[:3]!r}"
        if op == "close":
            if sock is not None:
                sock.close()
            self.sock = None
            return "OK"
        return f"CRASH unknown command {words!r}"


def main() -> int:
    agent = Agent()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words == ["quit"]:
            break
        try:
            reply = agent.command(words)
        except Exception as exc:  # reported to the driving test, which fails on it
            reply = f"CRASH {type(exc).__name__}: {exc}"
        print(reply, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
