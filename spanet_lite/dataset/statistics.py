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

from spanet_lite.io import atomic_write_text


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetStatistics:
        return cls(**data)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DatasetStatistics:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
