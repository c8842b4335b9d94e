"""Fixtures every test module may use: where SPANet's reference files are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
REFERENCE_DIR = SHARED_DIR / "reference" / "semi_leptonic_ttH"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """SPANet's own ttH example (event file, options file, 1,000-event HDF5), read-only."""
    if not REFERENCE_DIR.is_dir():
        pytest.fail(f"SPANet reference files not found at {REFERENCE_DIR}: put ../shared beside the repo")
    return REFERENCE_DIR
