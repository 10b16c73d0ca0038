"""No import cycle in the kernel or the API, lazy imports included.

The graph is read from the source with :mod:`ast` rather than with grimp or
import-linter: it needs no dependency, sees every import statement wherever it
sits (module level, inside a function, inside ``try``) and so catches a cycle
hidden behind a function-local import, which is what a lazy import usually
dodges. Imports under ``if TYPE_CHECKING:`` never run and are left out, except
inside ``omniman.models``: the bottom layer, whose modules import one way even for
their annotations (``models.session`` reads through ``models.queries``, which
therefore names no model).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("omniman", "omniman_api")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(module: str, path: Path, known: dict[str, Path], *, type_checking: bool = False) -> set[str]:
    """The modules of ``known`` that ``module`` imports anywhere in its body
    (``type_checking``: under ``if TYPE_CHECKING:`` too)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()

    def add(name: str) -> None:
        # ``from omniman import conf`` names a submodule; ``from omniman.models import
        # Channel`` names the package.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return targets


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    known = _modules()
    return {
        module: _imported(module, path, known, type_checking=type_checking) for module, path in known.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "omniman.models" in graph["omniman.services.locks"]
    assert "omniman.conf" in graph["omniman.apps"]  # imported inside ready()


def test_a_lazy_import_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle_in_omniman_or_omniman_api():
    assert find_cycles(import_graph()) == []


def test_the_graph_sees_type_only_imports_when_asked():
    graph = import_graph(type_checking=True)
    assert "omniman.models" in graph["omniman.registry"]
    assert "omniman.models" not in import_graph()["omniman.registry"]


def test_no_import_cycle_among_the_models_even_for_annotations():
    """``models.session`` ↔ ``models.queries`` met under ``TYPE_CHECKING`` once."""
    graph = {
        module: {target for target in targets if target.startswith("omniman.models")}
        for module, targets in import_graph(type_checking=True).items()
        if module.startswith("omniman.models")
    }
    assert "omniman.models.queries" in graph["omniman.models.session"]
    assert find_cycles(graph) == []
