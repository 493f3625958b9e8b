"""The house plan (README, "Architecture"): no module imports a later stage, nothing imports the
pipeline but the CLI, and a report never needs torch.

Imports are read with ``ast`` from the source (module level and inside functions alike), so a
lazy import counts as much as one at the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "layergain"

#: The stages in data-flow order; a module may import its own stage and the ones before it.
#: Stages of one floor (probes, similarity, transferability) do not import each other.
FLOORS: list[tuple[str, ...]] = [
    ("errors", "validation", "schema", "config", "parallel", "_interrupt", "_files", "__init__"),  # ground floor
    ("data",),
    ("models",),
    ("features", "extraction"),  # extraction.py: the features of a study's networks (belongs in features/)
    ("probes", "similarity", "transferability"),
    ("stats", "leakage"),  # leakage: duplicates and the order check, which runs probes
    ("results",),
    ("report",),
    ("pipeline", "planning"),  # planning: counts and times a run before it runs (beside the pipeline)
    ("cli",),
]
GROUND = FLOORS[0]
#: Modules that belong to another stage than their path says.
STAGE_OF = {"extraction": "features"}
#: Imports known to break the plan, each with what fixes it (none may be added).
KNOWN: dict[tuple[str, str], str] = {}
TORCH = ("torch", "torchvision", "timm")


def _stage(module: str) -> str:
    """``layergain.report.fmt`` -> ``report``; ``layergain`` -> ``__init__``."""
    parts = module.split(".")
    stage = parts[1] if len(parts) > 1 else "__init__"
    return STAGE_OF.get(stage, stage)


def _floor(stage: str) -> int:
    for k, stages in enumerate(FLOORS):
        if stage in stages:
            return k
    raise AssertionError(f"module layergain.{stage} is on no floor of the plan; add it to FLOORS (and the README)")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``module`` imports (absolute names; ``from layergain import schema`` -> layergain.schema)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from layergain import schema`: the submodule itself
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


GRAPH = {name: _imports(path, name) for name, path in MODULES.items()}


def test_every_module_is_on_a_floor():
    for name in MODULES:
        _floor(_stage(name))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_back_up(module):
    here = _stage(module)
    for target in sorted(GRAPH[module]):
        if not target.startswith("layergain") or target == "layergain" and here == "__init__":
            continue
        there = _stage(target)
        if there == here or (here in GROUND and there in GROUND) or (module, target) in KNOWN:
            continue
        assert _floor(there) < _floor(here), (
            f"{module} imports {target}: layergain.{there} is not before layergain.{here} in the plan "
            f"({' -> '.join('/'.join(f) for f in FLOORS[1:])})"
        )


def test_known_exceptions_still_exist():
    for module, target in KNOWN:
        assert target in GRAPH[module], f"{module} no longer imports {target}: remove it from KNOWN"


def test_only_the_cli_imports_the_pipeline():
    users = sorted(m for m, targets in GRAPH.items() if any(t.startswith("layergain.pipeline") for t in targets))
    assert users == ["layergain.cli"]


def _reachable(start: list[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in MODULES:
            continue
        seen.add(name)
        todo += [t for t in GRAPH[name] if t.startswith("layergain")]
        todo += [p for p in (name.rpartition(".")[0],) if p]  # importing a.b runs a/__init__.py
    return seen


def test_a_report_never_imports_torch():
    report = [m for m in MODULES if _stage(m) == "report"]
    for name in sorted(_reachable(report)):
        heavy = sorted(t for t in GRAPH[name] if t.split(".")[0] in TORCH)
        assert not heavy, f"{name} (reached from layergain.report) imports {heavy}"
    # and at run time: rebuilding a report from results.nc loads no torch module
    code = ("import sys, layergain.report, layergain.report.rebuild, layergain.results.io; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_the_cli_starts_without_torch():
    # `layergain --help` and option parsing stay fast: the configs the CLI is built from are ground floor.
    code = ("import sys, layergain.cli; layergain.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'xarray')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
