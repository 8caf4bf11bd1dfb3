"""Endpoints on real sockets, one kind per family and address shape."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import genudp
from tests.conftest import ipv6_available

KINDS = ("inet", "inet6", "local-path", "local-abstract", "local-unbound-sender")


@dataclass
class Pair:
    """A receiver, a sender, where to send, and the source address the receiver must see."""

    receiver: genudp.Socket
    sender: genudp.Socket
    dest: Any
    source: Any
    source_port: int


Maker = Callable[..., Pair]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    if value == "inet6" and not ipv6_available():
        pytest.skip("IPv6 unavailable: ::1 cannot be bound on this machine")
    return value


@pytest.fixture
def make_pair(kind: str, tmp_sock_dir: Path) -> Iterator[Maker]:
    made: list[genudp.Socket] = []
    counter = iter(range(1_000_000))

    def make(active: genudp.Active = False, **opts: Any) -> Pair:
        family: genudp.Family
        n = next(counter)
        if kind in ("inet", "inet6"):
            family, ip = ("inet", "127.0.0.1") if kind == "inet" else ("inet6", "::1")
            r = genudp.open(family=family, ip=ip, active=active, **opts)
            s = genudp.open(family=family, ip=ip, active=False)
            pair = Pair(r, s, r.sockname(), ip, s.sockname()[1])
        elif kind == "local-abstract":
            tag = uuid.uuid4().hex[:12]
            r = genudp.open(path=f"\0genudp-r-{tag}", active=active, **opts)
            s = genudp.open(path=f"\0genudp-s-{tag}", active=False)
            pair = Pair(r, s, f"\0genudp-r-{tag}".encode(), f"\0genudp-s-{tag}".encode(), 0)
        else:
            rpath = str(tmp_sock_dir / f"r{n}.sock")
            r = genudp.open(path=rpath, active=active, **opts)
            if kind == "local-path":
                spath = str(tmp_sock_dir / f"s{n}.sock")
                s = genudp.open(path=spath, active=False)
                pair = Pair(r, s, rpath, spath, 0)
            else:
                s = genudp.open(family="local", active=False)
                pair = Pair(r, s, rpath, None, 0)
        made.extend((pair.receiver, pair.sender))
        return pair

    yield make
    for sock in made:
        sock.close()
