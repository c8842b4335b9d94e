"""Normalisation statistics and dataset facts that a trained network needs forever.

Computed once from the training split (``spanet_lite.dataset.normalization``), stored
in the run directory as ``statistics.json`` and inside checkpoints, so validation,
testing, prediction and export never need the training file.

Feature transform, per feature of an input (docs/formats.md section 1): ``log`` maps
``x -> log(x + 1)``; then ``(x - mean) / std``. Features without ``normalize`` have
mean 0, std 1; zero-variance features have std 1. Padded slots are set to 0 after
the transform.

Regression transform, per target type: gaussian ``(y - center) / scale`` with mean/std;
laplacian with median / mean absolute deviation from the median; log_gaussian first maps
``y -> sign(y) log(1 + |y|)`` then mean/std.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spanet_lite.errors import InputError
from spanet_lite.io import atomic_write_text, parse_user_json, read_user_text
from spanet_lite.outputs import check_outputs, output


@dataclass
class DatasetStatistics:
    feature_mean: dict[str, list[float]] = field(default_factory=dict)
    """Input name -> per-feature mean (after the log step), event-file feature order."""
    feature_std: dict[str, list[float]] = field(default_factory=dict)
    """Input name -> per-feature std (1.0 where not normalised or zero variance)."""
    regression_center: dict[str, float] = field(default_factory=dict)
    """RegressionTarget.key -> mean (gaussian, log_gaussian) or median (laplacian)."""
    regression_scale: dict[str, float] = field(default_factory=dict)
    """RegressionTarget.key -> std or mean absolute deviation (1.0 if zero)."""
    num_classes: dict[str, int] = field(default_factory=dict)
    """ClassificationTarget.key -> number of classes (max label + 1 over the training split)."""
    max_objects: dict[str, int] = field(default_factory=dict)
    """SEQUENTIAL input -> number of slots in the training file."""
    num_training_events: int = 0
    pair_features: dict[str, list[str]] = field(default_factory=dict)
    """RELATIVE input -> its pairwise features in the training file, event-file order (SPANet: the
    dataset shape (N, W, W) says which); the network's pair embedding is built for these."""
    pair_mean: dict[str, list[float]] = field(default_factory=dict)
    """RELATIVE input -> mean of each pairwise feature over pairs of real objects (after the log step)."""
    pair_std: dict[str, list[float]] = field(default_factory=dict)
    """RELATIVE input -> std of each pairwise feature (1.0 where not normalised or zero variance)."""
    physics_pair_mean: list[float] = field(default_factory=list)
    """With ``pair_features: physics``: mean of ln Delta R, ln kT, ln z, ln m^2 over distinct real pairs."""
    physics_pair_std: list[float] = field(default_factory=list)
    """With ``pair_features: physics``: their std (1.0 where zero variance)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetStatistics:
        return cls(**data)

    def to_json(self) -> str:
        """The text of a run's ``statistics.json`` (spanet-train writes it; :meth:`load` reads it)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write :meth:`to_json` atomically, under the output rule of :mod:`spanet_lite.outputs`:
        an existing file only with ``overwrite``, a run's own ``statistics.json`` never (the run's
        network was trained against it). ``path`` must end in ``.json`` (as ``export_onnx``'s
        in ``.onnx``): the statistics know nothing of the files they came from, so
        ``data.statistics.save("train.h5", overwrite=True)``, a slip in a notebook, replaced the
        training file itself with JSON."""
        suffix = Path(path).suffix
        if suffix.lower() != ".json":
            raise InputError(path, "statistics file", "a file ending in .json", suffix or "no suffix")
        check_outputs([output(path, "statistics file")], overwrite=overwrite)
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> DatasetStatistics:
        """Statistics written by :meth:`save` or by spanet-train; anything else is one InputError."""
        text = read_user_text(path, "statistics file", "JSON")
        data = parse_user_json(text, path, "a statistics file written by spanet_lite")
        try:
            return cls.from_dict(data)
        except TypeError as error:  # another object than ours (unknown keys, not a mapping)
            raise InputError(path, "", "a statistics file written by spanet_lite", str(error)) from None


class RunningMoments:
    """Count, mean and sum of squared deviations per column, merged batch by batch."""

    def __init__(self, width: int) -> None:
        self.count = np.zeros(width, dtype=np.float64)
        self.mean = np.zeros(width, dtype=np.float64)
        self.m2 = np.zeros(width, dtype=np.float64)

    def update(self, values: np.ndarray) -> None:
        """Add rows of ``values`` (m, width)."""
        if len(values) == 0:
            return
        values = values.astype(np.float64, copy=False)
        count = float(len(values))
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation; 1 where zero, undefined or empty."""
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(self.m2 / self.count)
        return np.where(np.isfinite(std) & (std > 0), std, 1.0)
