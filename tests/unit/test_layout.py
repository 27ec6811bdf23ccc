"""The package's shape: no import cycle among its modules, type-only imports included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = [
    Path(__file__).resolve().parents[2] / "functions" / "lyrics_to_song",
    Path(__file__).resolve().parents[2] / "functions" / "lyrics_cli",
    Path(__file__).resolve().parents[2] / "infra" / "local_cloud",
]


def _modules() -> dict[str, Path]:
    found = {}
    for root in PACKAGES:
        for path in root.rglob("*.py"):
            parts = path.relative_to(root.parent).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's own modules that `name` imports, wherever in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        found |= {t for t in targets if t in modules and t != name}
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        trail.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycles.append([*trail[trail.index(other) :], other])
            elif other not in state:
                visit(other, trail)
        trail.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_the_command_line_imports_nothing_of_the_local_cloud() -> None:
    """The product's command line stands alone: `demo` and `local` are found as entry
    points that the local cloud offers, so the two packages import one way only."""
    modules = _modules()
    cli = {name: path for name, path in modules.items() if name.startswith("lyrics_cli")}
    imported = {m for name, path in cli.items() for m in _imports(name, path, modules)}
    assert not {m for m in imported if m.startswith("local_cloud")}
    functions = {n: p for n, p in modules.items() if n.startswith("lyrics_to_song")}
    assert not {
        m
        for n, p in functions.items()
        for m in _imports(n, p, modules)
        if "lyrics_to_song" not in m
    }, "the Lambda package imports neither"
