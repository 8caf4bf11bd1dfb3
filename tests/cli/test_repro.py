"""``genudp`` and ``genudp repro``: through main([...]) and as the installed executable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from genudp._cli import main
from genudp._harness import compare as _compare


def test_no_arguments_prints_what_it_can_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "repro" in out and "usage: genudp" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("genudp ")


def test_repro_json_balances_the_books(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["repro", "--json", "--datagrams", "800"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "ok"
    assert [r["title"] for r in report["runs"]] == ["wait", "eagain", "timeout 5ms", "wait+2 kills"]
    for run in report["runs"]:
        assert run["attempted"] == 800
        assert run["duplicated"] == run["phantom"] == run["strays"] == run["reordered"] == 0
        assert run["lost"] <= run["lost_allowed"]
        assert run["delivered"] == run["sent"] - run["lost"]


def test_repro_table_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["repro", "--datagrams", "400", "--signal-hz", "0"]) == 0
    out = capsys.readouterr().out
    assert "verdict: ok" in out
    for label in ("attempted", "sent (returned)", "delivered", "lost", "duplicated", "stray messages"):
        assert label in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize(("argv", "text"), [(["--datagrams", "2"], "at least 4"), (["--signal-hz", "-1"], "0 or more")])
def test_repro_rejects_bad_numbers(argv: list[str], text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["repro", *argv]) == 2
    assert text in capsys.readouterr().err


def test_the_installed_executable_runs_repro() -> None:
    exe = shutil.which("genudp")
    argv = [exe] if exe else [sys.executable, "-m", "genudp"]
    proc = subprocess.run(
        [*argv, "repro", "--datagrams", "400"], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: ok" in proc.stdout
    assert proc.stderr == ""  # no progress bar when stderr is not a TTY


def test_compare_runs_every_installed_peer() -> None:
    peers = {p.name: p for p in _compare.run_peers(count=300)}
    mine = peers["genudp"]
    assert (len(mine.returned), mine.lost, mine.duplicated, mine.strays) == (300, 0, 0, 0)
    asyncio_peer = peers["asyncio endpoint"]
    assert asyncio_peer.skipped is None and len(asyncio_peer.delivered) == 300
    if shutil.which("escript") is None:
        print("SKIPPED PART: escript is not installed; Erlang/OTP peers were not run")
        assert peers["OTP gen_udp inet"].skipped
        return
    for name in ("OTP gen_udp inet", "OTP gen_udp socket"):
        peer = peers[name]
        assert peer.skipped is None, peer
        # Whatever each backend does with a full receiver, it must not claim more than arrived.
        assert peer.lost == 0 and peer.phantom == 0, peer.summary()
        assert len(peer.returned) + sum(peer.raised.values()) == 300
