"""``genudp repro --compare``: the same full receiver, through the peers a user would otherwise pick.

Each peer is one sender process that sends ``count`` sequence-numbered datagrams to the scenario's
slow receiver and then reports, on stdout, in one shared line format:

    OK 0,1,2,...        the sequence numbers whose send reported success
    ERRORS eagain=12    failed sends by reason
    STRAYS 0            messages left in the sender's mailbox that it never asked for
    CPU 0.123 0.456     CPU seconds (all threads) and wall seconds of the sending phase
    NOTE text           anything else worth a line

Peers: genudp itself; asyncio's datagram endpoint (``loop.create_datagram_endpoint``); and
Erlang/OTP ``gen_udp`` with the inet (driver) and socket backends, as an escript, when ``escript``
is on PATH. The receiver's books then say what each peer lost or duplicated.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import genudp
from genudp import Error

from . import as_child, child_env
from .scenario import Config, Receiver, payload

__all__ = ("PeerResult", "run_peers", "PEERS")

#: The Erlang/OTP sender, an escript shipped beside this module (package data).
_ESCRIPT: Final = "sender.escript"


@dataclass
class PeerResult:
    """What one peer claimed, and what the receiver saw."""

    name: str
    returned: list[int] = field(default_factory=list)
    raised: dict[str, int] = field(default_factory=dict)
    strays: int | None = None
    cpu: float = 0.0
    wall: float = 0.0
    delivered: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def lost(self) -> int:
        return len(set(self.returned) - set(self.delivered))

    @property
    def phantom(self) -> int:
        return len(set(self.delivered) - set(self.returned))

    @property
    def duplicated(self) -> int:
        return len(self.delivered) - len(set(self.delivered))

    @property
    def cpu_share(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        if self.skipped:
            return {"peer": self.name, "skipped": self.skipped}
        return {
            "peer": self.name,
            "returned": len(self.returned),
            "raised": self.raised,
            "delivered": len(self.delivered),
            "lost": self.lost,
            "phantom": self.phantom,
            "duplicated": self.duplicated,
            "strays": self.strays,
            "cpu_seconds": round(self.cpu, 3),
            "wall_seconds": round(self.wall, 3),
            "cpu_share": round(self.cpu_share, 4),
            "notes": self.notes,
        }


PEERS = ("genudp", "asyncio", "otp-inet", "otp-socket")
_TITLES = {
    "genudp": "genudp",
    "asyncio": "asyncio endpoint",
    "otp-inet": "OTP gen_udp inet",
    "otp-socket": "OTP gen_udp socket",
}


def run_peers(count: int = 2000, limit: float = 60.0) -> list[PeerResult]:
    """Run every peer once against a fresh slow receiver; skip those not installed."""
    results = []
    escript = shutil.which("escript")
    with tempfile.TemporaryDirectory(prefix="genudp-compare-") as tmp:
        # Copied out of the package: an installed wheel may live in a zip, and escript wants a path.
        script = os.path.join(tmp, _ESCRIPT)
        with open(script, "w") as f:
            f.write(importlib.resources.files(__package__).joinpath(_ESCRIPT).read_text())
        for peer in PEERS:
            name = _TITLES[peer]
            if peer.startswith("otp") and escript is None:
                results.append(PeerResult(name, skipped="escript not on PATH (Debian: apt-get install erlang-nox)"))
                continue
            if peer.startswith("otp"):
                assert escript is not None
                argv = [escript, script, peer.split("-")[1]]
            else:
                argv = [sys.executable, "-m", "genudp._harness.compare", peer]
            results.append(_run_peer(name, argv, count, limit))
    return results


def _run_peer(name: str, argv: list[str], count: int, limit: float) -> PeerResult:
    config = Config(threads=0, processes=1, per_sender=count, signal_hz=0, deadline=limit)
    with tempfile.TemporaryDirectory(prefix="genudp-peer-") as tmp:
        path = os.path.join(tmp, "receiver.sock")
        receiver = Receiver(path, config, None, count)
        receiver.start()
        proc = subprocess.Popen(
            [*argv, path, str(count), str(config.payload)],
            env=child_env(),
            process_group=0,  # the terminal's Ctrl-C is the parent's to answer (as_child)
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            out, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            result = PeerResult(name, notes=[f"did not finish within {limit:g} s: killed"])
        else:
            result = _parse(name, out)
            if proc.returncode != 0:
                result.notes.append(f"exited with status {proc.returncode}")
        receiver.stop()
    result.delivered = [seq for _sid, seq in receiver.delivered]
    return result


def _parse(name: str, out: bytes) -> PeerResult:
    result = PeerResult(name)
    for raw in out.decode(errors="replace").splitlines():
        key, _, value = raw.partition(" ")
        if key == "OK":
            result.returned = [int(x) for x in value.split(",") if x]
        elif key == "ERRORS":
            for item in filter(None, value.split(",")):
                reason, _, n = item.partition("=")
                result.raised[reason] = int(n)
        elif key == "STRAYS":
            result.strays = None if value == "-" else int(value)
        elif key == "CPU":
            cpu, wall = value.split()
            result.cpu, result.wall = float(cpu), float(wall)
        elif key == "NOTE":
            result.notes.append(value)
    return result


# -- the Python peers, run as ``python -m genudp._harness.compare PEER PATH COUNT SIZE`` ---------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(returned: list[int], raised: Counter[str], strays: int | None, cpu: float, wall: float) -> None:
    print("OK " + ",".join(map(str, returned)))
    print("ERRORS " + ",".join(f"{k}={v}" for k, v in raised.items()))
    print("STRAYS " + ("-" if strays is None else str(strays)))
    print(f"CPU {cpu:.3f} {wall:.3f}")


def _genudp_peer(path: str, count: int, size: int) -> None:
    returned: list[int] = []
    raised: Counter[str] = Counter()
    with genudp.open(family="local", active=False) as sock:
        cpu, wall = _cpu(), time.monotonic()
        for seq in range(count):
            try:
                sock.send(payload(0, seq, size), path)
            except Error as exc:
                raised[exc.reason] += 1
                time.sleep(0.001)  # the application's back-off after a failed send
                continue
            returned.append(seq)
        cpu, wall = _cpu() - cpu, time.monotonic() - wall
    _report(returned, raised, len(genudp.self().messages()), cpu, wall)


def _asyncio_peer(path: str, count: int, size: int) -> None:
    raised: Counter[str] = Counter()

    class Protocol(asyncio.DatagramProtocol):
        def error_received(self, exc: Exception) -> None:
            raised[type(exc).__name__] += 1

    async def main() -> tuple[float, float, int]:
        loop = asyncio.get_running_loop()
        endpoint = await loop.create_datagram_endpoint(Protocol, family=socket.AF_UNIX)
        # The selector transport has get_write_buffer_size(); typeshed's DatagramTransport not.
        transport: Any = endpoint[0]
        cpu, wall = _cpu(), time.monotonic()
        peak = 0
        for seq in range(count):
            # sendto never blocks and never fails on a full receiver: it buffers, without bound.
            transport.sendto(payload(0, seq, size), path)
            peak = max(peak, transport.get_write_buffer_size())
            if seq % 64 == 63:
                await asyncio.sleep(0)
        while transport.get_write_buffer_size():
            await asyncio.sleep(0.001)  # wait for the transport to drain its buffer
        cpu, wall = _cpu() - cpu, time.monotonic() - wall
        transport.close()
        return cpu, wall, peak

    cpu, wall, peak = asyncio.run(main())
    _report(list(range(count)), raised, None, cpu, wall)
    print(f"NOTE write buffer peaked at {peak} bytes; sendto() never reports a full receiver")


def main(argv: list[str]) -> int:
    as_child()
    peer, path, count, size = argv[0], argv[1], int(argv[2]), int(argv[3])
    if peer == "genudp":
        _genudp_peer(path, count, size)
    elif peer == "asyncio":
        _asyncio_peer(path, count, size)
    else:
        print(f"unknown peer {peer!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
