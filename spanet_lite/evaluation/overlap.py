"""Is a test file the run's training file? Scores on training events are not test scores.

Two files hold the same events when they are the same path, or when their inputs agree on the
first :data:`FIRST_EVENTS` events: the same ``INPUTS/...`` datasets, masks and integers equal,
floats equal to within :data:`RELATIVE_TOLERANCE` (:data:`ABSOLUTE_TOLERANCE` near zero). That
catches a copy, a ``spanet-predict`` output of the training file (which copies its INPUTS) and
a file regenerated with the same seed (which can differ from the original in the last bits of
a float on another machine, so a bit-exact hash would miss it), while reading a few hundred
kilobytes at most.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from spanet_lite.errors import SpanetWarning
from spanet_lite.evaluation.predict import RUN_ATTRIBUTE

if TYPE_CHECKING:
    from spanet_lite.evaluation.trained import TrainedRun

FIRST_EVENTS = 4096
RELATIVE_TOLERANCE = 1e-4
ABSOLUTE_TOLERANCE = 1e-5  # an angle near 0 computed in float32 on two machines differs by ~1e-7


def first_events(path: str | Path, events: int = FIRST_EVENTS) -> dict[str, np.ndarray] | None:
    """The first ``events`` rows of every ``INPUTS`` dataset (name below INPUTS -> array);
    None if the file cannot be read or has no INPUTS group."""
    try:
        with h5py.File(path, "r") as file:
            if RUN_ATTRIBUTE in file.attrs:  # a spanet-predict output: evaluation refuses it outright
                return None
            group = file.get("INPUTS")
            if not isinstance(group, h5py.Group):
                return None
            names: list[str] = []

            def collect(name: str, item: object) -> None:
                if isinstance(item, h5py.Dataset):
                    names.append(name)

            group.visititems(collect)
            return {name: group[name][:events] for name in names}
    except (OSError, RuntimeError, KeyError, ValueError):  # damaged or odd files: the checks name them
        return None


def same_events(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """True when two :func:`first_events` results hold the same events (see the module doc)."""
    if not a or a.keys() != b.keys():
        return False
    rows = min(len(v) for v in (*a.values(), *b.values()))
    if rows == 0:
        return False
    for name, x in a.items():
        x, y = x[:rows], b[name][:rows]
        if x.shape != y.shape or (x.dtype.kind in "SUOV") != (y.dtype.kind in "SUOV"):  # text vs numbers
            return False
        if np.issubdtype(x.dtype, np.floating) or np.issubdtype(y.dtype, np.floating):
            if not np.allclose(x, y, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def training_file_overlap(training_file: str | Path | None, test_file: str | Path) -> str | None:
    """Why ``test_file`` holds the training events (``"same path"``, ``"same events"``), or None."""
    if not training_file:
        return None
    training, test = Path(training_file), Path(test_file)
    if _same_path(training, test):
        return "same path"
    if not training.is_file():
        return None  # moved or on another machine: nothing to compare with
    ours, theirs = first_events(test), first_events(training)
    if ours is not None and theirs is not None and same_events(ours, theirs):
        return "same events"
    return None


def warn_if_training_file(run: TrainedRun, test_file: str | Path) -> None:
    """Warn (one line, :class:`SpanetWarning`) when ``test_file`` is ``run``'s training file."""
    why = training_file_overlap(run.options.training_file, test_file)
    if why is None:
        return
    detail = "is the run's training file" if why == "same path" else (
        f"holds the same events as the run's training file {run.options.training_file}"
    )
    warnings.warn(
        f"{test_file}: {detail}; these scores are on training events, not independent ones "
        "(generate or hold out a separate test file)",
        SpanetWarning,
        stacklevel=2,
    )
