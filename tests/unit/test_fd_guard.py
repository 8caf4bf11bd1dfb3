"""The fd guard is one construct, written the same way at every site (``_socket.py``'s essay).

A helper function would not do: a signal handler may raise as the helper returns, after it took
the entry and before the caller's ``try``. So the construct is a shape, and this test holds every
site of it to that shape by reading the source: the entry (``users.append(None)``) is the first
statement of a ``try`` whose ``finally`` gives it back first thing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import genudp

SOURCES = sorted(Path(genudp.__file__).parent.glob("*.py"))


def _is_call(node: ast.stmt, method: str) -> bool:
    """``users.append(...)``, ``self._users.append(...)`` and the like."""
    if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
        return False
    func = node.value.func
    if not isinstance(func, ast.Attribute) or func.attr != method:
        return False
    target = func.value
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    return name in ("users", "_users")


def _gives_back_first(final: list[ast.stmt]) -> bool:
    first = final[0]
    if _is_call(first, "pop"):
        return True
    # ``if not done: users.pop() ...``: the entry is given back unless it was handed on.
    return isinstance(first, ast.If) and _is_call(first.body[0], "pop")


def guard_sites(paths: list[Path]) -> list[tuple[str, int, bool]]:
    """Every place that takes an entry: (file, line, whether it has the shape)."""
    found = []
    for path in paths:
        tree = ast.parse(path.read_text())
        in_try_head: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and node.body and _is_call(node.body[0], "append"):
                in_try_head.add(id(node.body[0]))
                found.append(
                    (path.name, node.body[0].lineno, bool(node.finalbody) and _gives_back_first(node.finalbody))
                )
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and _is_call(node, "append") and id(node) not in in_try_head:
                found.append((path.name, node.lineno, False))
    return found


def test_every_fd_guard_entry_is_the_first_statement_of_the_try_that_gives_it_back() -> None:
    sites = guard_sites(SOURCES)
    # send, recv, the slow recv, asend, arecv, and the asyncio registration: a new site is fine,
    # a site of another shape is not.
    assert len(sites) >= 6, sites
    bad = [f"{name}:{line}" for name, line, ok in sites if not ok]
    assert not bad, f"fd guard entries not taken as the first statement of their try/finally: {bad}"


GOOD = """
def send(self):
    users = self._users
    try:
        users.append(None)
        work()
    finally:
        users.pop()
"""

HELPER = """
def _enter(self):
    self._users.append(None)
    if self._state:
        raise E
"""

LATE = """
def recv(self):
    users = self._users
    check()
    try:
        check()
        users.append(None)
    finally:
        users.pop()
"""


def test_the_checker_tells_the_shape_from_its_look_alikes(tmp_path: Path) -> None:
    files = []
    for name, text in (("good", GOOD), ("helper", HELPER), ("late", LATE)):
        files.append(tmp_path / f"{name}.py")
        files[-1].write_text(text)
    verdicts = {name: ok for name, _line, ok in guard_sites(files)}
    assert verdicts == {"good.py": True, "helper.py": False, "late.py": False}
