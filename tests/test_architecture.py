"""The package's layers, enforced: a module imports only from its own package or a lower layer.

Data flows one way (event file -> dataset -> model -> losses -> trainer -> evaluation), so a
lower layer never needs a higher one. Deferred imports inside functions count too: they are
how cycles used to hide.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spanet_lite"

# Lower number = lower layer. Packages on one level must not import each other either.
LAYERS: dict[str, int] = {
    "errors": 0,
    "io": 1,
    "outputs": 1,
    "hdf5_paths": 1,
    "devices": 1,
    "config": 2,
    "physics": 3,
    "dataset": 3,
    "assignment": 3,
    "model": 4,
    "training": 5,
    "evaluation": 6,
    "tuning": 6,
    "cli": 7,
}


def _unit(module: str) -> str | None:
    """``spanet_lite.dataset.reader`` -> ``dataset``; None for the package root itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "spanet_lite" else None


def _imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, imported spanet_lite module) for every import statement in a file.

    ``module`` is the file's dotted name (derived from its place in the package when omitted);
    relative imports are resolved against it, so ``from ..evaluation import x`` counts too.
    """
    if module is None and path.is_relative_to(PACKAGE):
        module = ".".join(("spanet_lite", *path.relative_to(PACKAGE).with_suffix("").parts))
    parts = module.split(".") if module else []
    package = parts if path.name == "__init__.py" else parts[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, target))
            if target == "spanet_lite" or (node.level and not node.module):
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("spanet_lite.")]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_top_level_module_and_package_has_a_layer():
    units = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    units |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert units == set(LAYERS), "add the new package to LAYERS (and docs/ARCHITECTURE.md)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_higher_or_sibling_layer(path: Path):
    own = _unit("spanet_lite." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    assert own is not None
    wrong = []
    for line, name in _imports(path):
        other = _unit(name)
        if other is None or other == own:
            continue
        if LAYERS[other] >= LAYERS[own]:
            wrong.append(f"line {line}: {name} ({other}, layer {LAYERS[other]} >= {own}, {LAYERS[own]})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_deferred_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from spanet_lite.evaluation.metrics import roc_auc\n")
    assert _imports(sample) == [(2, "spanet_lite.evaluation.metrics")]


@pytest.mark.parametrize(("code", "imported"), [
    ("from ..evaluation import metrics\n", ["spanet_lite.evaluation"]),
    ("from . import reader\n", ["spanet_lite.dataset", "spanet_lite.dataset.reader"]),
    ("from .reader import read_block\n", ["spanet_lite.dataset.reader"]),
])
def test_the_checker_resolves_relative_imports(tmp_path, code, imported):
    sample = tmp_path / "sample.py"
    sample.write_text(code)
    assert [name for _, name in _imports(sample, "spanet_lite.dataset.sample")] == imported


def test_the_module_map_in_architecture_md_is_current():
    """docs/ARCHITECTURE.md lists every module with its docstring's first line; regenerate it with
    ``python docs/architecture_map.py`` after adding, moving or re-describing a module."""
    script = PACKAGE.parent / "docs" / "architecture_map.py"
    command = [sys.executable, str(script), "--check"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_module_says_what_it_owns():
    silent = [str(p.relative_to(PACKAGE)) for p in [*_modules(), PACKAGE / "__init__.py"]
              if not (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "").strip()]
    assert not silent, f"modules without a docstring: {silent}"


def test_every_public_function_and_class_of_the_evaluation_api_has_a_docstring():
    """``spanet_lite.evaluation`` is what a notebook calls (``help(...)`` is its manual), so each
    public top-level function and class there says what it is for."""
    silent = []
    for path in sorted((PACKAGE / "evaluation").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            public = isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
            if public and not (ast.get_docstring(node) or "").strip():
                silent.append(f"{path.name}: {node.name}")
    assert not silent, f"public names without a docstring: {silent}"
