"""gen_udp semantics on real sockets, for every family and address shape."""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import genudp
from tests.blocking import wait_blocked
from tests.conftest import fd_count
from tests.integration.conftest import Maker


def udp(sock: genudp.Socket) -> Any:
    """Match a udp message of ``sock``."""
    return lambda m: isinstance(m, tuple) and m[0] == "udp" and m[1] is sock


def passive(sock: genudp.Socket) -> Any:
    return lambda m: m == ("udp_passive", sock)


PAYLOADS: list[bytes | bytearray | memoryview] = [
    b"hello",
    b"",
    bytearray(b"ba"),
    memoryview(b"xmvx")[1:3],
    bytes(range(256)) * 8,
]


def test_round_trip_passive(make_pair: Maker) -> None:
    p = make_pair(active=False)
    for data in PAYLOADS:
        p.sender.send(data, p.dest)
    for data in PAYLOADS:
        assert p.receiver.recv(timeout=30) == (p.source, p.source_port, bytes(data))
    info = p.sender.info()
    assert info["datagrams_sent"] == len(PAYLOADS)
    assert info["bytes_sent"] == sum(len(bytes(d)) for d in PAYLOADS)
    assert p.receiver.info()["datagrams_received"] == len(PAYLOADS)


def test_active_true_delivers_messages_in_order(make_pair: Maker) -> None:
    p = make_pair(active=True)
    for i in range(50):
        p.sender.send(b"%d" % i, p.dest)
    got = [genudp.receive(udp(p.receiver), timeout=30) for _ in range(50)]
    assert got == [("udp", p.receiver, p.source, p.source_port, b"%d" % i) for i in range(50)]
    match got[0]:
        case ("udp", sock, address, port, data):
            assert (sock, address, port, data) == (p.receiver, p.source, p.source_port, b"0")
        case _:
            pytest.fail("a udp message must match ('udp', sock, address, port, data)")


def test_active_once_delivers_one_then_turns_passive(make_pair: Maker) -> None:
    p = make_pair(active="once")
    for i in range(3):
        p.sender.send(b"%d" % i, p.dest)
    assert genudp.receive(udp(p.receiver), timeout=30)[4] == b"0"
    # "once" turns passive with no udp_passive message (OTP's rule); the rest stays queued.
    assert p.receiver.recv(timeout=30)[2] == b"1"
    assert p.receiver.getopts("active") == {"active": False}
    p.receiver.setopts(active="once")
    assert genudp.receive(udp(p.receiver), timeout=30)[4] == b"2"


def test_active_n_counts_down_adds_up_and_sends_udp_passive(make_pair: Maker) -> None:
    p = make_pair(active=2)
    p.receiver.setopts(active=3)  # an existing count is added to: 5
    assert p.receiver.getopts("active") == {"active": 5}
    for i in range(7):
        p.sender.send(b"%d" % i, p.dest)
    got = [genudp.receive(udp(p.receiver), timeout=30)[4] for _ in range(5)]
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    assert genudp.receive(passive(p.receiver), timeout=30) == ("udp_passive", p.receiver)
    assert p.receiver.getopts("active") == {"active": False}
    # The two beyond the count wait in the socket for recv.
    assert [p.receiver.recv(timeout=30)[2] for _ in range(2)] == [b"5", b"6"]


def test_active_count_going_non_positive_sends_udp_passive_at_once(make_pair: Maker) -> None:
    p = make_pair(active=3)
    p.receiver.setopts(active=-3)
    assert genudp.receive(passive(p.receiver), timeout=30) == ("udp_passive", p.receiver)
    assert p.receiver.getopts("active") == {"active": False}


def test_active_count_out_of_range_is_einval_and_changes_nothing(make_pair: Maker) -> None:
    p = make_pair(active=32000)
    with pytest.raises(genudp.Error) as info:
        p.receiver.setopts(active=1000)
    assert info.value.reason == "einval"
    assert p.receiver.getopts("active") == {"active": 32000}


def test_passive_recv_times_out(make_pair: Maker) -> None:
    p = make_pair(active=False)
    start = time.monotonic()
    with pytest.raises(genudp.Timeout) as info:
        p.receiver.recv(timeout=0.1)
    assert time.monotonic() - start >= 0.1
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, genudp.Error)
    assert info.value.reason == "timeout"
    with pytest.raises(genudp.Timeout):
        p.receiver.recv(timeout=0)


@pytest.mark.parametrize("active", [True, "once", 5])
def test_recv_on_an_active_socket_is_einval(make_pair: Maker, active: genudp.Active) -> None:
    p = make_pair(active=active)
    with pytest.raises(genudp.Error) as info:
        p.receiver.recv(timeout=0)
    assert info.value.reason == "einval"


@pytest.mark.parametrize("kind", ["inet", "inet6", "local-path", "local-abstract"], indirect=True)
def test_connect_filters_to_the_peer(make_pair: Maker, kind: str) -> None:
    p = make_pair(active=False)
    other = make_pair(active=False).sender
    p.receiver.connect((p.source, p.source_port) if kind in ("inet", "inet6") else p.source)
    # The connected receiver still gets the peer's datagrams...
    p.sender.send(b"from peer", p.dest)
    assert p.receiver.recv(timeout=30)[2] == b"from peer"
    # ... and not anyone else's: UDP drops them, a local receiver makes the sender's send fail.
    if kind.startswith("local"):
        with pytest.raises(genudp.Error) as info:
            other.send(b"intruder", p.dest)
        assert info.value.reason == "eperm"
    else:
        other.send(b"intruder", p.dest)
    p.sender.send(b"again", p.dest)
    assert p.receiver.recv(timeout=30)[2] == b"again"
    with pytest.raises(genudp.Timeout):
        p.receiver.recv(timeout=0.05)


def test_connected_sender_sends_without_a_destination(make_pair: Maker) -> None:
    p = make_pair(active=False)
    p.sender.connect(p.dest)
    p.sender.send(b"default")
    assert p.receiver.recv(timeout=30)[2] == b"default"
    assert p.sender.peername() is not None


def test_a_connected_local_sender_keeps_its_receiver_until_connected_again(tmp_sock_dir: Path) -> None:
    """What the README says of connect() for a hot destination: the connection names a
    receiver, not a path. Once that receiver closes, the next send fails "econnrefused" and
    the kernel drops the connection ("enotconn" after that), even with a new receiver at the
    path; connecting again reaches the new one. Nothing is sent by the failed sends."""
    path = str(tmp_sock_dir / "hot.sock")
    old = genudp.open(path=path, active=False)
    sender = genudp.open(family="local", active=False)
    try:
        sender.connect(path)
        sender.send(b"1")
        assert old.recv(timeout=30) == (None, 0, b"1")
        old.close()
        new = genudp.open(path=path, active=False, unlink_stale=True)
        with pytest.raises(genudp.Error) as refused:
            sender.send(b"2")
        assert refused.value.reason == "econnrefused"
        with pytest.raises(genudp.Error) as unconnected:
            sender.send(b"3")
        assert unconnected.value.reason == "enotconn"
        sender.connect(path)
        sender.send(b"4")
        assert new.recv(timeout=30) == (None, 0, b"4")
        with pytest.raises(genudp.Timeout):
            new.recv(timeout=0)  # "2" and "3" were not sent anywhere
        assert sender.info()["datagrams_sent"] == 2
        new.close()
    finally:
        sender.close()


def test_send_without_destination_on_unconnected_socket(make_pair: Maker, kind: str) -> None:
    p = make_pair(active=False)
    with pytest.raises(genudp.Error) as info:
        p.sender.send(b"x")
    assert info.value.reason == ("enotconn" if kind.startswith("local") else "edestaddrreq")


def test_controlling_process_hands_over_a_stream_without_loss_or_reordering(make_pair: Maker) -> None:
    total, window = 3000, 200
    p = make_pair(active=True)
    me = genudp.self()

    # UDP has no backpressure: whoever owns the socket acks every 100 datagrams, and the streamer
    # keeps at most ``window`` unacknowledged, so the kernel never has cause to drop one.
    def take(streamer: genudp.Pid) -> bytes:
        data: bytes = genudp.receive(udp(p.receiver), timeout=60)[4]
        if int(data) % 100 == 99:
            streamer.send(("ack", int(data)))
        return data

    def stream() -> None:
        acked = -1
        for i in range(total):
            while i - acked > window:
                acked = genudp.receive(lambda m: m[0] == "ack", timeout=60)[1]
            p.sender.send(b"%d" % i, p.dest)
        while acked < total - 1:
            acked = genudp.receive(lambda m: m[0] == "ack", timeout=60)[1]

    streamer = genudp.spawn(stream)

    def new_owner() -> None:
        me.send(("tail", [take(streamer) for _ in range(total - 500)]))

    owner2 = genudp.spawn(new_owner)
    head = [take(streamer) for _ in range(500)]
    # Datagrams keep arriving while the socket changes hands.
    p.receiver.controlling_process(owner2)
    assert p.receiver.owner is owner2
    _, tail = genudp.receive(lambda m: m[0] == "tail", timeout=120)
    assert streamer.join(60) and owner2.join(60)
    assert head + tail == [b"%d" % i for i in range(total)]


def test_controlling_process_moves_pending_messages_in_order(make_pair: Maker) -> None:
    p = make_pair(active=3)
    me = genudp.self()
    for i in range(3):
        p.sender.send(b"%d" % i, p.dest)
    # Wait until all three and udp_passive sit in our mailbox, untouched.
    last = genudp.receive(passive(p.receiver), timeout=30)
    me.send(last)
    me.send("mine")
    got: list[Any] = []

    def new_owner() -> None:
        got.extend(genudp.receive(timeout=30) for _ in range(4))

    child = genudp.spawn(new_owner)
    p.receiver.controlling_process(child)
    assert child.join(30)
    assert [m[0] for m in got] == ["udp", "udp", "udp", "udp_passive"]
    assert [m[4] for m in got[:3]] == [b"0", b"1", b"2"]
    assert genudp.receive(timeout=0) == "mine"


def test_only_the_owner_may_recv_or_hand_over(make_pair: Maker) -> None:
    p = make_pair(active=False)
    errors: list[str] = []

    def intruder() -> None:
        for call in (lambda: p.receiver.recv(timeout=0), lambda: p.receiver.controlling_process(genudp.self())):
            try:
                call()
            except genudp.Error as exc:
                errors.append(exc.reason)

    genudp.spawn(intruder).join(30)
    assert errors == ["not_owner", "not_owner"]


def test_controlling_process_to_an_ended_process_is_badarg(make_pair: Maker) -> None:
    p = make_pair(active=False)
    dead = genudp.spawn(lambda: None)
    dead.join(30)
    with pytest.raises(genudp.Error) as info:
        p.receiver.controlling_process(dead)
    assert info.value.reason == "badarg"
    assert p.receiver.owner is genudp.self()
    with pytest.raises(TypeError, match="needs a Pid"):
        p.receiver.controlling_process("me")  # type: ignore[arg-type]


def test_owner_exit_closes_its_sockets_and_unlinks_the_file(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "owned.sock")
    me = genudp.self()
    go = threading.Event()

    def owner() -> None:
        sock = genudp.open(path=path, active=False)
        me.send(("opened", sock))
        go.wait()

    pid = genudp.spawn(owner)
    ref = genudp.monitor(pid)
    _, sock = genudp.receive(lambda m: m[0] == "opened", timeout=30)
    assert os.path.exists(path)
    go.set()
    assert genudp.receive(lambda m: m[0] == "DOWN", timeout=30) == ("DOWN", ref, "process", pid, "normal")
    assert sock.closed
    assert not os.path.exists(path)
    with genudp.open(family="local") as s, pytest.raises(genudp.Error) as info:
        s.send(b"x", path)
    assert info.value.reason == "enoent"


def test_an_adopted_thread_ending_closes_its_sockets() -> None:
    box: list[genudp.Socket] = []
    t = threading.Thread(target=lambda: box.append(genudp.open(ip="127.0.0.1", active=False)))
    t.start()
    t.join()
    pid = box[0].owner
    assert pid.join(30), "the adopted thread's process did not end with its thread"
    assert box[0].closed


def test_close_unlinks_only_the_file_genudp_created(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "replaced.sock")
    sock = genudp.open(path=path, active=False)
    os.unlink(path)
    Path(path).write_text("someone else's file")
    sock.close()
    assert Path(path).read_text() == "someone else's file"


def test_close_wakes_a_blocked_recv_with_closed_quickly(make_pair: Maker) -> None:
    """The issue's figure is 100 ms: the median of five must meet it; each must be under 1 s."""
    delays = []
    for _ in range(5):
        p = make_pair(active=False)
        started = threading.Event()
        result: list[tuple[str, float]] = []

        def waiter(
            sock: genudp.Socket = p.receiver,
            started: threading.Event = started,
            result: list[tuple[str, float]] = result,
        ) -> None:
            genudp.receive(lambda m: m == "go", timeout=30)
            started.set()
            try:
                sock.recv()
            except genudp.Error as exc:
                result.append((exc.reason, time.monotonic()))

        # recv is owner-only: hand the socket to the waiting process first.
        pid = genudp.spawn(waiter)
        p.receiver.controlling_process(pid)
        pid.send("go")
        assert started.wait(30)
        wait_blocked(pid)
        closed_at = time.monotonic()
        p.receiver.close()
        assert pid.join(30)
        assert result and result[0][0] == "closed"
        delays.append(result[0][1] - closed_at)
    assert max(delays) < 1.0, delays
    assert statistics.median(delays) < 0.1, delays


def test_close_is_idempotent_and_later_calls_say_closed(make_pair: Maker) -> None:
    p = make_pair(active=False)
    with p.receiver as r:
        pass
    r.close()
    assert r.closed and "closed" in repr(r)
    assert r.fileno() == -1
    for call in (lambda: r.recv(timeout=0), lambda: r.send(b"x", p.dest), lambda: r.setopts(active=True), r.sockname):
        with pytest.raises(genudp.Error) as info:
            call()
        assert info.value.reason == "closed"


def test_ten_thousand_open_close_cycles_leak_no_fds(tmp_sock_dir: Path) -> None:
    before = fd_count()
    for i in range(10_000):
        kind = i % 4
        if kind == 0:
            s = genudp.open(ip="127.0.0.1", active=True)
        elif kind == 1:
            s = genudp.open(path=str(tmp_sock_dir / "c.sock"), active=False)
        elif kind == 2:
            s = genudp.open(family="local", active="once")
        else:
            s = genudp.open(ip="127.0.0.1", active=False)
            with pytest.raises(genudp.Timeout):
                s.recv(timeout=0)
        s.close()
    assert fd_count() == before
    assert os.listdir(tmp_sock_dir) == []


def test_repr_shows_fd_family_address_owner_mode_state(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "repr.sock")
    with genudp.open(path=path, active=3) as s:
        text = repr(s)
        for part in (f"fd={s.fileno()}", "local", path, repr(genudp.self()), "active=3", "open"):
            assert part in text, (part, text)
    with genudp.open(path="\0genudp-repr-test", active=False) as s:
        assert "@genudp-repr-test" in repr(s)


def test_info_counts_datagrams_and_bytes(make_pair: Maker) -> None:
    p = make_pair(active=True)
    for n in (0, 10, 100):
        p.sender.send(b"x" * n, p.dest)
    for _ in range(3):
        genudp.receive(udp(p.receiver), timeout=30)
    s, r = p.sender.info(), p.receiver.info()
    assert (s["datagrams_sent"], s["bytes_sent"]) == (3, 110)
    assert (r["datagrams_received"], r["bytes_received"]) == (3, 110)
    assert r["state"] == "open" and r["active"] is True


def test_info_counts_exactly_while_threads_send_and_read_it(tmp_sock_dir: Path) -> None:
    """Sends record themselves without a lock and info() folds them in: with four threads
    sending past several folds, some sends waiting on a full receiver, and a fifth thread
    calling info() throughout, every datagram and byte is counted once and the counts only
    grow."""
    path = str(tmp_sock_dir / "counted.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(60)
    per_thread, threads = 3000, 4
    total = per_thread * threads
    sizes = [i % 97 for i in range(per_thread)]
    sender = genudp.open(family="local", active=False)
    got: list[int] = []
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def drain() -> None:
        for _ in range(total):
            got.append(len(receiver.recv(256)))

    def send() -> None:
        for n in sizes:
            sender.send(b"y" * n, path)

    def watch() -> None:
        # Samples every 0.5 ms until the senders are done (a busy loop would hold the GIL).
        while not done.wait(0.0005):
            info = sender.info()
            seen.append((info["datagrams_sent"], info["bytes_sent"]))

    try:
        drainer = threading.Thread(target=drain)
        senders = [threading.Thread(target=send) for _ in range(threads)]
        watcher = threading.Thread(target=watch)
        for t in (drainer, watcher, *senders):
            t.start()
        for t in senders:
            t.join(timeout=120)
        done.set()
        drainer.join(timeout=120)
        watcher.join(timeout=120)
        info = sender.info()
    finally:
        sender.close()
        receiver.close()
    assert len(got) == total and sum(got) == threads * sum(sizes)
    assert (info["datagrams_sent"], info["bytes_sent"]) == (total, threads * sum(sizes))
    assert len(seen) > 10, "the watcher saw too little of the run to mean anything"
    assert seen == sorted(seen), "a count went backwards"
    assert all(n <= total for n, _ in seen)


def test_getopts_and_setopts(make_pair: Maker) -> None:
    p = make_pair(active=False, recbuf=65536, sndbuf=65536)
    opts = p.receiver.getopts()
    assert set(opts) == {
        "active",
        "recbuf",
        "sndbuf",
        "reuseaddr",
        "reuseport",
        "send_timeout",
        "high_msgq_watermark",
        "low_msgq_watermark",
        # UDP only: broadcast and the readable multicast options, with OTP's names.
        *(() if p.receiver.family == "local" else ("broadcast", "multicast_if", "multicast_loop", "multicast_ttl")),
    }
    assert (opts["high_msgq_watermark"], opts["low_msgq_watermark"]) == (8192, 4096)
    with pytest.raises(ValueError, match="must not exceed"):
        p.receiver.setopts(low_msgq_watermark=9000, send_timeout=7)
    assert p.receiver.getopts("send_timeout", "low_msgq_watermark") == {
        "send_timeout": None,
        "low_msgq_watermark": 4096,
    }
    assert opts["recbuf"] >= 65536 and opts["sndbuf"] >= 65536  # Linux doubles what it is given
    p.receiver.setopts(send_timeout=0.5, recbuf=131072)
    assert p.receiver.getopts("send_timeout", "recbuf") == {"send_timeout": 0.5, "recbuf": 262144}
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        p.receiver.setopts(colour="red")
    with pytest.raises(ValueError, match="only be given to open"):
        p.receiver.setopts(reuseaddr=True)
    with pytest.raises(ValueError, match="unknown option"):
        p.receiver.getopts("nope")


@pytest.mark.parametrize(
    ("data", "dest", "error", "text"),
    [
        ("text", None, TypeError, "data must be bytes, bytearray or memoryview; got str"),
        (12, None, TypeError, "got int"),
    ],
)
def test_bad_send_arguments(make_pair: Maker, data: Any, dest: Any, error: type[Exception], text: str) -> None:
    p = make_pair(active=False)
    with pytest.raises(error, match=text):
        p.sender.send(data, p.dest if dest is None else dest)
    with pytest.raises(genudp.Timeout):
        p.receiver.recv(timeout=0)


@pytest.mark.parametrize(
    ("dest", "text"),
    [
        ("127.0.0.1", r"\(host, port\) tuple"),
        (("127.0.0.1", 70000), "0..65535"),
        ((1, 2), "host must be a str"),
    ],
)
def test_bad_udp_destinations(dest: Any, text: str) -> None:
    with genudp.open(ip="127.0.0.1", active=False) as s, pytest.raises((TypeError, ValueError), match=text):
        s.send(b"x", dest)


@pytest.mark.parametrize(
    ("dest", "error", "text"),
    [
        (42, TypeError, "dest must be a str or bytes path"),
        ("/" + "a" * 200, ValueError, "at most 107"),
    ],
)
def test_bad_local_destinations(dest: Any, error: type[Exception], text: str) -> None:
    with genudp.open(family="local", active=False) as s, pytest.raises(error, match=text):
        s.send(b"x", dest)


def test_destination_errors_are_definite(tmp_sock_dir: Path) -> None:
    stale = tmp_sock_dir / "stale.sock"
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    raw.bind(str(stale))
    raw.close()  # the file stays; nothing is bound to it
    with genudp.open(family="local", active=False) as s:
        for dest, reason in ((str(tmp_sock_dir / "missing.sock"), "enoent"), (str(stale), "econnrefused")):
            with pytest.raises(genudp.Error) as info:
                s.send(b"x", dest)
            assert info.value.reason == reason
            assert info.value.errno is not None
        assert s.info()["errors"] == {"enoent": 1, "econnrefused": 1}
        assert s.info()["datagrams_sent"] == 0


@pytest.mark.parametrize(("family", "ip", "size", "limit"), [("inet", "127.0.0.1", 70000, "65507")])
def test_oversize_udp_datagram_is_emsgsize_with_the_limit(family: str, ip: str, size: int, limit: str) -> None:
    with genudp.open(family=family, ip=ip, active=False) as s:  # type: ignore[arg-type]
        with pytest.raises(genudp.Error) as info:
            s.send(b"x" * size, (ip, 9))
        assert info.value.reason == "emsgsize"
        assert limit in str(info.value)


def test_oversize_local_datagram_is_emsgsize_with_the_limit(tmp_sock_dir: Path) -> None:
    with (
        genudp.open(path=str(tmp_sock_dir / "big.sock"), active=False) as r,
        genudp.open(family="local", sndbuf=16384) as s,
    ):
        limit = s.getopts("sndbuf")["sndbuf"] - 32
        with pytest.raises(genudp.Error) as info:
            s.send(b"x" * (limit + 100), str(tmp_sock_dir / "big.sock"))
        assert info.value.reason == "emsgsize"
        assert str(limit) in str(info.value)
        with pytest.raises(genudp.Timeout):
            r.recv(timeout=0)


def test_hub_survives_an_error_on_one_socket() -> None:
    # A connected UDP socket whose peer port is closed gets ECONNREFUSED (ICMP) pending; the hub
    # reads it, counts it on that socket, and keeps serving everyone else.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with genudp.open(ip="127.0.0.1", active=True) as bad, genudp.open(ip="127.0.0.1", active=True) as good:
        bad.connect(("127.0.0.1", dead_port))
        bad.send(b"into the void")
        with genudp.open(ip="127.0.0.1", active=False) as s:
            deadline = time.monotonic() + 30
            while "econnrefused" not in bad.info()["errors"]:
                assert time.monotonic() < deadline, bad.info()
                s.send(b"tick", good.sockname())
                genudp.receive(udp(good), timeout=30)
            s.send(b"still served", good.sockname())
            assert genudp.receive(udp(good), timeout=30)[4] == b"still served"


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"family": "unix"}, ValueError, "family must be one of"),
        ({"port": 70000}, ValueError, "port must be in 0..65535"),
        ({"port": "80"}, TypeError, "port must be an int"),
        ({"path": "/tmp/x", "family": "inet"}, ValueError, "path= is for local sockets"),
        ({"family": "local", "ip": "127.0.0.1"}, ValueError, "ip= is for inet/inet6"),
        ({"family": "local", "port": 5}, ValueError, "port must be 0 for a local socket"),
        ({"active": "sometimes"}, ValueError, "active must be"),
        ({"recbuf": -1}, ValueError, "recbuf must be within"),
        ({"send_timeout": -1}, ValueError, "send_timeout must be None"),
        ({"reuseaddr": 1}, TypeError, "reuseaddr must be True or False"),
    ],
)
def test_bad_open_arguments(kwargs: dict[str, Any], error: type[Exception], text: str) -> None:
    before = fd_count()
    with pytest.raises(error, match=text):
        genudp.open(**kwargs)
    assert fd_count() == before


def test_bind_errors_are_genudp_errors(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "taken.sock")
    with genudp.open(path=path, active=False):
        with pytest.raises(genudp.Error) as info:
            genudp.open(path=path)
        assert info.value.reason == "eaddrinuse"
    with pytest.raises(genudp.Error) as info:
        genudp.open(path=str(tmp_sock_dir / "no" / "such" / "dir.sock"))
    assert info.value.reason == "enoent"
