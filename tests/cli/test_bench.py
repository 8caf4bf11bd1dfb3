"""``genudp bench`` runs end to end and reports what it measured. No timing is asserted here:
these machines are too noisy for that, and the bench itself reports ratios, not verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genudp._cli import main


def test_bench_json_reports_each_pair_with_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--repeats", "1", "--only", "recv", "--only", "blocked-cpu", "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    results = report["results"]
    recv = [r for r in results if r["scenario"] == "recv"]
    assert {(r["size"], r["candidate"]) for r in recv} == {(64, False), (64, True), (1024, False), (1024, True)}
    for row in recv:
        assert len(row["values"]) == 1 and row["values"][0] > 0, "a rate was measured"
        assert len(row["ratios"]) == 1 and row["ratios"][0] > 0
        if not row["candidate"]:
            assert row["ratios"] == [1.0], "the baseline against itself, chunk by chunk"
        assert row["verdict"] in (("ok", "MISSED") if row["candidate"] else (None,))
        per_datagram = row["receiver_cpu_seconds_per_datagram"]
        assert len(per_datagram) == 1 and 0 < per_datagram[0] < 0.01, "a receiver's CPU per datagram"
        per_datagram = row["sender_cpu_seconds_per_datagram"]
        assert len(per_datagram) == 1 and 0 < per_datagram[0] < 0.01, "a sender's CPU per datagram"
    blocked = [r for r in results if r["scenario"] == "blocked-cpu"]
    assert {r["label"] for r in blocked} == {"genudp send (thread)", "genudp asend (asyncio)"}
    assert all(0 <= r["values"][0] < 1 for r in blocked), "a share of one core"


def test_bench_rejects_an_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "nope"]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err


def test_bench_round_trips_run_chunk_by_chunk(capsys: pytest.CaptureFixture[str]) -> None:
    """Round-trip pairs run side by side and take turns (runner.measure_chunked): every pair
    reports a figure per repeat, and the servers served exactly the round trips asked for
    (the runner raises otherwise)."""
    assert main(["bench", "--quick", "--repeats", "2", "--only", "rtt-passive", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert {(r["size"], r["candidate"]) for r in results} == {(64, False), (64, True), (1024, False), (1024, True)}
    for row in results:
        assert len(row["values"]) == 2 and all(v > 0 for v in row["values"]), "us per round trip, per repeat"
        assert len(row["ratios"]) == 2
        if not row["candidate"]:
            assert row["ratios"] == [1.0, 1.0]


def _run_pair(server: list[str], client: list[str], commands: str) -> tuple[list[str], list[str]]:
    """Start a bench worker ``server`` (until READY), run ``client`` fed ``commands`` on stdin;
    return the client's lines and, once it has exited, the server's (after READY)."""
    workers = [sys.executable, "-m", "genudp._harness.bench_workers"]
    proc = subprocess.Popen([*workers, *server], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        done = subprocess.run(
            [*workers, *client], input=commands, capture_output=True, text=True, timeout=60, check=True
        )
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        return done.stdout.splitlines(), out.splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _counts(lines: list[str]) -> list[int]:
    return [json.loads(line.removeprefix("RESULT "))["count"] for line in lines if line.startswith("RESULT ")]


def test_a_chunked_client_answers_each_go_with_one_result(tmp_path: Path) -> None:
    """The worker protocol itself: READY, then one RESULT per ``GO K``, then exit on END."""
    path = str(tmp_path / "echo.sock")
    client, server = _run_pair(
        ["raw_echo", path, "30", "64"], ["genudp_ping", path, "30", "64", "--chunks", "2"], "GO 10\nGO 20\nEND\n"
    )
    assert client[0] == "READY"
    assert _counts(client) == [10, 20]
    assert _counts(server) == [30], "the echo server served every ping"


def test_a_chunked_receiver_reports_each_chunk_as_it_completes(tmp_path: Path) -> None:
    """A receiver given --chunks C reports every N // C datagrams; its sender sends on GO."""
    path = str(tmp_path / "sink.sock")
    sender, receiver = _run_pair(
        ["genudp_recv", path, "40", "64", "--chunks", "2"],
        ["genudp_send", path, "40", "64", "--chunks", "2"],
        "GO 20\nGO 20\nEND\n",
    )
    assert sender[0] == "READY" and _counts(sender) == [20, 20]
    assert _counts(receiver) == [20, 20]
    assert all(json.loads(line.removeprefix("RESULT "))["seconds"] > 0 for line in receiver)
