"""Interpreter exit keeps the promise: every socket still open is closed and its file unlinked,
whoever owns it (the main thread, a spawned process's daemon thread, an asyncio task that never
ended), so that the same program runs again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = textwrap.dedent(
    """
    import asyncio, os, sys
    import genudp

    d = sys.argv[1]

    def serve(parent):
        genudp.open(path=f"{d}/spawned.sock", active=True)
        parent.send("bound")
        genudp.receive()  # forever: the daemon thread is still here at exit

    genudp.spawn(serve, genudp.self())
    genudp.receive(lambda m: m == "bound", timeout=30)
    genudp.open(path=f"{d}/main.sock")
    genudp.open(family="inet", ip="127.0.0.1")

    async def forever(bound):
        genudp.open(path=f"{d}/task.sock")
        bound.set()
        await asyncio.Event().wait()

    async def start():
        bound = asyncio.Event()
        asyncio.get_running_loop().create_task(forever(bound))
        await bound.wait()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start())  # the task is left pending, its loop never closed
    print(sorted(os.listdir(d)))
    """
)


def test_exit_closes_every_socket_and_unlinks_its_file_so_the_program_runs_again(tmp_path: Path) -> None:
    for _run in range(2):
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split() == ["['main.sock',", "'spawned.sock',", "'task.sock']"]
        assert os.listdir(tmp_path) == [], f"left behind at exit: {os.listdir(tmp_path)}"
