"""The stream package's structure: no import cycles, and processing free of Faust and Kafka.

Imports are read from the source (every ``import``, at module level, inside functions and
under ``TYPE_CHECKING`` alike), so a cycle cannot hide behind a function-local import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.test_layout import FORBIDDEN, forbidden_imports

ROOT = Path(__file__).resolve().parents[2]
STREAM = ROOT / "stream"
# What processing/ may import from the stream package besides itself: plain interfaces and names.
PROCESSING_MAY_USE = ("stream.processing", "stream.types", "stream.topics")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(STREAM.rglob("*.py"))}


def imported(tree: ast.AST, known: Mapping[str, Path]) -> Iterator[tuple[ast.stmt, str]]:
    """(statement, stream module) for every import of a stream module in ``tree``."""
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from stream.api import queries`` imports the module stream.api.queries.
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in known
                else node.module
                for alias in node.names
            ]
        for name in names:
            if name in known and name != "stream":
                yield node, name  # type: ignore[misc]


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {target for _, target in imported(tree, known) if target != name}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_of(module: str) -> str:
    """``stream.api.views`` -> ``api``; a top-level module is its own package."""
    return module.split(".")[1]


def test_the_graph_is_read() -> None:
    # Guards the tests below against passing vacuously after a move or rename.
    graph = import_graph()
    assert len(graph) >= 40
    assert "stream.processing.customer_state" in graph["stream.processing.records"]
    assert "stream.api.queries" in graph["stream.api.views"]  # from stream.api import queries


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_stream_imports_itself_round_in_a_circle() -> None:
    assert cycles(import_graph()) == []


def test_no_circle_between_the_stream_packages() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if module == "stream":
            continue
        own = package_of(module)
        packages.setdefault(own, set()).update(
            package_of(t) for t in targets if package_of(t) != own
        )
    assert cycles(packages) == [], packages


def test_stream_modules_are_imported_at_the_top_of_a_module() -> None:
    """A function-local import of another stream module is how cycles used to be dodged."""
    known = modules()
    late = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        top = {id(node) for node in tree.body}
        for node, target in imported(tree, known):
            if id(node) not in top:
                late.append(f"{name}:{node.lineno} imports {target} inside a block")
    assert late == []


def test_fanout_the_http_client_never_calls_into_the_http_server() -> None:
    assert "stream.api.views" not in import_graph()["stream.api.fanout"]


def test_processing_imports_no_faust_or_kafka_module() -> None:
    found = []
    for name, path in modules().items():
        if not name.startswith("stream.processing"):
            continue
        source = path.read_text()
        found += forbidden_imports(source, str(path.relative_to(ROOT)))
        for _, target in imported(ast.parse(source), modules()):
            if not target.startswith(PROCESSING_MAY_USE):
                found.append(f"{name} imports {target}")
    assert found == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("stream.processing.runner", FORBIDDEN),
        # The broker-free harness partitions keys with kafka-python's murmur2, as producers do.
        ("stream.testing", FORBIDDEN - {"kafka"}),
    ],
)
def test_the_batch_runner_loads_without_faust_or_aiokafka(
    module: str, forbidden: frozenset[str]
) -> None:
    """What the static check above cannot see: a transitive import of a streaming library."""
    code = (
        f"import sys, {module}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(forbidden)!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
