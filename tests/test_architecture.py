"""The package's layers, read from its source: no import circles, no import against the data flow.

Each module of ``src/hashlearn`` belongs to one layer; a module may import from its own layer and
the layers below it, never from a layer above. Imports inside functions count like any other (a
lazy import is still a dependency). The package root (``hashlearn/__init__.py``) is the public
facade: it may import from every layer, and nothing inside the package imports it.
"""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "hashlearn"

# Lowest first. A module belongs to the first layer one of whose prefixes it starts with.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("hashlearn.exceptions", "hashlearn._validation", "hashlearn._version",
              "hashlearn._params", "hashlearn._registry", "hashlearn._io", "hashlearn._parallel",
              "hashlearn._table", "hashlearn._progress", "hashlearn._json",
              "hashlearn._imaging", "hashlearn._locking")),
    ("codes", ("hashlearn.codes",)),
    ("datasets", ("hashlearn.datasets",)),
    ("features", ("hashlearn.features",)),
    ("hashers", ("hashlearn.hashers",)),
    ("index", ("hashlearn.index",)),
    ("evaluation", ("hashlearn.evaluation",)),
    ("experiments", ("hashlearn.experiments", "hashlearn.report")),
    ("encoding", ("hashlearn.encoding",)),
    ("distributed", ("hashlearn.distributed",)),
    ("serve", ("hashlearn.serve",)),
    ("cli", ("hashlearn.cli", "hashlearn.__main__")),
]  # fmt: skip

# Modules that may import torch at module level (everything else imports it lazily, if at all).
TORCH_MODULES = ("hashlearn.hashers.deep",)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str) -> str | None:
    """The module or package of ``hashlearn`` that ``name`` (maybe ``module.attribute``) names."""
    parts = name.split(".")
    while parts:
        candidate = SRC.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return None


def _imports(path: pathlib.Path) -> list[tuple[str, int, bool]]:
    """``(imported hashlearn module, line, at module level)`` for every import in ``path``."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names = [origin] + [f"{origin}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "hashlearn" or name.startswith("hashlearn."):
                target = _resolve(name)
                if target and target != module:
                    found.append((target, node.lineno, id(node) in top_level))
    return found


def _layer(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {module: _imports(path) for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    for module in MODULES:
        if module != "hashlearn":
            _layer(module)


def test_no_import_goes_up_a_layer_or_into_the_root():
    wrong = []
    for module, imports in GRAPH.items():
        if module == "hashlearn":
            continue
        for target, line, _ in imports:
            if target == "hashlearn":
                wrong.append(f"{module}:{line} imports the package root")
            elif _layer(target) > _layer(module):
                wrong.append(
                    f"{module}:{line} ({LAYERS[_layer(module)][0]}) imports {target} "
                    f"({LAYERS[_layer(target)][0]})"
                )
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles():
    # Every import counts, also one inside a function: a circle there is still a circle in the
    # design. A module importing its own package counts as importing the package's __init__.
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in GRAPH.items():
        for target, _, _ in imports:
            if module != "hashlearn" and target != "hashlearn":
                edges[module].add(target)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_torch_is_imported_at_module_level_only_by_deep_modules(module):
    if module.startswith(TORCH_MODULES):
        return
    tree = ast.parse(MODULES[module].read_text())
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        assert not any(n == "torch" or n.startswith("torch.") for n in names), (
            f"{module} imports torch at module level"
        )
