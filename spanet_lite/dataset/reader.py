"""Read contiguous row ranges of a SPANet HDF5 file into per-event numpy arrays.

Everything that touches the HDF5 datasets goes through this module: :func:`read_block` reads
rows ``[start, stop)`` of every dataset the event spec names with one contiguous slice each
(the fastest HDF5 access pattern, and the one whose memory is bounded by the block); it is what
training (both dataset modes) and ``spanet-test`` read. :func:`read_inputs` is its inputs-only
part, all that prediction needs from a file that may hold no targets.

What a block holds is already in :class:`~spanet_lite.dataset.batch.Batch` form:

* object-input features stacked to ``(n, N_i, F_i)`` float32 in event-file feature order, padded
  slots set to 0 (files may hold anything there, NaN included);
* a RELATIVE input's pairwise features (``(N, W, W)`` datasets) also stacked to
  ``pairs[input]`` ``(n, N_i, N_i, C_i)``, 0 where either object is padding; in ``features``
  such a feature holds its diagonal (the object paired with itself), so every object input has
  its event file's ``F_i`` per-object features;
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
from spanet_lite.dataset import hdf5_layout
from spanet_lite.dataset.value_checks import nonfinite_real


@dataclass(frozen=True)
class FileLayout:
    """Facts about one file that every block read needs (resolved once, cheap to pickle)."""

    path: str
    num_events: int
    max_objects: dict[str, int]
    offsets: dict[str, int]
    """Object input -> first combined index of its slots."""
    pair_features: dict[str, tuple[str, ...]]
    """RELATIVE input -> its pairwise features (:func:`hdf5_layout.pair_features`)."""
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
    max_objects = {s.name: int(file[hdf5_layout.mask_path(s.name)].shape[1]) for s in spec.sequential}
    first = hdf5_layout.mask_path(spec.sequential[0].name)

    def optional(name: str) -> str | None:
        return name if isinstance(file.get(name), h5py.Dataset) else None

    weight_path = event_weight_dataset.strip("/")
    return FileLayout(
        path=str(path),
        num_events=int(file[first].shape[0]),
        max_objects=max_objects,
        offsets=hdf5_layout.target_index_offsets(spec, max_objects),
        pair_features=hdf5_layout.pair_features(file, spec),
        target_masks={p.name: optional(hdf5_layout.target_mask_path(p.name)) for p in spec.particles},
        target_weights={p.name: optional(hdf5_layout.target_weight_path(p.name)) for p in spec.particles},
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
    pairs: dict[str, np.ndarray] = field(default_factory=dict)
    """RELATIVE input -> (n, N_i, N_i, C_i) float32 pairwise features (reader docstring)."""
    global_vectors: np.ndarray | None = None
    """(n,) int64 GLOBAL vectors per event: one per GLOBAL input, or its ``MASK`` where the file
    has one (SPANet's GlobalInput); None counts as zero."""

    def __len__(self) -> int:
        return len(self.rows)

    def num_objects(self) -> np.ndarray:
        """(n,) int64 real objects per event, summed over the object inputs."""
        counts = np.zeros(len(self), dtype=np.int64)
        for mask in self.masks.values():
            counts += mask.sum(axis=1)
        return counts

    def num_vectors(self) -> np.ndarray:
        """(n,) int64 SPANet's ``num_vectors``: the real objects of every input, a GLOBAL input
        counting one per event (``limit_to_num_jets`` and ``balance_jets`` use this count)."""
        counts = self.num_objects()
        if self.global_vectors is not None:
            counts += self.global_vectors
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
    pairs: dict[str, np.ndarray] = field(default_factory=dict)
    """RELATIVE input -> (n, N, N, C) pairwise features, 0 where either object is padding."""


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
    pairs: dict[str, np.ndarray] = {}
    pair_features = hdf5_layout.pair_features(file, spec) if with_features else {}
    check_finite = check_finite and with_features
    finite = np.ones(n, dtype=bool) if check_finite else None
    for source in spec.sequential:
        mask = _read(file, hdf5_layout.mask_path(source.name), start, stop, bool)
        masks[source.name] = mask
        if not with_features:
            continue
        width = mask.shape[1]
        stacked = np.empty((n, width, source.num_features), dtype=np.float32)
        pairwise = pair_features.get(source.name, ())
        pair_block = np.empty((n, width, width, len(pairwise)), dtype=np.float32) if pairwise else None
        for f, feature in enumerate(source.features):
            values = _read(file, hdf5_layout.feature_path(source.name, feature.name), start, stop, np.float32)
            if feature.name in pairwise:
                assert pair_block is not None
                pair_block[..., pairwise.index(feature.name)] = values
                values = np.diagonal(values, axis1=1, axis2=2)
            stacked[:, :, f] = values
        if finite is not None:
            finite &= ~nonfinite_real(stacked, mask).any(axis=1)
        np.copyto(stacked, 0.0, where=~mask[:, :, None])
        features[source.name] = stacked
        if pair_block is not None:
            real_pair = mask[:, :, None] & mask[:, None, :]
            if finite is not None:
                finite &= ~nonfinite_real(pair_block, mask).any(axis=(1, 2))
            np.copyto(pair_block, 0.0, where=~real_pair[..., None])
            pairs[source.name] = pair_block
    for source in spec.global_inputs if with_features else ():
        vector = np.empty((n, source.num_features), dtype=np.float32)
        for f, feature in enumerate(source.features):
            vector[:, f] = _read(
                file, hdf5_layout.feature_path(source.name, feature.name), start, stop, np.float32
            )
        if finite is not None:
            finite &= ~nonfinite_real(vector, None)
        features[source.name] = vector
    return InputArrays(features, masks, finite, pairs)


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
            raw = _read(file, hdf5_layout.target_path(particle.name, product.name), start, stop, np.int64)
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
        particle_weights[particle.name] = _read_or_absent(file, weight_name, "target_weight", start, stop,
                                                          np.float32)

    return EventBlock(
        rows=rows,
        features=inputs.features,
        masks=inputs.masks,
        targets=targets,
        target_masks=target_masks,
        particle_weights=particle_weights,
        regressions={
            t.key: _read(file, hdf5_layout.regression_path(t.key), start, stop, np.float32)
            for t in spec.regressions
        },
        classifications={
            t.key: _read(file, hdf5_layout.classification_path(t.key), start, stop, np.int64)
            for t in spec.classifications
        },
        event_weights=_read_or_absent(file, layout.event_weight, "event_weight", start, stop, np.float32),
        finite=inputs.finite,
        pairs=inputs.pairs,
        global_vectors=_global_vectors(file, spec, start, stop),
    )


def _global_vectors(file: h5py.File, spec: EventSpec, start: int, stop: int) -> np.ndarray:
    """(n,) GLOBAL vectors present per event, as SPANet counts them (see ``global_vectors``)."""
    counts = np.zeros(stop - start, dtype=np.int64)
    for source in spec.global_inputs:
        name = hdf5_layout.mask_path(source.name)
        present = isinstance(file.get(name), h5py.Dataset)
        counts += _read_or_absent(file, name if present else None, "global_mask", start, stop, bool)
    return counts


def _read_or_absent(
    file: h5py.File, name: str | None, role: hdf5_layout.Role, start: int, stop: int, dtype
) -> np.ndarray:
    """An optional dataset's rows, or, where the file has none (``name`` None), what its absence
    means (:data:`~spanet_lite.dataset.hdf5_layout.ABSENT_READS_AS`, which spanet-data's concat
    writes out too)."""
    if name:
        return _read(file, name, start, stop, dtype)
    return np.full(stop - start, hdf5_layout.ABSENT_READS_AS[role], dtype=dtype)


def _read(file: h5py.File, name: str, start: int, stop: int, dtype) -> np.ndarray:
    """One contiguous slice, converted to ``dtype`` (bool: a MASK, :func:`~spanet_lite.dataset.
    hdf5_layout.mask_values`)."""
    values = hdf5_layout.read_rows(file[name], start, stop)
    if dtype is bool:
        return hdf5_layout.mask_values(values)
    if values.dtype == dtype:
        return values
    with np.errstate(over="ignore"):  # float64 beyond float32: the check refuses it where it is read
        return values.astype(dtype)
