"""``genudp bench`` runs end to end and reports what it measured. No timing is asserted here:
these machines are too noisy for that, and the bench itself reports ratios, not verdicts."""

from __future__ import annotations

import json
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
