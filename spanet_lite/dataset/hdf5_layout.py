"""The HDF5 layout an :class:`EventSpec` expects: dataset paths, their roles, and index spaces.

Layout (docs/formats.md section 2), ``N`` events, ``W_i`` padded slots of object input ``i``::

    INPUTS/<sequential>/MASK        bool   (N, W_i)   True = real object
    INPUTS/<sequential>/<feature>   float  (N, W_i)
    INPUTS/<relative>/MASK          bool   (N, W_i)   as SEQUENTIAL
    INPUTS/<relative>/<feature>     float  (N, W_i) per object, or (N, W_i, W_i) per object pair
    INPUTS/<global>/<feature>       float  (N,)
    INPUTS/<global>/MASK            bool   (N,)       optional: the input is present (SPANet's
                                                      num_vectors counts it; 1 where absent)
    TARGETS/<particle>/<product>    int    (N,)       object index, -1 = not matched
    TARGETS/<particle>/MASK         bool   (N,)       optional: particle usable as a target
    TARGETS/<particle>/WEIGHT       float  (N,)       optional: per-particle weight
    REGRESSIONS/<key>               float  (N,)       NaN = missing
    CLASSIFICATIONS/<key>           int    (N,)       -1 = missing
    WEIGHTS/EVENT/weight            float  (N,)       optional: per-event physics weight

An associated product (``- b: Jets``) indexes the slots of its own input; an unassociated one
indexes the *combined* space, all object inputs (SEQUENTIAL and RELATIVE) concatenated in
event-file order with their padding (:func:`target_index_offsets`).

A RELATIVE input (SPANet's third kind) is a set of objects like a SEQUENTIAL one; the shape of
each feature dataset says whether it describes objects ``(N, W)`` or object pairs ``(N, W, W)``
(:func:`pair_features`, the one place that decides).

This module is the vocabulary the reader, the statistics and the validator share
(:mod:`spanet_lite.dataset.schema` checks a file against it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.errors import InputError
from spanet_lite.hdf5_paths import (
    EVENT_WEIGHT_DATASET,
    classification_path,
    feature_path,
    mask_path,
    regression_path,
    target_mask_path,
    target_path,
    target_weight_path,
)

Role = Literal[
    "mask", "feature", "global", "global_mask", "target", "target_mask", "target_weight", "regression",
    "classification", "event_weight",
]


@dataclass(frozen=True)
class ExpectedDataset:
    """A dataset the spec needs (or may use, ``required=False``) and what it must look like."""

    path: str
    role: Role
    required: bool = True
    input: str | None = None
    """The input a MASK or feature belongs to (for object inputs, it shares the (N, W) shape)."""
    pairwise: bool = False
    """Belongs to a RELATIVE input: its features may be (N, W, W) as well as (N, W)."""

    @property
    def rank(self) -> int:
        return 2 if self.role in ("mask", "feature") else 1



ABSENT_READS_AS: dict[Role, bool | float] = {"global_mask": True, "target_weight": 1.0, "event_weight": 1.0}
"""What the reader takes for an optional dataset a file does not have, per role (it reads this
table): the input is present, the weight 1. Filling a file's missing dataset with this value
changes nothing it means (``spanet-data concat`` of a weighted and an unweighted file). A
missing ``TARGETS/<p>/MASK`` is no constant: the particle is usable where every product is
matched, as SPANet reads it too."""


def mask_values(values: np.ndarray) -> np.ndarray:
    """A MASK's values as bool: any non-zero value is True (a real object, a usable target), as
    SPANet reads MASK. The one meaning of a mask value, for a file's MASK datasets (the reader,
    the validator, ``spanet-data select``) and ``run.predict``'s in-memory masks alike, so a
    mask of 0 and 2 keeps the same objects wherever it comes from."""
    return values if values.dtype == np.bool_ else values != 0


def expected_layout(
    spec: EventSpec, *, event_weight_dataset: str = EVENT_WEIGHT_DATASET, inputs_only: bool = False
) -> tuple[ExpectedDataset, ...]:
    """Every dataset ``spec`` reads, in event-file order (MASK before the features of an input).

    ``inputs_only``: what prediction reads, the INPUTS the network runs on and the event weights
    (optional there: a file to predict need not have them) that it copies into its output.
    """
    layout: list[ExpectedDataset] = []
    for source in spec.sequential:
        layout.append(ExpectedDataset(mask_path(source.name), "mask", input=source.name,
                                      pairwise=source.is_relative))
        layout += [ExpectedDataset(feature_path(source.name, f.name), "feature", input=source.name,
                                   pairwise=source.is_relative)
                   for f in source.features]
    for source in spec.global_inputs:
        # Read for SPANet's num_vectors (limit_to_num_jets, balance_jets, spanet-test's rows).
        layout.append(ExpectedDataset(mask_path(source.name), "global_mask", required=False,
                                      input=source.name))
        layout += [ExpectedDataset(feature_path(source.name, f.name), "global", input=source.name)
                   for f in source.features]
    weights = event_weight_dataset.strip("/")
    if inputs_only:
        if weights:
            layout.append(ExpectedDataset(weights, "event_weight", required=False))
        return tuple(layout)
    for particle in spec.particles:
        layout += [ExpectedDataset(target_path(particle.name, p.name), "target") for p in particle.products]
        layout.append(ExpectedDataset(target_mask_path(particle.name), "target_mask", required=False))
        layout.append(ExpectedDataset(target_weight_path(particle.name), "target_weight", required=False))
    layout += [ExpectedDataset(regression_path(t.key), "regression") for t in spec.regressions]
    layout += [ExpectedDataset(classification_path(t.key), "classification") for t in spec.classifications]
    if weights:  # SPANet's files have no weights, so the default may be absent; a name chosen must be there
        layout.append(ExpectedDataset(weights, "event_weight", required=weights != EVENT_WEIGHT_DATASET))
    return tuple(layout)


def pair_features(file: h5py.File, spec: EventSpec) -> dict[str, tuple[str, ...]]:
    """RELATIVE input -> its features stored per object pair, ``(N, W, W)``, in event-file order.

    As in SPANet, the dataset's rank decides; the event file lists both kinds alike. Every
    RELATIVE input has an entry (possibly empty); features missing from ``file`` are left out.
    """
    result: dict[str, tuple[str, ...]] = {}
    for source in spec.relative:
        names = []
        for feature in source.features:
            node = file.get(feature_path(source.name, feature.name))
            if isinstance(node, h5py.Dataset) and node.ndim == 3:
                names.append(feature.name)
        result[source.name] = tuple(names)
    return result


def check_pair_features(
    found: dict[str, tuple[str, ...]], expected: Mapping[str, Sequence[str]], source: str
) -> None:
    """A file must store the same RELATIVE features per pair as the file the network was built
    from (the training file); else a one-line InputError naming the first feature that differs,
    in the order the file's then the training file's pair features are listed (event-file order):
    the first of a set's symmetric difference changed with the process's string hashing, so one
    spanet-test on one file named delta_r in one run and mjj in the next."""
    for name, names in found.items():
        wanted = tuple(expected.get(name, ()))
        if tuple(names) != wanted:
            feature = next((f for f in (*names, *wanted) if (f in names) != (f in wanted)),
                           names[0] if names else wanted[0])
            shape = "(N, W, W) per object pair" if feature in wanted else "(N, W) per object"
            raise InputError(source, feature_path(name, feature),
                             f"{shape}, as in the training file",
                             "(N, W)" if feature in wanted else "(N, W, W)")


def virtual_parts(dataset: h5py.Dataset) -> list[str]:
    """The files a virtual dataset reads: a relative name as HDF5 looks it up, beside the file
    holding the dataset, and as given (the working folder); "." is that file itself.

    Such a file is an input of whatever reads the dataset, so never an output either
    (``spanet-predict``, ``spanet-data``)."""
    beside = Path(dataset.file.filename).parent
    parts: list[str] = []
    for mapping in dataset.virtual_sources():
        name = mapping.file_name
        if name == ".":
            continue
        parts += [str(beside / name), name] if not Path(name).is_absolute() else [name]
    return parts


def read_rows(dataset: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of ``dataset``; bytes HDF5 cannot decode are a one-line InputError
    naming the file, the dataset and the events of the first chunk that fails.

    Every reader of event rows (validator, loaders, spanet-data) goes through here, so a damaged
    chunk is reported in the same words whichever command meets it first. The file named is
    the one holding the bytes, which for an external link is the linked file.
    """
    try:
        return dataset[start:stop]
    except (OSError, RuntimeError) as error:
        first, last = _failing_rows(dataset, start, stop)
        detail = " ".join(str(error).split())
        got = (f"a damaged chunk (HDF5: {detail})" if "filter returned failure" in detail
               else f"an unreadable dataset ({detail})")
        raise InputError(dataset.file.filename, f"{dataset.name.lstrip('/')}, events {first}-{last}",
                         "data HDF5 can read", got) from None


def _failing_rows(dataset: h5py.Dataset, start: int, stop: int) -> tuple[int, int]:
    """The first chunk's worth of rows in ``[start, stop)`` that cannot be read (the whole
    range when the dataset is not chunked or every piece reads on its own)."""
    step = dataset.chunks[0] if dataset.chunks else stop - start
    for first in range(start - start % step, stop, step):
        lo, hi = max(first, start), min(first + step, stop)
        try:
            dataset[lo:hi]
        except (OSError, RuntimeError):
            return lo, hi - 1
    return start, stop - 1


def target_index_offsets(spec: EventSpec, max_objects: dict[str, int]) -> dict[str, int]:
    """Where each object input (SEQUENTIAL or RELATIVE) starts in the combined index space.

    The combined space concatenates the inputs in event-file order, padding included, so with
    ``Jets`` (W=10) then ``Leptons`` (W=3), slot ``j`` of ``Leptons`` is combined index ``10 + j``.
    An associated product's file index ``i`` becomes ``offsets[input] + i``.
    """
    offsets: dict[str, int] = {}
    start = 0
    for source in spec.sequential:
        offsets[source.name] = start
        start += int(max_objects[source.name])
    return offsets
