"""UDP across hosts: two network namespaces joined by a veth pair, a genudp process in each.

Each "host" is a namespace of its own, with its own interfaces, routes and port space; the only
way between them is the veth pair, as between two machines on one Ethernet segment:

    namespace A: veth A 10.231.0.1/24, fd00:231::1/64  <->  namespace B: veth B 10.231.0.2/24, fd00:231::2/64

The genudp processes are ``tests/interop/agent.py`` run with ``ip netns exec``. Needs root and
iproute2 (CI has both); by hand without them the module skips, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.interop.peers import AgentPeer, ErlangPeer, require_escript

A4, B4, BCAST4 = "10.231.0.1", "10.231.0.2", "10.231.0.255"
A6, B6 = "fd00:231::1", "fd00:231::2"
GROUP4, GROUP6 = "239.231.0.1", "ff15::231"


@dataclass
class Hosts:
    a: str  # namespace names
    b: str
    veth_a: str  # interface names inside them
    veth_b: str


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"network namespaces are needed in CI: {reason}")
    pytest.skip(f"SKIPPED: cannot create network namespaces here: {reason}")


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0:
        _unavailable("not root (ip netns needs CAP_SYS_ADMIN); run the suite as root, as CI does")
    if shutil.which("ip") is None:
        _unavailable("iproute2's ip is not installed (apt-get install iproute2)")
    tag = uuid.uuid4().hex[:6]
    h = Hosts(f"genudp-a-{tag}", f"genudp-b-{tag}", f"gua{tag}", f"gub{tag}")
    made: list[str] = []
    try:
        for ns in (h.a, h.b):
            _run("ip", "netns", "add", ns)
            made.append(ns)
        _run("ip", "link", "add", h.veth_a, "netns", h.a, "type", "veth", "peer", "name", h.veth_b, "netns", h.b)
        for ns, dev, v4, v6 in ((h.a, h.veth_a, A4, A6), (h.b, h.veth_b, B4, B6)):
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "addr", "add", f"{v4}/24", "broadcast", BCAST4, "dev", dev)
            # nodad: usable at once, instead of "tentative" for a second or two.
            _run("ip", "-n", ns, "-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            _run("ip", "-n", ns, "link", "set", dev, "up")
    except (subprocess.CalledProcessError, OSError) as exc:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        _unavailable(f"{exc}: {detail}")
    yield h
    for ns in made:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.fixture
def agents() -> Iterator[list[AgentPeer]]:
    started: list[AgentPeer] = []
    yield started
    strays = {agent.name: agent.strays() for agent in started if not agent.pending}
    for agent in started:
        agent.stop()
    assert not any(strays.values()), f"messages nobody asked for: {strays}"


def _agent(agents: list[AgentPeer], netns: str, name: str) -> AgentPeer:
    agent = AgentPeer(netns, name)
    agents.append(agent)
    return agent


def test_unicast_both_ways(hosts: Hosts, agents: list[AgentPeer]) -> None:
    a, b = _agent(agents, hosts.a, "a"), _agent(agents, hosts.b, "b")
    a_addr = a.open("inet", A4, active=True)
    b_addr = b.open("inet", B4, active=False)
    sent = [b"", b"hello", bytes(range(256)), b"x" * 1400, b"y" * 8000]
    for data in sent:
        assert a.send(data, b_addr) == "OK"
    # Across the veth pair the source is A's own address, as a remote host would see it.
    assert [b.recv() for _ in sent] == [("udp", a_addr, data) for data in sent]
    assert b.send(b"reply", a_addr) == "OK"
    assert a.take() == ("udp", b_addr, b"reply")


def test_ipv6_both_ways(hosts: Hosts, agents: list[AgentPeer]) -> None:
    a, b = _agent(agents, hosts.a, "a"), _agent(agents, hosts.b, "b")
    a_addr = a.open("inet6", A6, active=False)
    b_addr = b.open("inet6", B6, active=3)
    for i in range(3):
        assert a.send(b"v6 %d" % i, b_addr) == "OK"
    assert [b.take() for _ in range(4)] == [("udp", a_addr, b"v6 %d" % i) for i in range(3)] + [("udp_passive",)]
    assert b.send(b"back", a_addr) == "OK"
    assert a.recv() == ("udp", b_addr, b"back")


def test_connected_sockets_filter_and_default(hosts: Hosts, agents: list[AgentPeer]) -> None:
    a, other, b = (_agent(agents, hosts.a, "a"), _agent(agents, hosts.a, "other"), _agent(agents, hosts.b, "b"))
    a_addr = a.open("inet", A4, active=False)
    other.open("inet", A4, active=False)
    b_addr = b.open("inet", B4, active=True)
    assert b.connect(a_addr) == "OK"
    assert a.connect(b_addr) == "OK"
    # "other" sends first; a connected B never sees it. A's datagram, sent later, comes first.
    assert other.send(b"not for you", b_addr) == "OK"
    assert a.send(b"connected") == "OK"
    assert b.take() == ("udp", a_addr, b"connected")
    assert b.send(b"default destination") == "OK"
    assert a.recv() == ("udp", b_addr, b"default destination")
    assert b.take(300) == ("timeout",)


def test_broadcast_reaches_the_other_host_only_with_the_option(hosts: Hosts, agents: list[AgentPeer]) -> None:
    a, b = _agent(agents, hosts.a, "a"), _agent(agents, hosts.b, "b")
    a_addr = a.open("inet", A4, active=False)
    # A broadcast is delivered to sockets bound to the wildcard (or the broadcast address).
    b_addr = b.open("inet", "0.0.0.0", active=False)
    dest = ("inet", BCAST4, b_addr[2])
    assert a.send(b"refused", dest) == "ERROR eacces", "without broadcast=True the kernel refuses"
    assert a.setopts(broadcast=True) == "OK"
    assert a.send(b"to everyone", dest) == "OK"
    assert b.recv() == ("udp", a_addr, b"to everyone")


def test_multicast_group_across_hosts(hosts: Hosts, agents: list[AgentPeer]) -> None:
    sender = _agent(agents, hosts.a, "sender")
    near = _agent(agents, hosts.a, "near member")  # a member on the sending host
    far = _agent(agents, hosts.b, "far member")
    far_addr = far.open("inet", "0.0.0.0", active=True)
    port = far_addr[2]
    assert far.setopts(add_membership=[GROUP4, B4]) == "OK"
    near_addr = near.open_with("inet", "0.0.0.0", active=True, port=port)
    assert near.setopts(add_membership=[GROUP4, A4]) == "OK"
    sender_addr = sender.open("inet", A4, active=False)
    assert sender.setopts(multicast_if=A4, multicast_ttl=1, multicast_loop=False) == "OK"
    group = ("inet", GROUP4, port)
    assert sender.send(b"to the group", group) == "OK"
    assert far.take() == ("udp", sender_addr, b"to the group")
    # multicast_loop=False: no copy for members on the sending host. A direct datagram, sent
    # after, is the first thing the near member gets.
    assert sender.send(b"direct", ("inet", "127.0.0.1", near_addr[2])) == "OK"
    assert near.take() == ("udp", sender_addr, b"direct")
    assert sender.setopts(multicast_loop=True) == "OK"
    assert sender.send(b"looped", group) == "OK"
    assert near.take() == ("udp", sender_addr, b"looped")
    assert far.take() == ("udp", sender_addr, b"looped")
    # Leaving the group: a later datagram to it no longer arrives; a direct one does, first.
    assert far.setopts(drop_membership=[GROUP4, B4]) == "OK"
    assert sender.send(b"after leaving", group) == "OK"
    assert near.take() == ("udp", sender_addr, b"after leaving")
    assert sender.send(b"direct", ("inet", B4, port)) == "OK"
    assert far.take() == ("udp", sender_addr, b"direct")


def test_ipv6_multicast_group_across_hosts(hosts: Hosts, agents: list[AgentPeer]) -> None:
    sender, member = _agent(agents, hosts.a, "sender"), _agent(agents, hosts.b, "member")
    member_addr = member.open("inet6", "::", active=False)
    # IPv6 names the interface by index or name, not by address.
    assert member.setopts(add_membership=[GROUP6, hosts.veth_b]) == "OK"
    sender_addr = sender.open("inet6", A6, active=False)
    assert sender.setopts(multicast_if=hosts.veth_a, multicast_ttl=4) == "OK"
    assert sender.send(b"v6 group", ("inet", GROUP6, member_addr[2])) == "OK"
    assert member.recv() == ("udp", sender_addr, b"v6 group")


@pytest.mark.parametrize("backend", ["inet", "socket"])
def test_erlang_on_the_other_host(hosts: Hosts, agents: list[AgentPeer], backend: str) -> None:
    """OTP's own option names, on both sides: an Erlang member joins with add_membership and
    hears genudp's group datagram; Erlang broadcasts (broadcast) and genudp hears it."""
    require_escript()
    sender = _agent(agents, hosts.a, "sender")
    erlang = ErlangPeer(backend, netns=hosts.b)
    try:
        member = erlang.open("inet", "0.0.0.0", active=True)
        joined = erlang.join(GROUP4, B4)
        if backend == "socket":
            # OTP 25's socket backend rejects gen_udp's documented {add_membership,
            # {MultiAddr, IfAddr}} with {invalid, {socket_option, ...}}; the inet backend takes it.
            assert joined.startswith("ERROR {invalid,{socket_option,{ip,add_membership}"), joined
        else:
            assert joined == "OK"
            sender_addr = sender.open("inet", A4, active=False)
            assert sender.setopts(multicast_if=A4) == "OK"
            assert sender.send(b"to erlang", ("inet", GROUP4, member[2])) == "OK"
            assert erlang.take() == ("udp", sender_addr, b"to erlang")
        listener = sender.open("inet", "0.0.0.0", active=False)
        assert erlang.allow_broadcast() == "OK"
        assert erlang.send(b"from erlang", ("inet", BCAST4, listener[2])) == "OK"
        assert sender.recv() == ("udp", ("inet", B4, member[2]), b"from erlang")
        assert erlang.strays() == 0
    finally:
        erlang.stop()
