"""Fixtures every test module may use: a generated ttH dataset, and SPANet's reference files.

Two kinds of tests need a real file:

* tests that only need *a* dataset use ``generated_tth``: the suite writes it with the
  generator (1,000 events in a fraction of a second), so they run in a bare clone;
* tests that prove compatibility with SPANet's own files use ``reference_dir``
  (``../shared/reference/semi_leptonic_ttH``, beside the clone). Without it they are skipped
  with one reason; with the environment variable ``CI`` set a missing reference is a failure,
  so CI never skips them silently.

Tests of an optional extra (onnx, pythia, tune) use :func:`needs`: skipped with the extra's name
in a plain install, and a failure under ``CI``, which installs every extra.

The suite runs torch on one thread unless ``OMP_NUM_THREADS`` says otherwise. Its tensors are
small, and on a 2-core machine shared with other work two threads per process spent more time
waiting on each other than computing (a 58 s tuning test took 16 s on one thread). spanet-train
keeps its own default for users (every core); it leaves the thread count alone when the variable
is set, so the subprocesses tests start inherit the setting.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is first imported

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
REFERENCE_DIR = SHARED_DIR / "reference" / "semi_leptonic_ttH"

GENERATED_TTH_EVENTS = 1000
GENERATED_TTH_SEED = 5


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def require_reference(folder: Path) -> Path:
    """``folder`` if it exists; else skip the test with one reason, or fail it when CI is set."""
    if not folder.is_dir():
        reason = f"SPANet compatibility test: SPANet's reference files not found at {folder}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so they must be there)")
        pytest.skip(reason)
    return folder


def needs(*modules: str, extra: str) -> pytest.MarkDecorator:
    """Mark a test of the optional extra ``extra``, which needs ``modules`` (see the module doc)."""
    missing = tuple(m for m in modules if importlib.util.find_spec(m) is None)
    return pytest.mark.needs_extra(extra, missing)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_extra(extra, missing): a test of an optional extra")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs_extra"):
        require_extra(*marker.args)


def require_extra(extra: str, missing: tuple[str, ...]) -> None:
    """Nothing when no module is missing; else skip naming the extra, or fail when CI is set."""
    if missing:
        reason = (f"optional extra '{extra}' not installed ({', '.join(missing)}): "
                  f"pip install 'spanet-lite[{extra}]'")
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, and CI installs every extra)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """SPANet's own ttH example (event file, options file, 1,000-event HDF5), read-only."""
    return require_reference(REFERENCE_DIR)


@pytest.fixture(scope="session")
def generated_tth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like SPANet's example: ``semi_leptonic_ttH.yaml`` and ``example.h5``
    (1,000 generated semi-leptonic ttH / tt+bb events, seed 5; regressions in GeV)."""
    from spanet_lite.physics.generator import PROCESSES, write_file

    folder = tmp_path_factory.mktemp("generated_tth")
    process = PROCESSES["ttH_semilep"]
    (folder / "semi_leptonic_ttH.yaml").write_text(process.event_file_text, encoding="utf-8")
    write_file(folder / "example.h5", process, GENERATED_TTH_EVENTS, GENERATED_TTH_SEED)
    return folder
