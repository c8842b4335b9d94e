"""Is a test file the run's training file? Scores on training events are not test scores.

Two files are the same events when they are the same path, or when their inputs agree on the
first events: a SHA-256 over every ``INPUTS/...`` dataset's first :data:`FIRST_EVENTS` rows
(name, dtype and bytes). That catches a copy, a file regenerated with the same seed, and a
``spanet-predict`` output of the training file (which copies its INPUTS), while reading a few
hundred kilobytes at most.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from spanet_lite.errors import SpanetWarning

if TYPE_CHECKING:
    from spanet_lite.evaluation.run import Run

FIRST_EVENTS = 4096


def first_events_digest(path: str | Path, events: int = FIRST_EVENTS) -> str | None:
    """SHA-256 of the first ``events`` rows of every INPUTS dataset; None if unreadable."""
    try:
        with h5py.File(path, "r") as file:
            group = file.get("INPUTS")
            if not isinstance(group, h5py.Group):
                return None
            names: list[str] = []

            def collect(name: str, item: object) -> None:
                if isinstance(item, h5py.Dataset):
                    names.append(name)

            group.visititems(collect)
            digest = hashlib.sha256()
            for name in sorted(names):
                values = np.ascontiguousarray(group[name][:events])
                digest.update(f"{name}:{values.dtype.str}:{values.shape}\n".encode())
                digest.update(values.tobytes())
            return digest.hexdigest()
    except (OSError, KeyError, ValueError):
        return None


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
    ours = first_events_digest(test)
    if ours is not None and ours == first_events_digest(training):
        return "same events"
    return None


def warn_if_training_file(run: Run, test_file: str | Path) -> None:
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
