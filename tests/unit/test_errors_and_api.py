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
        "parse_address",
        "receive",
        "self",
        "send",
        "spawn",
        "__version__",
    )
    for name in genudp.__all__:
        assert hasattr(genudp, name), name
    assert callable(genudp.open)


def test_a_star_import_shadows_no_builtin() -> None:
    namespace: dict[str, object] = {}
    exec("from genudp import *", namespace)
    shadowed = sorted(set(namespace) & set(dir(__builtins__)) - {"__builtins__"})
    assert shadowed == [], f"from genudp import * shadows {shadowed}"


def test_public_classes_name_the_public_module() -> None:
    for cls in (genudp.Error, genudp.Timeout, genudp.Socket, genudp.Pid, genudp.Ref, genudp.Udp, genudp.Down):
        assert cls.__module__ == "genudp", cls
    import traceback

    try:
        raise genudp.Timeout("slow")
    except genudp.Timeout as exc:
        printed = "".join(traceback.format_exception_only(exc))
    assert printed.startswith("genudp.Timeout: timeout: slow"), printed
    assert type(pickle.loads(pickle.dumps(genudp.Error("eagain", "full")))) is genudp.Error


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
