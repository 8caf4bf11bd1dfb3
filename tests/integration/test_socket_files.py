"""Socket files: modes in force from creation, and nothing but a stale socket is ever replaced."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

import genudp
from tests.conftest import fd_count


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask() -> object:
    """Run with a given umask, restored after (set in the test, before any thread binds)."""
    old = os.umask(0o022)
    os.umask(old)
    yield old
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o000, 0o600), (0o022, 0o600), (0o077, 0o660), (0o022, 0o666)])
def test_mode_is_what_was_asked(mask: int, mode: int, tmp_sock_dir: Path, umask: object) -> None:
    os.umask(mask)
    path = str(tmp_sock_dir / f"m{mode:o}.sock")
    with genudp.open(path=path, mode=mode, active=False):
        assert mode_of(path) == mode
        # No process-wide umask games.
        assert os.umask(mask) == mask


def test_the_file_is_never_more_open_than_asked(tmp_sock_dir: Path, umask: object) -> None:
    """A watcher lstat()s the path while it is bound again and again with mode 0o600 under a
    permissive umask: no instant may show group or other bits."""
    os.umask(0o000)
    path = str(tmp_sock_dir / "watched.sock")
    stop = threading.Event()
    seen: set[int] = set()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.add(mode_of(path))
            except FileNotFoundError:
                pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(300):
            genudp.open(path=path, mode=0o600, active=False).close()
    finally:
        stop.set()
        watcher.join()
    assert seen, "the watcher never saw the file"
    assert all(m & ~0o600 == 0 for m in seen), sorted(oct(m) for m in seen)


def test_binding_over_a_live_socket_is_eaddrinuse(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "live.sock")
    with genudp.open(path=path, active=False):
        for stale_ok in (False, True):
            with pytest.raises(genudp.Error) as info:
                genudp.open(path=path, unlink_stale=stale_ok)
            assert info.value.reason == "eaddrinuse" and "live socket" in str(info.value)


def test_a_live_stream_socket_is_not_taken_for_stale(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "stream.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen()
        with pytest.raises(genudp.Error) as info:
            genudp.open(path=path, unlink_stale=True)
        assert info.value.reason == "eaddrinuse"
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_stale_socket_is_replaced_only_when_asked(tmp_sock_dir: Path) -> None:
    path = str(tmp_sock_dir / "stale.sock")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    raw.bind(path)
    raw.close()  # like a crashed receiver: the file stays, nobody is bound
    before = fd_count()
    with pytest.raises(genudp.Error) as info:
        genudp.open(path=path)
    assert info.value.reason == "eaddrinuse" and "unlink_stale=True" in str(info.value)
    assert fd_count() == before
    with genudp.open(path=path, unlink_stale=True, active=False) as r, genudp.open(family="local") as s:
        s.send(b"to the new one", path)
        assert r.recv(timeout=30)[2] == b"to the new one"


@pytest.mark.parametrize("kind", ["regular file", "directory", "symlink to a stale socket", "dangling symlink"])
def test_anything_but_a_socket_is_eexist_and_untouched(kind: str, tmp_sock_dir: Path) -> None:
    path = tmp_sock_dir / "thing"
    target = tmp_sock_dir / "target.sock"
    if kind == "regular file":
        path.write_text("precious")
    elif kind == "directory":
        path.mkdir()
    else:
        if kind == "symlink to a stale socket":
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            raw.bind(str(target))
            raw.close()
        path.symlink_to(target)
    before = os.lstat(path)
    with pytest.raises(genudp.Error) as info:
        genudp.open(path=str(path), unlink_stale=True)
    assert info.value.reason == "eexist"
    assert "never removes it" in str(info.value)
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if kind == "regular file":
        assert path.read_text() == "precious"
    if kind == "symlink to a stale socket":
        assert stat.S_ISSOCK(os.lstat(target).st_mode), "the link's target must not be touched"


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"path": "\0abstract", "mode": 0o600}, ValueError, "no file"),
        ({"family": "local", "mode": 0o600}, ValueError, "no file"),
        ({"path": "/tmp/x.sock", "mode": "0600"}, TypeError, "mode must be an int"),
        ({"path": "/tmp/x.sock", "mode": 0o1777}, ValueError, "within 0o000..0o777"),
        ({"path": "/tmp/x.sock", "unlink_stale": "yes"}, TypeError, "unlink_stale must be True or False"),
    ],
)
def test_bad_file_options(kwargs: dict[str, object], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        genudp.open(**kwargs)  # type: ignore[arg-type]


def test_emfile_is_a_clear_error_and_nothing_leaks(tmp_sock_dir: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    opened: list[genudp.Socket] = []
    before = fd_count()
    resource.setrlimit(resource.RLIMIT_NOFILE, (before + 20, hard))
    try:
        with pytest.raises(genudp.Error) as info:
            for _ in range(100):
                opened.append(genudp.open(ip="127.0.0.1", active=False))
        assert info.value.reason == "emfile"
        assert len(opened) >= 10  # RLIMIT_NOFILE bounds fd numbers: lower free ones count too
    finally:
        for sock in opened:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert fd_count() == before
    # The hub and sockets still work.
    with genudp.open(ip="127.0.0.1", active=True) as r, genudp.open(ip="127.0.0.1", active=False) as s:
        s.send(b"after emfile", r.sockname())
        assert genudp.receive(timeout=30)[4] == b"after emfile"
