"""Fuzzing bad input: arbitrary options, addresses and payloads produce only documented errors.

Documented: ``TypeError`` or ``ValueError`` (the caller's fault, raised at once) and
``genudp.Error`` (the OS or peer said no). After every example the hub is alive and a normal
round trip works.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genudp
from genudp import _hub

DOCUMENTED = (TypeError, ValueError, genudp.Error)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    # Host names are literals or localhost: any other name would go to DNS (no network here).
    st.tuples(st.sampled_from(["127.0.0.1", "::1", "localhost", ""]), st.integers(-5, 70000)),
)
#: For ip=: literals and non-strings only (a random name would be a DNS lookup).
ips = st.one_of(
    st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "::", "localhost"]), st.none(), st.integers(), st.binary()
)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="genudp-fuzz-") as d:
        yield Path(d)


def paths(base: Path) -> st.SearchStrategy[Any]:
    """Paths inside a scratch directory (never the working tree), abstract names, junk."""
    return st.one_of(
        st.text(max_size=150).map(lambda t: f"{base}/{t}"),
        st.text(max_size=120).map(lambda t: "\0" + t),
        st.binary(max_size=120).map(lambda b: b"\0" + b),
        st.text(max_size=20).map(lambda t: f"/nonexistent-genudp/{t}"),
        anything,
    )


def assert_still_works() -> None:
    assert _hub.hub().is_alive()
    with genudp.open(ip="127.0.0.1", active=True) as r, genudp.open(ip="127.0.0.1", active=False) as s:
        s.send(b"still fine", r.sockname())
        assert genudp.receive(lambda m: m[0] == "udp" and m[1] is r, timeout=30)[4] == b"still fine"


def flush_mailbox() -> None:
    while True:
        try:
            genudp.receive(timeout=0)
        except genudp.Timeout:
            return


@SETTINGS
@given(data=st.data())
def test_open_with_arbitrary_arguments(data: st.DataObject, base: Path) -> None:
    kwargs: dict[str, Any] = {}
    for name, strategy in (
        ("family", st.one_of(st.sampled_from(["inet", "inet6", "local"]), anything)),
        ("path", paths(base)),
        ("port", st.one_of(st.integers(-10, 70000), anything)),
        ("ip", ips),
        ("active", st.one_of(st.sampled_from([True, False, "once"]), st.integers(-40000, 40000), anything)),
        ("recbuf", st.one_of(st.integers(-5, 2**32), anything)),
        ("send_timeout", anything),
        ("mode", st.one_of(st.integers(-1, 0o7777), anything)),
        ("unlink_stale", anything),
        ("credentials", anything),
        ("high_msgq_watermark", st.one_of(st.integers(-1, 100), anything)),
    ):
        if data.draw(st.booleans(), label=f"give {name}"):
            kwargs[name] = data.draw(strategy, label=name)
    try:
        sock = genudp.open(**kwargs)
    except DOCUMENTED:
        pass
    else:
        sock.close()
    flush_mailbox()


@SETTINGS
@given(
    opts=st.dictionaries(
        st.sampled_from(["active", "recbuf", "sndbuf", "send_timeout", "low_msgq_watermark", "x"]), anything, max_size=3
    )
)
def test_setopts_with_arbitrary_options(opts: dict[str, Any]) -> None:
    with genudp.open(ip="127.0.0.1", active=False) as sock:
        before = sock.getopts()
        try:
            sock.setopts(**opts)
        except DOCUMENTED:
            # A refused setopts changes nothing.
            assert sock.getopts() == before
        assert sock.getopts()["active"] in (True, False, "once") or type(sock.getopts()["active"]) is int
    flush_mailbox()


@SETTINGS
@given(
    payload=st.one_of(
        st.binary(max_size=2**17),
        st.integers(0, 2**17).map(lambda n: b"x" * n),
        st.integers(0, 2**17).map(bytearray),
        anything,
    ),
    dest=st.one_of(st.just("receiver"), anything),
)
def test_send_with_arbitrary_payloads_and_destinations(payload: Any, dest: Any, base: Path) -> None:
    path = str(base / "fuzz-receiver.sock")
    families: tuple[genudp.Family, ...] = ("inet", "local")
    for family in families:
        receiver_args: dict[str, Any] = {"ip": "127.0.0.1"} if family == "inet" else {"path": path}
        with (
            genudp.open(**receiver_args, active=False) as r,
            genudp.open(family=family, active=False, send_timeout=0) as s,
        ):
            target = r.sockname() if dest == "receiver" else dest
            try:
                s.send(payload, target)
            except DOCUMENTED as exc:
                if isinstance(exc, genudp.Error) and exc.reason == "emsgsize":
                    assert "limit" in str(exc) or "exceeds" in str(exc)
            else:
                if dest == "receiver":
                    assert r.recv(timeout=30)[2] == bytes(payload)


@SETTINGS
@given(timeout=anything)
def test_recv_with_arbitrary_timeouts(timeout: Any) -> None:
    # None (forever) and long waits would only sleep: keep the junk and the short ones.
    if timeout is None or (isinstance(timeout, (int, float)) and not abs(timeout) < 0.05):
        timeout = 0
    with genudp.open(ip="127.0.0.1", active=False) as sock:
        try:
            sock.recv(timeout=timeout)
        except DOCUMENTED:
            pass


def test_everything_still_works_after_the_fuzzing() -> None:
    assert_still_works()
