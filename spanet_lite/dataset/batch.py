"""The batch contract between the dataset and the network, losses and metrics.

One mask convention everywhere: bool, ``True`` = real object.
Shapes: ``B`` events, ``N_i`` slots of SEQUENTIAL input ``i``, ``F_i`` its features,
``k`` products of a particle. Features and regression targets are *raw* (file units);
the network normalises inputs and regression targets with the run's statistics, so the
same network works on any file without the training split.

**Trimming the padding.** A file pads every SEQUENTIAL input to a fixed width ``N_i``, but a
batch rarely needs all of it (SPANet's ttH files: 19 slots, about 8 real objects per event),
and the network's cost grows with the width (encoder ~N^2, a k-product particle's tensor
attention ~N^k). :meth:`Batch.trimmed` / :func:`trim_inputs` cut each input to its first
``M_i`` slots, ``M_i`` = the last slot that any event of the batch uses (a real object or a
target index) + 1, at least 1. Masks need not be a prefix: only slots past the last used one
go. This is exact: padded objects never reach real ones (they are masked as attention keys),
so outputs on the kept slots, losses, decoded assignments and metrics are those of the
untrimmed batch up to float rounding. Targets are remapped into the trimmed combined space
(a later input's offset shrinks by what the earlier ones lost); :class:`SlotMap` maps indices
either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

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
    concatenated in event-file order, padding included; after :meth:`trimmed`, the trimmed
    space); -1 = product not matched."""
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
    pairs: dict[str, Tensor] = field(default_factory=dict)
    """RELATIVE input -> (B, N_i, N_i, C_i) float32 raw pairwise features, 0 where either object is
    padding (empty for inputs without pairwise features). Trimmed with the object axis, both axes."""

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

    def trimmed(self, order: Sequence[str] | None = None) -> Batch:
        """This batch with each SEQUENTIAL input cut to the slots its events use (module docstring).

        ``order``: the SEQUENTIAL inputs in event-file order (the order of the combined object
        space); default: the order of :attr:`masks`. Returns ``self`` when nothing can go.
        """
        order = list(self.masks) if order is None else list(order)
        slots = kept_slots(self.masks, order, self.targets.values())
        if not slots.trims:
            return self
        features, masks = trim_inputs(self.features, self.masks, slots)
        targets = {name: slots.to_trimmed(value) for name, value in self.targets.items()}
        return replace(self, features=features, masks=masks, targets=targets,
                       pairs=trim_pairs(self.pairs, slots))


@dataclass(frozen=True)
class SlotMap:
    """Which slots of each SEQUENTIAL input a trimmed batch keeps: the first ``kept[i]`` of ``widths[i]``.

    Indices in the combined object space map one-to-one between the kept slots of the
    original space and the trimmed space, preserving order (so argmax ties break alike).
    """

    names: tuple[str, ...]
    """SEQUENTIAL inputs in event-file order."""
    widths: tuple[int, ...]
    """Original widths ``N_i``."""
    kept: tuple[int, ...]
    """Kept widths ``M_i`` (1 <= M_i <= N_i, or 0 for an input with no slots at all)."""

    @property
    def trims(self) -> bool:
        """Whether any slot goes."""
        return self.kept != self.widths

    def to_trimmed(self, indices: Tensor) -> Tensor:
        """Original combined indices -> trimmed ones; negative ones (-1 = none) unchanged.

        Every kept index lands on its slot; an index past the whole original space stays past
        the trimmed one.
        """
        return self._shift(indices, self.widths, -1)

    def to_original(self, indices: Tensor) -> Tensor:
        """Trimmed combined indices (e.g. decoded predictions) -> original ones; negative ones unchanged."""
        return self._shift(indices, self.kept, 1)

    def _shift(self, indices: Tensor, widths: tuple[int, ...], sign: int) -> Tensor:
        if not self.trims:
            return indices
        shifts = _offsets(self.widths)
        shifts = [a - b for a, b in zip(shifts, _offsets(self.kept), strict=True)]
        if not any(shifts):  # only the last input lost slots (always so with one): nothing moves
            return indices
        starts = torch.tensor(_offsets(widths)[1:], dtype=indices.dtype, device=indices.device)
        which = torch.bucketize(indices, starts, right=True)  # input each index falls in
        shift = torch.tensor(shifts, dtype=indices.dtype, device=indices.device)[which]
        return torch.where(indices >= 0, indices + sign * shift, indices)


def _offsets(widths: Sequence[int]) -> list[int]:
    """First combined index of each input."""
    result, start = [], 0
    for width in widths:
        result.append(start)
        start += width
    return result


def kept_slots(
    masks: Mapping[str, Tensor], order: Sequence[str], targets: Iterable[Tensor] = ()
) -> SlotMap:
    """The :class:`SlotMap` that keeps, per input, every slot up to the last one a real object
    of any event or any non-negative target index uses.

    Targets count so that one pointing at a padded slot (which the losses cap at
    ``NLL_CAP`` and the metrics count as missed) keeps pointing at a padded slot.
    """
    widths = tuple(int(masks[name].shape[1]) for name in order)
    if not widths:
        return SlotMap((), (), ())
    device = masks[order[0]].device
    none = torch.zeros(1, dtype=torch.long, device=device)
    extents = []
    for name in order:
        used = masks[name].bool().any(0)  # (N_i,)
        positions = torch.arange(1, used.shape[0] + 1, device=device)
        extents.append(torch.cat([none, positions * used]).max())  # last used slot + 1, 0 if none
    extent = torch.stack(extents)  # (S,)
    indices = [t.reshape(-1).long() for t in targets]
    indices = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long, device=device)
    indices = indices[indices >= 0].to(device)
    if indices.numel():
        starts = torch.tensor(_offsets(widths), device=device)
        which = torch.bucketize(indices, starts[1:], right=True)
        extent = extent.scatter_reduce(0, which, indices - starts[which] + 1, reduce="amax")
    kept = tuple(min(max(int(e), 1), w) for e, w in zip(extent.tolist(), widths, strict=True))
    return SlotMap(tuple(order), widths, kept)


def trim_inputs(
    features: Mapping[str, Tensor], masks: Mapping[str, Tensor], slots: SlotMap
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Features and masks with each SEQUENTIAL input of ``slots`` cut to its kept width
    (views, no copy); GLOBAL inputs and anything else pass through."""
    kept = dict(zip(slots.names, slots.kept, strict=True))
    cut_features = {
        name: value[:, : kept[name]] if name in kept else value for name, value in features.items()
    }
    cut_masks = {name: value[:, : kept[name]] if name in kept else value for name, value in masks.items()}
    return cut_features, cut_masks


def trim_pairs(pairs: Mapping[str, Tensor], slots: SlotMap) -> dict[str, Tensor]:
    """Pairwise features (B, N_i, N_i, C_i) cut to the kept slots on both object axes (views)."""
    kept = dict(zip(slots.names, slots.kept, strict=True))
    return {name: value[:, : kept[name], : kept[name]] if name in kept else value
            for name, value in pairs.items()}
