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
        assert row["ratios"][0] == pytest.approx(
            row["values"][0] / next(r["values"][0] for r in recv if r["size"] == row["size"] and not r["candidate"])
        )
        assert row["verdict"] in (("ok", "MISSED") if row["candidate"] else (None,))
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


def test_a_chunked_client_answers_each_go_with_one_result(tmp_path: Path) -> None:
    """The worker protocol itself: READY, then one RESULT per ``GO K``, then exit on END."""
    path = str(tmp_path / "echo.sock")
    workers = [sys.executable, "-m", "genudp_bench.workers"]
    server = subprocess.Popen([*workers, "raw_echo", path, "30", "64"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "READY"
        client = subprocess.run(
            [*workers, "genudp_ping", path, "30", "64", "--chunked"],
            input="GO 10\nGO 20\nEND\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        lines = client.stdout.splitlines()
        assert lines[0] == "READY"
        counts = [json.loads(line.removeprefix("RESULT "))["count"] for line in lines[1:]]
        assert counts == [10, 20]
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
