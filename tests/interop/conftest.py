"""Peers for the interop tests: genudp in the test's thread, and long-lived escripts (one per
OTP backend, reused across tests: an escript takes ~0.6 s to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.peers import ErlangPeer, GenudpPeer, Peer, require_escript

BACKENDS = ("inet", "socket")


@pytest.fixture(scope="session")
def erlang_pool() -> Iterator[dict[str, ErlangPeer]]:
    pool: dict[str, ErlangPeer] = {}
    yield pool
    for peer in pool.values():
        peer.stop()


def _erlang(pool: dict[str, ErlangPeer], backend: str) -> ErlangPeer:
    require_escript()
    peer = pool.get(backend)
    if peer is None or peer.pending:
        # A test that left a command unanswered (a send still blocked) cannot hand it on.
        if peer is not None:
            peer.stop()
        peer = pool[backend] = ErlangPeer(backend)
    return peer


@pytest.fixture(params=BACKENDS)
def erlang(request: pytest.FixtureRequest, erlang_pool: dict[str, ErlangPeer]) -> Iterator[ErlangPeer]:
    """An Erlang/OTP gen_udp peer, for each inet_backend."""
    peer = _erlang(erlang_pool, request.param)
    yield peer
    if not peer.pending:
        strays = peer.strays()
        peer.close()
        assert strays == 0, f"{peer.name} was left {strays} message(s) it never asked for"


@pytest.fixture(params=("genudp", "otp-inet", "otp-socket"))
def peer(request: pytest.FixtureRequest, erlang_pool: dict[str, ErlangPeer]) -> Iterator[Peer]:
    """The side under test in a behavioural case: genudp, or OTP 25's gen_udp (either backend)."""
    if request.param == "genudp":
        mine = GenudpPeer()
        yield mine
        mine.close()
        return
    theirs = _erlang(erlang_pool, request.param.removeprefix("otp-"))
    yield theirs
    if not theirs.pending:
        strays = theirs.strays()
        theirs.close()
        assert strays == 0, f"{theirs.name} was left {strays} message(s) it never asked for"
