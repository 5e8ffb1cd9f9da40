"""The package's imports run one way: every import between fastlstm's modules (function-level
ones included, read from the source) goes from a higher layer to a lower one or within one
layer, and no chain of them comes back to where it started. The layers are docs/architecture.md's.
"""

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fastlstm"

# Lower numbers are lower layers. The oracle (the notebooks' NumPy code) sits beside the models:
# the production layers up to the converters may not use it; the apps that compare against it
# (the demo, the benchmarks, the walkthrough and trace commands) may.
LAYERS = {
    "_core": 0, "_kernels": 0, "_version": 0, "_names": 0, "_validation": 0, "_tables": 0,
    "_config": 0, "_governor": 0, "_records": 0, "_params": 0, "_buffers": 0,
    "reference": 1, "_reference_layer": 1,
    "lstm": 2, "layer": 2,
    "training": 3, "regressor": 4,
    "interop": 5, "torch": 5,
    "data": 6, "datasets": 6, "tracing": 6, "forecasting": 6, "benchmark": 6,
    "cli": 7, "__main__": 7,
    "__init__": 8,
}
ORACLE = {"reference", "_reference_layer"}
PRODUCTION = {m for m, k in LAYERS.items() if 2 <= k <= 5}

def _module_of(path):
    """The top-level module (or subpackage) of fastlstm a source file belongs to."""
    return path.relative_to(SRC).with_suffix("").parts[0]


def _imports(path):
    """fastlstm modules that a source file imports, anywhere in it (Cython files: their
    import lines, which are Python's)."""
    text = path.read_text()
    if path.suffix == ".pyx":
        text = "\n".join(line.strip().replace(" cimport ", " import ")
                         for line in text.splitlines()
                         if re.match(r"\s*(from|import)\s+(\.|fastlstm)", line))
    tree = ast.parse(text, filename=str(path))
    package = path.relative_to(SRC).parent.parts  # () at the top, ("interop",) in a subpackage
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the file's own package
                base = list(package[:len(package) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
                if target:
                    found.add(target[0])
                else:  # from . import x, y at the top of fastlstm
                    found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith("fastlstm"):
                parts = node.module.split(".")
                found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "fastlstm":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def _graph():
    graph = {}
    for path in sorted(SRC.rglob("*.py")) + sorted(SRC.rglob("*.pyx")):
        module = _module_of(path)
        graph.setdefault(module, set()).update(_imports(path) - {module})
    return graph


def test_every_module_has_a_layer():
    assert set(_graph()) <= set(LAYERS), set(_graph()) - set(LAYERS)


def test_imports_run_from_higher_layers_to_lower_ones():
    graph = _graph()
    against = {(a, b) for a, targets in graph.items() for b in targets
               if b in LAYERS and LAYERS[b] > LAYERS[a]}
    oracle = {(a, b) for a, targets in graph.items() for b in targets
              if a in PRODUCTION and b in ORACLE}
    assert not against | oracle, f"imports against the direction: {sorted(against | oracle)}"


def test_no_import_cycle():
    graph = _graph()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                pytest.fail(f"import cycle: {' -> '.join(stack[stack.index(nxt):] + [nxt])}")
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_relative_imports_of_subpackages_are_read():
    """``from ..layer import`` inside a subpackage counts as an import of ``layer`` (the walk
    would miss every import of the converters and the PyTorch module otherwise)."""
    graph = _graph()
    assert "layer" in graph["interop"] and "layer" in graph["torch"]
    assert "_core" in graph["cli"] or "lstm" in graph["cli"]
