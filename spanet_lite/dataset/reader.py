"""Read contiguous row ranges of a SPANet HDF5 file into per-event numpy arrays.

Everything that touches the HDF5 datasets goes through this module: :func:`read_block` reads
rows ``[start, stop)`` of every dataset the event spec names with one contiguous slice each
(the fastest HDF5 access pattern, and the one whose memory is bounded by the block); it is what
training (both dataset modes) and ``spanet-test`` read. :func:`read_inputs` is its inputs-only
part, all that prediction needs from a file that may hold no targets.

What a block holds is already in :class:`~spanet_lite.dataset.batch.Batch` form:

* SEQUENTIAL features stacked to ``(n, N_i, F_i)`` float32 in event-file feature order, padded
  slots set to 0 (files may hold anything there, NaN included);
* targets converted to the combined object index space: an associated product's index counts
  inside its own input and is shifted by that input's offset; an unassociated product's index
  is already combined; ``-1`` stays ``-1``;
* ``target_masks`` = every product matched AND ``TARGETS/<p>/MASK`` (when present).

Layout checks (missing datasets, shapes, indices at padded slots, ...) are
:mod:`spanet_lite.dataset.schema`'s job (``inputs_only=True`` for prediction); this module
trusts a validated file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import h5py
import numpy as np

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset import schema


@dataclass(frozen=True)
class FileLayout:
    """Facts about one file that every block read needs (resolved once, cheap to pickle)."""

    path: str
    num_events: int
    max_objects: dict[str, int]
    offsets: dict[str, int]
    """SEQUENTIAL input -> first combined index of its slots."""
    target_masks: dict[str, str | None]
    """Particle -> path of TARGETS/<p>/MASK, or None when the file has none."""
    target_weights: dict[str, str | None]
    """Particle -> path of TARGETS/<p>/WEIGHT, or None."""
    event_weight: str | None
    """Path of the per-event physics weight, or None (weight 1)."""


def resolve_layout(
    file: h5py.File, spec: EventSpec, path: str | Path, event_weight_dataset: str
) -> FileLayout:
    """Look up sizes and optional datasets of a (validated) open file."""
    max_objects = {s.name: int(file[schema.mask_path(s.name)].shape[1]) for s in spec.sequential}
    first = schema.mask_path(spec.sequential[0].name)

    def optional(name: str) -> str | None:
        return name if isinstance(file.get(name), h5py.Dataset) else None

    weight_path = event_weight_dataset.strip("/")
    return FileLayout(
        path=str(path),
        num_events=int(file[first].shape[0]),
        max_objects=max_objects,
        offsets=schema.target_index_offsets(spec, max_objects),
        target_masks={p.name: optional(schema.target_mask_path(p.name)) for p in spec.particles},
        target_weights={p.name: optional(schema.target_weight_path(p.name)) for p in spec.particles},
        event_weight=optional(weight_path) if weight_path else None,
    )


@dataclass
class EventBlock:
    """Per-event arrays for ``n`` events; every field's first axis is the event axis.

    ``rows`` are the file rows the events came from (for error messages and order checks).
    The last three fields are filled by :func:`spanet_lite.dataset.balance.apply_weights`.
    """

    rows: np.ndarray
    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    target_masks: dict[str, np.ndarray]
    particle_weights: dict[str, np.ndarray]
    regressions: dict[str, np.ndarray]
    classifications: dict[str, np.ndarray]
    event_weights: np.ndarray
    finite: np.ndarray | None = None
    """(n,) bool: every feature of every real object (and of the GLOBAL inputs) is finite;
    None when features were not read."""
    assignment_weights: np.ndarray | None = None
    classification_weights: dict[str, np.ndarray] = field(default_factory=dict)
    assignment_event_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def num_objects(self) -> np.ndarray:
        """(n,) int64 real objects per event, summed over the SEQUENTIAL inputs only."""
        counts = np.zeros(len(self), dtype=np.int64)
        for mask in self.masks.values():
            counts += mask.sum(axis=1)
        return counts

    def select(self, index: slice | np.ndarray) -> EventBlock:
        """The events at ``index`` (a slice gives views, an index array copies)."""
        return EventBlock(**{f.name: _take(getattr(self, f.name), index) for f in fields(self)})


def _take(value, index):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: v[index] for k, v in value.items()}
    return value[index]


def row_blocks(num_events: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges covering ``num_events`` rows in steps of ``size``."""
    for start in range(0, num_events, size):
        yield start, min(start + size, num_events)


@dataclass
class InputArrays:
    """The INPUTS of ``n`` events: features (SEQUENTIAL (n, N, F), GLOBAL (n, F)), masks (n, N)."""

    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    finite: np.ndarray | None = None
    """(n,) bool: every feature of every real object and of the GLOBAL inputs is finite; None
    when not asked for."""


def read_inputs(
    file: h5py.File,
    spec: EventSpec,
    start: int,
    stop: int,
    *,
    with_features: bool = True,
    check_finite: bool = False,
) -> InputArrays:
    """Rows ``[start, stop)`` of every input: features stacked in event-file order, padded slots 0.

    ``with_features=False`` reads the masks alone; ``check_finite`` fills ``finite``.
    """
    n = stop - start
    features: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    check_finite = check_finite and with_features
    finite = np.ones(n, dtype=bool) if check_finite else None
    for source in spec.sequential:
        mask = _read(file, schema.mask_path(source.name), start, stop, bool)
        masks[source.name] = mask
        if not with_features:
            continue
        stacked = np.empty((n, mask.shape[1], source.num_features), dtype=np.float32)
        for f, feature in enumerate(source.features):
            stacked[:, :, f] = _read(
                file, schema.feature_path(source.name, feature.name), start, stop, np.float32
            )
        if finite is not None:
            finite &= (np.isfinite(stacked).all(axis=2) | ~mask).all(axis=1)
        np.copyto(stacked, 0.0, where=~mask[:, :, None])
        features[source.name] = stacked
    for source in spec.global_inputs if with_features else ():
        vector = np.empty((n, source.num_features), dtype=np.float32)
        for f, feature in enumerate(source.features):
            vector[:, f] = _read(
                file, schema.feature_path(source.name, feature.name), start, stop, np.float32
            )
        if finite is not None:
            finite &= np.isfinite(vector).all(axis=1)
        features[source.name] = vector
    return InputArrays(features, masks, finite)


def read_block(
    file: h5py.File,
    spec: EventSpec,
    layout: FileLayout,
    start: int,
    stop: int,
    *,
    with_features: bool = True,
    check_finite: bool = False,
) -> EventBlock:
    """Read file rows ``[start, stop)``; ``with_features=False`` skips the feature datasets
    (the cheap pass that only needs masks, targets and labels); ``check_finite`` fills
    :attr:`EventBlock.finite` (needs the features)."""
    n = stop - start
    rows = np.arange(start, stop, dtype=np.int64)
    inputs = read_inputs(file, spec, start, stop, with_features=with_features, check_finite=check_finite)

    targets: dict[str, np.ndarray] = {}
    target_masks: dict[str, np.ndarray] = {}
    particle_weights: dict[str, np.ndarray] = {}
    for particle in spec.particles:
        indices = np.empty((n, particle.num_products), dtype=np.int64)
        for j, product in enumerate(particle.products):
            raw = _read(file, schema.target_path(particle.name, product.name), start, stop, np.int64)
            if product.input is not None:
                raw = np.where(raw >= 0, raw + layout.offsets[product.input], -1)
            indices[:, j] = raw
        targets[particle.name] = indices
        matched = np.all(indices >= 0, axis=1)
        mask_name = layout.target_masks[particle.name]
        if mask_name is not None:
            matched &= _read(file, mask_name, start, stop, bool)
        target_masks[particle.name] = matched
        weight_name = layout.target_weights[particle.name]
        particle_weights[particle.name] = (
            _read(file, weight_name, start, stop, np.float32) if weight_name else np.ones(n, dtype=np.float32)
        )

    return EventBlock(
        rows=rows,
        features=inputs.features,
        masks=inputs.masks,
        targets=targets,
        target_masks=target_masks,
        particle_weights=particle_weights,
        regressions={
            t.key: _read(file, schema.regression_path(t.key), start, stop, np.float32)
            for t in spec.regressions
        },
        classifications={
            t.key: _read(file, schema.classification_path(t.key), start, stop, np.int64)
            for t in spec.classifications
        },
        event_weights=(
            _read(file, layout.event_weight, start, stop, np.float32)
            if layout.event_weight
            else np.ones(n, dtype=np.float32)
        ),
        finite=inputs.finite,
    )


def _read(file: h5py.File, name: str, start: int, stop: int, dtype) -> np.ndarray:
    """One contiguous slice, converted to ``dtype`` (bool means "non-zero")."""
    values = file[name][start:stop]
    if dtype is bool:
        return values if values.dtype == np.bool_ else values != 0
    return values if values.dtype == dtype else values.astype(dtype)
