"""``genudp.open``: validate (pure, ``_options``), create, bind, hand over to a ``Socket``.

Rules:
- Every argument is checked before the kernel is asked for anything: a bad argument creates no
  socket and no file.
- Whatever fails after the socket exists closes it, and unlinks a file it bound (only if it is
  still that file): a failed ``open`` leaves nothing behind, so a retry can succeed.
- A socket file genudp did not make is never removed unless the caller said ``unlink_stale``,
  and then only a *stale* socket file: ``lstat`` (links are never followed), a probe that finds
  nobody bound there, and the same inode again right before the unlink.
"""

from __future__ import annotations

import errno
import os
import socket as _socket_mod
import stat
from dataclasses import dataclass
from typing import Any, Final

from ._address import Family, check_local_path, format_local
from ._errors import Error, error_from_oserror
from ._messages import udp_passive
from ._options import (
    HIGH_MSGQ_WATERMARK,
    LOW_MSGQ_WATERMARK,
    Active,
    check_active,
    check_bool,
    check_bufsize,
    check_file_options,
    check_open_args,
    check_settable,
    check_timeout,
    check_watermarks,
    set_active,
)
from ._process import current
from ._socket import Socket
from ._sockopts import set_udp_options

__all__ = ("open",)

_AF: Final = {"inet": _socket_mod.AF_INET, "inet6": _socket_mod.AF_INET6, "local": _socket_mod.AF_UNIX}
_SOL: Final = _socket_mod.SOL_SOCKET


@dataclass(frozen=True, slots=True)
class _Spec:
    """``open()``'s arguments, checked."""

    family: Family
    port: int
    ip: str | None
    path: str | bytes | None
    active: Active
    recbuf: int | None
    sndbuf: int | None
    reuse: tuple[bool, bool]
    send_timeout: float | None
    watermarks: tuple[int, int]
    file_mode: int | None
    unlink_stale: bool
    credentials: bool
    udp_options: dict[str, Any]


def open(
    port: int = 0,
    *,
    family: Family | None = None,
    ip: str | None = None,
    path: str | bytes | None = None,
    active: Active = True,
    recbuf: int | None = None,
    sndbuf: int | None = None,
    reuseaddr: bool = False,
    reuseport: bool = False,
    send_timeout: float | None = None,
    high_msgq_watermark: int = HIGH_MSGQ_WATERMARK,
    low_msgq_watermark: int = LOW_MSGQ_WATERMARK,
    mode: int | None = None,
    unlink_stale: bool = False,
    credentials: bool = False,
    broadcast: bool | None = None,
    multicast_if: str | int | None = None,
    multicast_loop: bool | None = None,
    multicast_ttl: int | None = None,
    add_membership: Any = None,
) -> Socket:
    """Open a datagram socket owned by the calling process. Does not block.

    Args:
        port: UDP port to bind (0 picks a free one); must be 0 for local sockets.
        family: "inet" (default), "inet6" or "local" (the default when ``path`` is given).
        ip: address to bind a UDP socket to (default: any).
        path: a filesystem path, or an abstract name (``"\\0name"`` or bytes), for a local
            socket; a local socket without a path is unbound.
        active: True (deliver every datagram as a message), "once", a count N, or False
            (passive: use ``recv``).
        recbuf, sndbuf: SO_RCVBUF / SO_SNDBUF in bytes.
        reuseaddr, reuseport: SO_REUSEADDR / SO_REUSEPORT.
        send_timeout: default for ``send``: None (wait for room), 0 (raise "eagain"), seconds.
        high_msgq_watermark, low_msgq_watermark: flow control of active mode, in messages: when
            the owner's mailbox holds ``high`` messages, the socket stops being read until the
            owner has taken it down to ``low`` (the kernel queue meanwhile fills: local senders
            wait, UDP drops).
        mode: permissions of the socket file (e.g. 0o600), in force from the moment the file
            exists: never more open than asked, and no process-wide umask change.
        unlink_stale: replace a stale socket file (one nobody is bound to) at ``path``. A live
            socket there is "eaddrinuse"; anything that is not a socket is "eexist" and is never
            removed; symbolic links are never followed.
        credentials: local sockets only: ask the kernel for each sender's credentials
            (SO_PASSCRED). Active messages are then ``("udp", sock, address, port, anc, data)``
            and ``recv`` returns ``(address, port, anc, data)``, with ``anc`` a dict of the
            sender's "pid", "uid" and "gid" as the kernel vouches for them.
        broadcast: UDP over IPv4: allow sending to a broadcast address (SO_BROADCAST).
        multicast_if: the interface multicast leaves by: an IPv4 address of it (inet), or its
            index or name (inet6). Without it the kernel picks by route.
        multicast_loop: whether multicast sent here is looped back to this host's members
            (the kernel's default: True).
        multicast_ttl: hops a multicast datagram may take, 0..255 (kernel default 1).
        add_membership: join a group on arrival: ``(group, interface)`` or a list of them;
            interface is an IPv4 address ("0.0.0.0": the kernel picks) for inet, an index (0:
            the kernel picks) or name for inet6. ``setopts(drop_membership=...)`` leaves.
            These are OTP's option names; as in OTP, memberships cannot be read back.

    Raises:
        TypeError, ValueError: malformed arguments (nothing was created).
        Error: "eaddrinuse", "eacces", "enoent" (missing directory), "emfile", "einval" ...
            (nothing is left behind).
    """
    spec = _check(
        port,
        family,
        ip,
        path,
        active,
        recbuf,
        sndbuf,
        reuseaddr,
        reuseport,
        send_timeout,
        (high_msgq_watermark, low_msgq_watermark),
        mode,
        unlink_stale,
        credentials,
        {
            "broadcast": broadcast,
            "multicast_if": multicast_if,
            "multicast_loop": multicast_loop,
            "multicast_ttl": multicast_ttl,
            "add_membership": add_membership,
        },
    )
    transition = set_active(False, spec.active)
    owner = current()
    made: list[_socket_mod.socket] = []
    result: Socket | None = None
    try:
        bound_id = _create_and_bind(spec, made)
        result = Socket(
            made[0],
            spec.family,
            owner,
            spec.path,
            bound_id,
            spec.send_timeout,
            spec.reuse,
            spec.watermarks,
            spec.credentials,
        )
        if not owner._adopt_socket(result):  # pragma: no cover - the caller is running, so alive
            raise Error("badarg", "the calling process has ended")
        if transition.mode is not False:
            with result._lock:
                result._apply_mode_locked(transition.mode)
        elif transition.passive_message:
            owner._mailbox.put(udp_passive(result))
    except BaseException as exc:
        # Whatever failed (EMFILE starting the hub, an exception from a signal handler), the
        # socket and the file it bound go: a failed open leaves nothing behind.
        if result is not None:
            result.close()
        elif made:
            _discard(made[0], spec.path)
        if isinstance(exc, OSError) and not isinstance(exc, Error):
            raise error_from_oserror(exc, " starting to read the socket") from None
        raise
    return result


def _discard(sock: _socket_mod.socket, path: str | bytes | None) -> None:
    """Close a socket ``open`` made but could not finish, and unlink the file it bound (if the
    socket is bound to it: the bind may or may not have happened)."""
    try:
        if isinstance(path, str) and sock.getsockname() == path:
            st = os.lstat(path)
            if stat.S_ISSOCK(st.st_mode):
                os.unlink(path)
    except OSError:
        pass
    finally:
        sock.close()


def _check(
    port: object,
    family: object,
    ip: object,
    path: object,
    active: object,
    recbuf: object,
    sndbuf: object,
    reuseaddr: object,
    reuseport: object,
    send_timeout: object,
    watermarks: tuple[object, object],
    mode: object,
    unlink_stale: object,
    credentials: object,
    udp_options: dict[str, object],
) -> _Spec:
    fam = check_open_args(port, family, ip, path)
    checked_active = check_active(active)
    file_mode = check_file_options(mode, unlink_stale, path)
    if check_bool(credentials, "credentials") and fam != "local":
        raise ValueError("credentials=True is for local sockets; UDP carries no peer credentials")
    spec = _Spec(
        family=fam,
        port=port,  # type: ignore[arg-type]  # checked by check_open_args
        ip=ip,  # type: ignore[arg-type]
        path=check_local_path(path) if path is not None else None,
        active=checked_active,
        recbuf=check_bufsize(recbuf, "recbuf"),
        sndbuf=check_bufsize(sndbuf, "sndbuf"),
        reuse=(check_bool(reuseaddr, "reuseaddr"), check_bool(reuseport, "reuseport")),
        send_timeout=check_timeout(send_timeout, "send_timeout"),
        watermarks=check_watermarks(*watermarks),
        file_mode=file_mode,
        unlink_stale=bool(unlink_stale),
        credentials=bool(credentials),
        udp_options=check_settable({k: v for k, v in udp_options.items() if v is not None}, fam),
    )
    return spec


def _create_and_bind(spec: _Spec, made: list[_socket_mod.socket]) -> tuple[str, int, int] | None:
    """The kernel socket (appended to ``made``), its options set and bound; returns the file's
    absolute path, dev and ino, or None. On an error it closes the socket and raises."""
    try:
        # Blocking mode, so that a waiting send can block in the kernel (``_sendwait``); every
        # call that must not block passes MSG_DONTWAIT.
        sock = _socket_mod.socket(_AF[spec.family], _socket_mod.SOCK_DGRAM | _socket_mod.SOCK_CLOEXEC)
    except OSError as exc:
        raise error_from_oserror(exc, " opening a socket") from None
    made.append(sock)
    stage = "binding"
    try:
        for flag, option in zip(spec.reuse, (_socket_mod.SO_REUSEADDR, _socket_mod.SO_REUSEPORT), strict=True):
            if flag:
                sock.setsockopt(_SOL, option, 1)
        if spec.recbuf is not None:
            sock.setsockopt(_SOL, _socket_mod.SO_RCVBUF, spec.recbuf)
        if spec.sndbuf is not None:
            sock.setsockopt(_SOL, _socket_mod.SO_SNDBUF, spec.sndbuf)
        if spec.credentials:
            sock.setsockopt(_SOL, _socket_mod.SO_PASSCRED, 1)
        if spec.family == "local":
            if spec.path is None:
                return None
            return _bind_local(sock, spec.path, spec.file_mode, spec.unlink_stale)
        if spec.family == "inet6":
            sock.setsockopt(_socket_mod.IPPROTO_IPV6, _socket_mod.IPV6_V6ONLY, 0)
        sock.bind((spec.ip if spec.ip is not None else ("::" if spec.family == "inet6" else "0.0.0.0"), spec.port))
        stage = "setting"
        set_udp_options(sock, spec.family, spec.udp_options)
        return None
    except Error:
        made.clear()
        sock.close()
        raise
    except OSError as exc:
        made.clear()
        sock.close()
        if stage == "setting":
            raise error_from_oserror(exc, " setting " + ", ".join(spec.udp_options)) from None
        if isinstance(exc, _socket_mod.gaierror):
            raise Error("einval", f"cannot bind to ip={spec.ip!r}: {exc.strerror}") from None
        where = f" binding {format_local(spec.path)}" if spec.family == "local" else f" binding port {spec.port}"
        raise error_from_oserror(exc, where) from None


def _bind_local(
    sock: _socket_mod.socket, path: str | bytes, mode: int | None, unlink_stale: bool
) -> tuple[str, int, int] | None:
    """Bind a local socket; return the absolute path, st_dev and st_ino of the file it made,
    or None (abstract). ``close`` unlinks by that absolute path: a relative path would
    resolve elsewhere once the process changed its working directory."""
    if mode is not None:
        # Linux creates the file with the socket inode's mode less the umask: setting it before
        # bind makes the file never more open than asked, without touching the process umask.
        os.fchmod(sock.fileno(), mode)
    try:
        sock.bind(path)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not isinstance(path, str):
            raise
        _clear_path(path, unlink_stale)
        sock.bind(path)
    if not isinstance(path, str):
        return None
    where = os.path.abspath(path)
    st = os.lstat(where)
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        # The umask took bits away: give them back. The file was less open than asked until now.
        os.chmod(where, mode)
    return (where, st.st_dev, st.st_ino)


def _clear_path(path: str, unlink_stale: bool) -> None:
    """Something exists at ``path``: raise, or remove it if it is a stale socket we may replace."""
    try:
        st = os.lstat(path)  # never follows a symbolic link
    except FileNotFoundError:
        return  # gone meanwhile: bind again
    if not stat.S_ISSOCK(st.st_mode):
        kind = (
            "a symbolic link"
            if stat.S_ISLNK(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a regular file"
            if stat.S_ISREG(st.st_mode)
            else "not a socket"
        )
        raise Error("eexist", f"{path} exists and is {kind}; genudp never removes it", errno=errno.EEXIST)
    if _socket_is_live(path):
        raise Error("eaddrinuse", f"a live socket is bound at {path}", errno=errno.EADDRINUSE)
    if not unlink_stale:
        raise Error(
            "eaddrinuse",
            f"{path} is a stale socket file (nothing is bound to it); open(..., unlink_stale=True) replaces it",
            errno=errno.EADDRINUSE,
        )
    again = os.lstat(path)
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
        raise Error("eaddrinuse", f"{path} changed while genudp looked at it", errno=errno.EADDRINUSE)
    os.unlink(path)


def _socket_is_live(path: str) -> bool:
    probe = _socket_mod.socket(_socket_mod.AF_UNIX, _socket_mod.SOCK_DGRAM | _socket_mod.SOCK_CLOEXEC)
    try:
        probe.connect(path)
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # e.g. EPROTOTYPE: a stream socket listens there
    finally:
        probe.close()
