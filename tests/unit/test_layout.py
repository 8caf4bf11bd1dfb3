"""The layout's rules (shared/ARCHITECTURE.md), held by reading the source: no import cycle at
run time, the pure core imports no I/O, the command line and the harness use only the public
API, and no module or class grows back into the 2,000-line heart this tree was split from."""

from __future__ import annotations

import ast
from pathlib import Path

import genudp

PACKAGE = Path(genudp.__file__).parent
PURE = ("_errors", "_address", "_options", "_messages", "_counters")
IO_MODULES = {"socket", "select", "selectors", "threading", "asyncio", "_thread", "mmap", "ctypes"}
#: What a Socket or a Pid keeps to itself.
PRIVATE_ATTRIBUTES = {
    name for cls in (genudp.Socket, genudp.Pid) for name in cls.__slots__ if name.startswith("_") and name[1] != "_"
}
MAX_MODULE_LINES = 700
MAX_CLASS_LINES = 420


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it is imported: module level, outside ``if TYPE_CHECKING``
    (imports inside functions run later, on first use, and cannot make a cycle at import)."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                break
            if isinstance(sub, ast.Import):
                found.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom):
                if sub.level:
                    base = package.rsplit(".", sub.level - 1)[0] if sub.level > 1 else package
                    target = f"{base}.{sub.module}" if sub.module else base
                else:
                    target = sub.module or ""
                if sub.module:
                    found.add(target)
                for alias in sub.names:  # ``from . import _hub`` imports a module (its package is
                    found.add(f"{target}.{alias.name}")  # a parent, imported first: no cycle)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in runtime_imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_cycle_at_run_time() -> None:
    edges = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    # genudp/__init__ imports its modules, and they import siblings, never the package itself.
    assert not cycles, cycles


def test_the_pure_core_does_no_io() -> None:
    for name in PURE:
        imports = runtime_imports(PACKAGE / f"{name}.py")
        assert not imports & IO_MODULES, (name, imports & IO_MODULES)
        assert not {m for m in imports if m.startswith("genudp.") and m.split(".")[1] not in PURE}, (name, imports)


def test_the_command_line_and_the_harness_use_only_the_public_api() -> None:
    allowed_private = {"genudp._cli", "genudp._harness"}
    for folder in ("_cli", "_harness"):
        for path in (PACKAGE / folder).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.ImportFrom):
                    base = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
                    if node.level == 1:
                        names = [f"{base}.{node.module}" if node.module else base]
                    elif node.level == 2:
                        names = [f"genudp.{node.module}" if node.module else "genudp"]
                    else:
                        names = [node.module or ""]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    if name.startswith("genudp._"):
                        assert any(name.startswith(ok) for ok in allowed_private), f"{path.name} imports {name}"
            for node in ast.walk(tree):
                # ... nor a private attribute of a genudp object: pid._mailbox and the like.
                if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES:
                    raise AssertionError(f"{path.name}:{node.lineno}: {ast.unparse(node)}")


def test_no_module_or_class_grows_back() -> None:
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                assert size <= MAX_CLASS_LINES, f"{path.name}: class {node.name} is {size} lines"
