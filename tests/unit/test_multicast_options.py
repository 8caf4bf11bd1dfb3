"""Broadcast and multicast option checks (pure: no sockets)."""

from __future__ import annotations

import pytest

from genudp._options import check_membership, check_multicast_if, check_multicast_ttl


@pytest.mark.parametrize(
    ("value", "family", "expected"),
    [
        ("239.1.2.3", "inet", [("239.1.2.3", "0.0.0.0")]),
        (("239.1.2.3", "10.0.0.1"), "inet", [("239.1.2.3", "10.0.0.1")]),
        ([("224.0.0.251", "0.0.0.0"), "239.0.0.1"], "inet", [("224.0.0.251", "0.0.0.0"), ("239.0.0.1", "0.0.0.0")]),
        ("ff02::1:3", "inet6", [("ff02::1:3", 0)]),
        (("FF05::0001", 3), "inet6", [("ff05::1", 3)]),
        (("ff02::fb", "eth0"), "inet6", [("ff02::fb", "eth0")]),
    ],
)
def test_memberships_are_normalised(value: object, family: str, expected: object) -> None:
    assert check_membership(value, family, "add_membership") == expected


@pytest.mark.parametrize(
    ("value", "family", "error", "words"),
    [
        ("10.0.0.1", "inet", ValueError, "must be a multicast address"),
        ("ff02::1", "inet", ValueError, "must be an IPv4 address"),
        ("239.1.1.1", "inet6", ValueError, "must be an IPv6 address"),
        (("239.1.1.1",), "inet", TypeError, "(group, interface)"),
        (("239.1.1.1", 2), "inet", TypeError, "IP address literal"),
        (("ff02::1", -1), "inet6", ValueError, "interface index in 0..4294967295"),
        (("ff02::1", 1.5), "inet6", TypeError, "interface index"),
        ("bogus", "inet", ValueError, "IP address literal"),
        ("239.1.1.1", "local", ValueError, "UDP option"),
        (42, "inet", TypeError, "(group, interface)"),
    ],
)
def test_bad_memberships_say_what_was_expected(value: object, family: str, error: type, words: str) -> None:
    with pytest.raises(error, match=None) as caught:
        check_membership(value, family, "add_membership")
    assert words in str(caught.value)
    assert "add_membership" in str(caught.value)


def test_multicast_if_and_ttl() -> None:
    assert check_multicast_if("192.0.2.1", "inet") == "192.0.2.1"
    assert check_multicast_if(2, "inet6") == 2
    assert check_multicast_if("veth0", "inet6") == "veth0"
    with pytest.raises(ValueError, match="IPv4"):
        check_multicast_if("::1", "inet")
    with pytest.raises(TypeError, match="interface index"):
        check_multicast_if(None, "inet6")
    assert [check_multicast_ttl(v) for v in (0, 1, 255)] == [0, 1, 255]
    for bad, error in ((256, ValueError), (-1, ValueError), (True, TypeError), ("1", TypeError)):
        with pytest.raises(error, match="multicast_ttl"):
            check_multicast_ttl(bad)
