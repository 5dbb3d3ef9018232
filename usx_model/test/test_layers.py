"""The core's layers, read from the imports themselves (AST, no module is run).

- ``base``: the shared vocabulary; imports no other usx package.
- runtime stages (what a node or the spine completer runs on a patient): import only
  ``base`` and the stages below them, never the simulators, the evaluation harness,
  datasets, training, benchmarks or the CLI.
- no import cycle between the top-level packages of ``usx_model``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import usx_model

PKG_DIR = Path(usx_model.__file__).parent

#: Runtime stages, lowest first: a stage may import ``base`` and any stage before it.
RUNTIME_STAGES = (
    "ops",
    "tracking",
    "segmentation",
    "calibration",
    "compounding",
    "registration",
    "ingest",
    "levels",
    "metrics",
    "network",
    "completion",
)
#: Everything a runtime stage must never reach.
HARNESS = ("sim", "evaluation", "dataset", "train", "bench", "cli")


def _usx_imports(path: Path) -> set[str]:
    """Top-level ``usx_model`` packages that ``path`` imports (absolute imports only)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the project uses absolute imports")
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "usx_model":
                names = [f"usx_model.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "usx_model" and len(parts) > 1:
                out.add(parts[1])
    return out


def _package_of(path: Path) -> str:
    rel = path.relative_to(PKG_DIR)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _graph() -> dict[str, dict[str, set[str]]]:
    """{package: {module path: packages it imports (other than itself)}}."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PKG_DIR.rglob("*.py")):
        pkg = _package_of(path)
        graph.setdefault(pkg, {})[str(path.relative_to(PKG_DIR))] = _usx_imports(path) - {pkg}
    return graph


def test_base_imports_no_other_usx_package():
    offenders = {m: sorted(i) for m, i in _graph()["base"].items() if i}
    assert offenders == {}


@pytest.mark.parametrize("stage", RUNTIME_STAGES)
def test_runtime_stage_imports_only_base_and_lower_stages(stage):
    allowed = {"base", "weights", *RUNTIME_STAGES[: RUNTIME_STAGES.index(stage)]}
    offenders = {m: sorted(i - allowed) for m, i in _graph()[stage].items() if i - allowed}
    assert offenders == {}, f"{stage} may import only {sorted(allowed)}"


def test_runtime_stages_never_import_the_harness():
    graph = _graph()
    offenders = {
        m: sorted(i & set(HARNESS))
        for stage in RUNTIME_STAGES
        for m, i in graph[stage].items()
        if i & set(HARNESS)
    }
    assert offenders == {}


def test_every_package_has_a_layer():
    """A new top-level package must be placed in a layer (here) before it lands."""
    known = {"base", "weights", "__init__", *RUNTIME_STAGES, *HARNESS}
    assert set(_graph()) - known == set()


def test_no_package_level_import_cycle():
    edges = {pkg: set().union(*mods.values()) for pkg, mods in _graph().items()}
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done

    def visit(pkg: str, trail: list[str]) -> None:
        state[pkg] = 1
        for nxt in sorted(edges.get(pkg, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, pkg, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, pkg])
        state[pkg] = 2

    for pkg in sorted(edges):
        if pkg not in state:
            visit(pkg, [])


def test_the_checker_sees_a_violation(tmp_path):
    """The AST reader finds both import forms (a checker that sees nothing passes anything)."""
    mod = tmp_path / "m.py"
    mod.write_text("import usx_model.sim.xray\nfrom usx_model import evaluation\n")
    assert _usx_imports(mod) == {"sim", "evaluation"}
