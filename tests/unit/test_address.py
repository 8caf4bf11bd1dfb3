"""Address checks and text forms, without sockets."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genudp._address import (
    ADDRESS_FORMS,
    check_family,
    check_inet_dest,
    check_local_path,
    check_port,
    format_address,
    format_local,
    parse_address,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/tmp/x.sock", "/tmp/x.sock"),
        ("rel.sock", "rel.sock"),
        ("\0name", b"\0name"),
        (b"\0name", b"\0name"),
        (b"/tmp/x", "/tmp/x"),  # a bytes path decodes as os.fsdecode does
        (b"\x96.sock", "\udc96.sock"),  # ... undecodable bytes too, and encode back the same
        ("/" + "a" * 106, "/" + "a" * 106),
        ("\0" + "a" * 107, b"\0" + b"a" * 107),
    ],
)
def test_check_local_path_accepts(path: str | bytes, expected: str | bytes) -> None:
    assert check_local_path(path) == expected


@pytest.mark.parametrize(
    ("path", "error", "text"),
    [
        ("", ValueError, "must not be empty"),
        (b"", ValueError, "must not be empty"),
        ("/tmp/a\0b", ValueError, "must not contain NUL"),
        ("/" + "a" * 107, ValueError, "at most 107"),
        ("\0" + "a" * 108, ValueError, "at most 108"),
        (42, TypeError, "got int"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_check_local_path_rejects(path: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        check_local_path(path)


@given(st.binary(min_size=1, max_size=200))
def test_check_local_path_never_accepts_what_the_kernel_would_not(raw: bytes) -> None:
    try:
        out = check_local_path(raw)
    except ValueError:
        return
    kernel = out if isinstance(out, bytes) else os.fsencode(out)
    assert kernel == raw  # the same address, byte for byte
    assert isinstance(out, bytes) == raw.startswith(b"\0")  # abstract names stay bytes, paths are str
    assert len(kernel) <= 108
    assert kernel.startswith(b"\0") or b"\0" not in kernel


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_check_port_accepts(port: int) -> None:
    assert check_port(port) == port


@pytest.mark.parametrize(
    ("port", "error"), [(-1, ValueError), (65536, ValueError), ("80", TypeError), (True, TypeError)]
)
def test_check_port_rejects(port: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="port must be"):
        check_port(port)


@pytest.mark.parametrize(
    ("dest", "error", "text"),
    [
        ("127.0.0.1", TypeError, r"\(host, port\) tuple"),
        (("127.0.0.1",), TypeError, r"\(host, port\) tuple"),
        ((1, 2), TypeError, "host must be a str"),
        (("", 2), ValueError, "must not be empty"),
        (("h", 70000), ValueError, "0..65535"),
    ],
)
def test_check_inet_dest_rejects(dest: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        check_inet_dest(dest, "inet")


@pytest.mark.parametrize("family", ["inet", "inet6", "local"])
def test_check_family_accepts(family: str) -> None:
    assert check_family(family) == family


@pytest.mark.parametrize(("family", "error"), [("unix", ValueError), ("INET", ValueError), (2, TypeError)])
def test_check_family_rejects(family: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="'inet', 'inet6', 'local'"):
        check_family(family)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/run/x.sock", ("local", "/run/x.sock")),
        ("./x.sock", ("local", "./x.sock")),
        ("@name", ("local", b"\0name")),
        ("127.0.0.1:5000", ("inet", ("127.0.0.1", 5000))),
        ("localhost:0", ("inet", ("localhost", 0))),
        ("[::1]:5000", ("inet6", ("::1", 5000))),
        ("[fe80::1%lo]:53", ("inet6", ("fe80::1%lo", 53))),
    ],
)
def test_parse_address(text: str, expected: object) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", "@", "x.sock", "127.0.0.1", "127.0.0.1:http", "1.2.3.4:70000", "::1:5", "[::1]5", "[nope]:1", ":5"]
)
def test_parse_address_rejects_listing_the_forms(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_address(text)
    assert ADDRESS_FORMS in str(info.value)
    assert "\n" not in str(info.value)


@given(st.text(max_size=60))
def test_parse_address_only_raises_value_error(text: str) -> None:
    try:
        family, _ = parse_address(text)
    except ValueError:
        return
    assert family in ("inet", "inet6", "local")


@pytest.mark.parametrize(
    ("family", "address", "port", "shown"),
    [
        ("local", "/x", 0, "/x"),
        ("local", b"\0abc", 0, "@abc"),
        ("local", None, 0, "(unbound)"),
        ("inet", "127.0.0.1", 9, "127.0.0.1:9"),
        ("inet6", "::1", 9, "[::1]:9"),
    ],
)
def test_format_address(family: str, address: object, port: int, shown: str) -> None:
    assert format_address(family, address, port) == shown  # type: ignore[arg-type]
    if family == "local":
        assert format_local(address) == shown  # type: ignore[arg-type]
