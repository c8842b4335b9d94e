"""Fixtures every test module may use: a generated ttH dataset, and SPANet's reference files.

Two kinds of tests need a real file:

* tests that only need *a* dataset use ``generated_tth``: the suite writes it with the
  generator (1,000 events in a fraction of a second), so they run in a bare clone;
* tests that prove compatibility with SPANet's own files use ``reference_dir``
  (``../shared/reference/semi_leptonic_ttH``, beside the clone). Without it they are skipped
  with one reason; with the environment variable ``CI`` set a missing reference is a failure,
  so CI never skips them silently.
"""

from __future__ import annotations

import os
from pathlib import Path

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
