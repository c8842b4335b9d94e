"""The batch contract between the dataset and the network, losses and metrics.

One mask convention everywhere: bool, ``True`` = real object.
Shapes: ``B`` events, ``N_i`` slots of SEQUENTIAL input ``i``, ``F_i`` its features,
``k`` products of a particle. Features and regression targets are *raw* (file units);
the network normalises inputs and regression targets with the run's statistics, so the
same network works on any file without the training split.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


@dataclass
class Batch:
    features: dict[str, Tensor]
    """SEQUENTIAL input -> (B, N_i, F_i) float32; GLOBAL input -> (B, F_g) float32. Event-file order."""
    masks: dict[str, Tensor]
    """SEQUENTIAL input -> (B, N_i) bool, True = real object."""
    targets: dict[str, Tensor] = field(default_factory=dict)
    """Particle -> (B, k) int64 indices in the combined object space (all SEQUENTIAL inputs
    concatenated in event-file order, padding included); -1 = product not matched."""
    target_masks: dict[str, Tensor] = field(default_factory=dict)
    """Particle -> (B,) bool: fully reconstructable (every product matched and TARGETS/<p>/MASK true)."""
    particle_weights: dict[str, Tensor] = field(default_factory=dict)
    """Particle -> (B,) float32: TARGETS/<p>/WEIGHT (1 where absent)."""
    regressions: dict[str, Tensor] = field(default_factory=dict)
    """RegressionTarget.key -> (B,) float32 raw values; NaN = missing."""
    classifications: dict[str, Tensor] = field(default_factory=dict)
    """ClassificationTarget.key -> (B,) int64; -1 = missing."""
    event_weights: Tensor | None = None
    """(B,) float32 physics weight, multiplied into every loss and metric (1 where absent)."""
    assignment_weights: Tensor | None = None
    """(B,) float32 balancing factor for the assignment and detection losses
    (balance_particles x balance_jets)."""
    classification_weights: dict[str, Tensor] = field(default_factory=dict)
    """ClassificationTarget.key -> (B,) float32 class-balancing factor (1 when off; 0 where label is -1)."""
    assignment_event_mask: Tensor | None = None
    """(B,) bool: event enters the assignment loss (all True with partial_events,
    else only events in which every particle is fully reconstructable)."""

    def product_present(self, particle: str) -> Tensor:
        """(B, k) bool: which products of ``particle`` are matched to an object."""
        return self.targets[particle] >= 0

    @property
    def batch_size(self) -> int:
        return next(iter(self.features.values())).shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor to ``device``."""

        def move(value):
            if isinstance(value, Tensor):
                return value.to(device, non_blocking=non_blocking)
            if isinstance(value, dict):
                return {k: v.to(device, non_blocking=non_blocking) for k, v in value.items()}
            return value

        return Batch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def pin_memory(self) -> Batch:
        """Page-locked copies of every tensor (the DataLoader calls this with ``pin_memory=True``)."""

        def pin(value):
            if isinstance(value, Tensor):
                return value.pin_memory()
            if isinstance(value, dict):
                return {k: v.pin_memory() for k, v in value.items()}
            return value

        return Batch(**{f.name: pin(getattr(self, f.name)) for f in fields(self)})
