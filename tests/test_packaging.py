"""The distribution's promises: dependencies, extras, console scripts, and the set-up paths.

CI (`.ci/run`) and the README's commands must install torch 2.13.0 *before* the package (else
pip resolves a multi-GB CUDA build of a newer torch) and must run the same test command.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

RUNTIME = {"torch", "lightning", "h5py", "pyyaml", "numpy", "rich", "matplotlib"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


@pytest.fixture(scope="module")
def project(repo_root: Path) -> dict:
    # Only the pyproject tests need tomllib (standard library from Python 3.11); the CI,
    # Makefile and README checks below run on Python 3.10 too.
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_distribution_name_python_and_runtime_dependencies(project):
    assert project["name"] == "spanet-lite"
    assert project["requires-python"] == ">=3.10"
    assert _names(project["dependencies"]) == RUNTIME


def test_extras(project):
    extras = {name: _names(requirements) for name, requirements in project["optional-dependencies"].items()}
    assert extras["test"] >= {"pytest", "hypothesis"}
    assert extras["onnx"] >= {"onnx", "onnxruntime"}
    assert extras["dev"] >= extras["test"] | {"ruff", "mypy"}
    assert extras["tune"] >= {"optuna"}


def test_console_scripts(project):
    assert set(project["scripts"]) == {f"spanet-{name}" for name in
                                       ("train", "test", "predict", "inspect", "generate", "export",
                                                    "data", "tune")}
    assert all(target.startswith("spanet_lite.cli.") and target.endswith(":main")
               for target in project["scripts"].values())


def test_ci_installs_torch_first_and_runs_the_tests_then_the_readme(repo_root: Path):
    script = repo_root / ".ci" / "run"
    text = script.read_text(encoding="utf-8")
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in text
    assert "export CI=" in text  # a missing SPANet reference fails CI instead of skipping
    torch = text.index("pip install --quiet torch==2.13.0")
    package = text.index("pip install --quiet -e '.[test,onnx,pythia,tune]'")
    assert torch < package
    assert text.rstrip().splitlines()[-2:] == ["make test", "make readme-check"]


def test_makefile_setup_pins_ci_s_torch_before_the_package(repo_root: Path):
    text = (repo_root / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"^TORCH_VERSION := (\S+)$", text, re.MULTILINE)
    ci_script = (repo_root / ".ci" / "run").read_text(encoding="utf-8")
    ci = re.search(r"pip install --quiet torch==(\S+)", ci_script)
    assert pinned and ci and pinned.group(1) == ci.group(1)  # one torch for `make setup` and CI
    assert text.index("pip install torch==$(TORCH_VERSION)") < text.index("pip install -e '.[$(EXTRAS)]'")
    for target in ("setup", "test", "example", "lint", "readme-check"):
        assert re.search(rf"^{target}:", text, re.MULTILINE), target


def test_readme_names_the_command_ci_runs(repo_root: Path):
    assert "make test" in (repo_root / "README.md").read_text(encoding="utf-8")


def test_missing_spanet_reference_skips_with_its_reason_but_fails_under_ci(tmp_path: Path, monkeypatch):
    from conftest import require_reference

    assert require_reference(tmp_path) == tmp_path
    missing = tmp_path / "absent"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"reference files not found at {missing}$"):
        require_reference(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_reference(missing)


def test_a_missing_optional_extra_skips_with_its_name_but_fails_under_ci(monkeypatch):
    from conftest import needs, require_extra

    marker = needs("json", "no_such_module_for_this_test", extra="onnx").mark
    assert marker.args == ("onnx", ("no_such_module_for_this_test",))
    assert needs("json", extra="onnx").mark.args == ("onnx", ())
    monkeypatch.delenv("CI", raising=False)
    require_extra("onnx", ())
    with pytest.raises(pytest.skip.Exception, match=r"optional extra 'onnx' not installed "
                                                    r"\(no_such_module_for_this_test\): pip install"):
        require_extra(*marker.args)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI installs every extra"):
        require_extra(*marker.args)
