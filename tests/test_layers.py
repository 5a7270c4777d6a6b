"""The core's structure: no import cycle, no file over 400 lines, no plugin reaching into private names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The ``engine`` modules imported anywhere in ``tree`` (in functions too; ``if TYPE_CHECKING:`` left out).

    ``from engine.x import y`` is an import of ``engine.x.y`` when that is a module, else of ``engine.x``.
    """
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    """``engine`` module -> the ``engine`` modules it imports."""
    files = {_module_name(p): p for p in ENGINE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        graph[name] = _imports(ast.parse(path.read_text()), package, set(files)) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = walk(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = walk(node)
            if cycle:
                return cycle
    return None


def test_engine_has_no_import_cycle() -> None:
    graph = import_graph()
    assert graph["engine.cli"] and "engine.registry" in graph["engine.cli"]  # the walk sees function-level imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_source_file_over_400_lines() -> None:
    sources = [
        *ENGINE.rglob("*.py"),
        *ROOT.glob("plugins/*/engine_*/**/*.py"),
        *ROOT.glob("contrib/*/engine_*/**/*.py"),
    ]
    long = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these by concern: {long}"


def test_no_plugin_imports_a_private_engine_name() -> None:
    offences = []
    for path in [*ROOT.glob("plugins/**/*.py"), *ROOT.glob("contrib/**/*.py")]:
        if "build" in path.parts or ".egg-info" in str(path):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "engine":
                modules = (node.module or "").split(".")
                names = [a.name for a in node.names]
                if any(part.startswith("_") for part in modules) or any(n.startswith("_") for n in names):
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import {names}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "engine" and any(p.startswith("_") for p in alias.name.split(".")):
                        offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name}")
    assert not offences, "plugins use engine's public API only:\n" + "\n".join(offences)
