"""The A/B harnesses behind every hand-inlined hot path (``benchmarks/micro/``) still run, so
the evidence a ``# PERF:`` comment names can be produced again. Their figures are for reading,
never asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

MICRO = Path(__file__).resolve().parents[2] / "benchmarks" / "micro"
HARNESSES = sorted(p.name for p in MICRO.glob("*.py") if not p.name.startswith("_"))


def test_every_perf_comment_names_a_harness_that_exists() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "genudp"
    named = set()
    for path in src.rglob("*.py"):
        text = path.read_text()
        for comment in re.findall(r"# PERF:.*?(?=\n\s*[^#\s])", text, flags=re.S):
            named.update(re.findall(r"benchmarks/micro/(\w+\.py)", comment))
    assert named, "no # PERF: comment names a harness"
    assert named <= set(HARNESSES), named - set(HARNESSES)


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_runs(harness: str) -> None:
    done = subprocess.run(
        [sys.executable, str(MICRO / harness), "--rounds", "1", "--n", "200"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "rounds of 200" in lines[0]
    assert len([line for line in lines[1:] if re.search(r"\d+\.\d\dx \(", line)]) >= 2, done.stdout
