"""Filling and draining a receiver: shared by the full-receiver tests of every runtime."""

from __future__ import annotations

from typing import Any

import genudp


def fill(sender: genudp.Socket, dest: Any, payload: bytes = b"fill") -> int:
    """Send until the destination (or our buffer) is full; return how many were sent."""
    n = 0
    while True:
        try:
            sender.send(payload, dest, timeout=0)
        except genudp.Error as exc:
            assert exc.reason == "eagain", exc
            return n
        n += 1
        assert n < 10_000, "the destination never filled"


def drain(receiver: genudp.Socket) -> list[bytes]:
    """Take every datagram waiting now (the owner only); return their data in order."""
    out = []
    while True:
        try:
            out.append(receiver.recv(timeout=0)[-1])
        except genudp.Timeout:
            return out
