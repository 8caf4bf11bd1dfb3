"""Broadcast and multicast options on real sockets, on this host's loopback. Across hosts (a
veth pair between network namespaces) they are exercised by tests/netns."""

from __future__ import annotations

import pytest

import genudp

GROUP = "239.255.42.7"


def test_a_group_member_receives_what_is_sent_to_the_group() -> None:
    with (
        genudp.open(ip="0.0.0.0", reuseaddr=True, add_membership=(GROUP, "127.0.0.1"), active=False) as member,
        genudp.open(ip="127.0.0.1", multicast_if="127.0.0.1", multicast_ttl=0, active=False) as sender,
    ):
        port = member.sockname()[1]
        assert sender.getopts("multicast_if", "multicast_ttl", "multicast_loop") == {
            "multicast_if": "127.0.0.1",
            "multicast_ttl": 0,
            "multicast_loop": True,
        }
        sender.send(b"to the group", (GROUP, port))
        assert member.recv(10) == ("127.0.0.1", sender.sockname()[1], b"to the group")
        # Leave the group: the next datagram to it is not delivered here. Then one sent
        # directly proves the socket still works, and that nothing from the group came first.
        member.setopts(drop_membership=(GROUP, "127.0.0.1"))
        sender.send(b"nobody listens", (GROUP, port))
        sender.send(b"direct", ("127.0.0.1", port))
        assert member.recv(10)[2] == b"direct"
        with pytest.raises(genudp.Error) as again:
            member.setopts(drop_membership=(GROUP, "127.0.0.1"))
        assert again.value.reason == "eaddrnotavail"


def test_broadcast_needs_the_option() -> None:
    with genudp.open(ip="127.0.0.1", active=False) as sock:
        assert sock.getopts("broadcast") == {"broadcast": False}
        with pytest.raises(genudp.Error) as refused:
            sock.send(b"x", ("255.255.255.255", 9))
        assert refused.value.reason == "eacces"
        sock.setopts(broadcast=True)
        assert sock.getopts("broadcast") == {"broadcast": True}


def test_joining_on_a_missing_interface_names_the_option() -> None:
    with pytest.raises(genudp.Error) as caught:
        genudp.open(add_membership=(GROUP, "192.0.2.99"))
    assert caught.value.reason == "enodev"
    assert "add_membership" in str(caught.value)
    with pytest.raises(genudp.Error) as named:
        genudp.open(family="inet6", add_membership=("ff02::1:3", "no-such-if0"))
    assert named.value.reason == "enodev"
    assert "no-such-if0" in str(named.value)


def test_local_sockets_have_no_udp_options(tmp_sock_dir: object) -> None:
    with genudp.open(family="local", active=False) as sock:
        assert "broadcast" not in sock.getopts()
        with pytest.raises(ValueError, match="UDP option"):
            sock.getopts("multicast_ttl")
        with pytest.raises(ValueError, match="UDP option"):
            sock.setopts(multicast_loop=True)
