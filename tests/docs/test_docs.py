"""Every code block in the README and the docs runs, and the docs site builds with warnings as
errors. A block is run as a program of its own (a fresh interpreter, its own cwd); the README's
blocks run twice in a row, as a newcomer pasting them twice would."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\S*)\n(.*?)^```", re.S | re.M)
#: The set-up commands: CI runs them (.ci/run), not this suite, which they install and start
#: (test_the_setup_commands_are_the_ones_ci_runs).
SETUP = ("pip install . && genudp repro", "pip install -e '.[dev]' && python -m pytest")


def blocks(language: str) -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        for n, (lang, code) in enumerate(FENCE.findall(page.read_text())):
            if lang == language:
                found.append((str(page.relative_to(ROOT)), n, code))
    return found


def test_every_block_is_python_sh_or_text() -> None:
    kinds = {lang for page in PAGES for lang, _ in FENCE.findall(page.read_text())}
    assert kinds <= {"python", "sh", "text", "{toctree}", "{eval-rst}", "{include}"}, kinds


def params(language: str) -> list[object]:
    return [
        pytest.param(page, n, code, id=f"{page}#{n}") for page, n, code in blocks(language) if code.strip() not in SETUP
    ]


@pytest.mark.parametrize(("page", "n", "code"), params("python"))
def test_python_block_runs(page: str, n: int, code: str, tmp_path: Path) -> None:
    for _run in range(2 if page == "README.md" else 1):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=100, check=False
        )
        assert done.returncode == 0, f"{page} block {n}:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert os.listdir(tmp_path) == [], f"{page} block {n} left {os.listdir(tmp_path)}"


@pytest.mark.parametrize(("page", "n", "code"), params("sh"))
def test_shell_block_runs(page: str, n: int, code: str, tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, f"{page} block {n}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_the_setup_commands_are_the_ones_ci_runs() -> None:
    readme = [code.strip() for page, _, code in blocks("sh") if page == "README.md"]
    assert readme == list(SETUP)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "genudp repro" in ci and "pip install -q -e '.[dev]' && python -m pytest" in ci


def test_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    if importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("myst_parser") is None:
        if os.environ.get("CI"):
            pytest.fail("sphinx and myst-parser are missing in CI: they are in the dev extra")
        pytest.skip("SKIPPED: sphinx or myst-parser not installed (pip install -e '.[dev]'); CI builds the docs")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    api = (tmp_path / "html" / "api.html").read_text()
    for name in ("genudp.open", "genudp.Socket.send", "genudp.receive", "genudp.Active", "genudp.aio.receive"):
        assert f'id="{name}"' in api, f"{name} is not in the API reference"
    shutil.rmtree(tmp_path / "html")
