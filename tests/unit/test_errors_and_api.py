"""The error hierarchy and the public API surface."""

from __future__ import annotations

import errno
import pickle

import pytest

import genudp


def test_public_api_is_pinned() -> None:
    assert genudp.__all__ == (
        "Active",
        "Address",
        "Down",
        "Error",
        "Family",
        "InetAddress",
        "LocalAddress",
        "Pid",
        "Ref",
        "Socket",
        "Timeout",
        "Udp",
        "UdpAnc",
        "UdpPassive",
        "demonitor",
        "flush",
        "format_address",
        "monitor",
        "open",
        "parse_address",
        "receive",
        "self",
        "send",
        "spawn",
        "__version__",
    )
    for name in genudp.__all__:
        assert hasattr(genudp, name), name


def test_error_is_an_oserror_with_reason_and_errno() -> None:
    e = genudp.Error("eagain", "full", errno=errno.EAGAIN)
    assert isinstance(e, OSError)
    assert (e.reason, e.errno) == ("eagain", errno.EAGAIN)
    assert str(e) == "eagain: full"
    own = genudp.Error("not_owner", "only the owner")
    assert own.errno is None
    assert str(own) == "not_owner: only the owner"


def test_timeout_is_both_error_and_timeouterror() -> None:
    t = genudp.Timeout("slow")
    assert isinstance(t, genudp.Error)
    assert isinstance(t, TimeoutError)
    assert t.reason == "timeout"


@pytest.mark.parametrize(
    "err", [genudp.Error("enoent", "gone", errno=errno.ENOENT), genudp.Error("closed"), genudp.Timeout("t")]
)
def test_errors_pickle(err: genudp.Error) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert (back.reason, back.errno, str(back)) == (err.reason, err.errno, str(err))
