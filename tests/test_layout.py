"""The batch core stays free of streaming libraries: nothing under attribution/ imports them.

The batch engine and the models run where no Kafka client is installed or wanted, and the
stream reuses them; an import of Faust there would tie the two together again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "attribution"
FORBIDDEN = frozenset({"faust", "aiokafka", "kafka", "mode"})
DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__"})


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every import of a forbidden top-level package in ``source``, as ``file:line name``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call):
            # importlib.import_module("faust") or __import__("faust") with a literal name.
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0] if node.args else None
            if (
                called in DYNAMIC_IMPORTERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                names = [first.value]
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"{filename}:{getattr(node, 'lineno', 0)} {name}")
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_has_python_files() -> None:
    # Guards the test below against passing vacuously after a move or rename.
    assert CORE / "engine.py" in core_files()
    assert len(core_files()) >= 10


def test_attribution_imports_no_streaming_library() -> None:
    found = [
        hit
        for path in core_files()
        for hit in forbidden_imports(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == [], "attribution/ must not import streaming libraries: " + ", ".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import faust",
        "import os, aiokafka.producer",
        "from kafka import KafkaProducer",
        "from mode.utils import x",
        "def f():\n    import faust.web\n",
        "import importlib\nimportlib.import_module('aiokafka')",
        "__import__('kafka.admin')",
        "import faust as stream_lib",
    ],
)
def test_the_check_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import os\nimport numpy as np",
        "from . import kafka",  # a relative module that happens to share the name
        "from .mode import settings",
        "import kafkaesque",
        "import modes",
        "from attribution.paths import PathTable",
        "importlib.import_module(module_name)",
    ],
)
def test_the_check_allows_other_imports(source: str) -> None:
    assert forbidden_imports(source) == [], source
