"""Compute :class:`DatasetStatistics` from the training split, one block at a time.

Only real entries of the training split count: padded slots are skipped (their mask is
False), validation and testing events never enter. The transforms themselves are applied by
the network (``model/normalization.py``); here we only measure, so memory stays bounded by
one block plus the regression columns (needed whole for the laplacian median).

Features (per input, per feature, event-file order)
    ``log`` options first map ``x -> log(x + 1)`` (a value ``<= -1`` is an error naming the
    feature, since it would become NaN or -inf); ``normalize`` options (with the option
    ``normalize_features`` on) get the mean and population standard deviation of the
    transformed real entries; others get mean 0, std 1. A zero (or non-finite) standard
    deviation becomes 1, so a constant feature maps to 0 rather than NaN.
    Means and variances are merged block by block with Chan et al.'s pairwise update,
    numerically stable in float64 for any number of entries.

Regressions (per target, non-NaN values only)
    gaussian: mean / std; laplacian: median / mean absolute deviation from the median;
    log_gaussian: the same as gaussian after ``y -> sign(y) log(1 + |y|)``. A zero scale
    becomes 1. A target with no value at all in the training split is an error.

Classifications
    ``num_classes = max label + 1`` over the training split, as SPANet counts them; a split
    with no label at all (only -1) is an error (:func:`count_classes`), one with a single class
    trains, as in SPANet, with one line saying so (:func:`single_class_note`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from spanet_lite.config.event_spec import EventSpec, InputSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset import hdf5_layout
from spanet_lite.dataset.pair_features import (
    PAIR_FEATURE_NAMES,
    Columns,
    combined_pair_features,
    physics_columns,
)
from spanet_lite.dataset.reader import EventBlock
from spanet_lite.dataset.statistics import DatasetStatistics, RunningMoments
from spanet_lite.dataset.value_checks import LOG_DOMAIN, outside_log_domain
from spanet_lite.errors import InputError


def signed_log(values: np.ndarray) -> np.ndarray:
    """``sign(y) log(1 + |y|)``: the log_gaussian regression transform."""
    return np.sign(values) * np.log1p(np.abs(values))


PHYSICS_PAIR_EVENTS = 100_000
"""Training events whose computed pair features (``pair_features: physics``) set their mean and
std. Four numbers per feature over N^2 pairs an event are measured to well under 1 % by then;
measuring every event would cost more than the rest of the statistics together."""
PHYSICS_PAIR_SLICE = 4_096
"""Events whose pair features are computed at once (bounds the (n, N, N, 4) intermediates)."""


def _measure_physics_pairs(
    block: EventBlock, physics: dict[str, Columns], take: int, moments: RunningMoments
) -> None:
    """Add the computed pair features of the block's first ``take`` events, over distinct real pairs."""
    for start in range(0, take, PHYSICS_PAIR_SLICE):
        stop = min(start + PHYSICS_PAIR_SLICE, take)
        masks = {name: torch.from_numpy(block.masks[name][start:stop]) for name in physics}
        features = {name: torch.from_numpy(block.features[name][start:stop]) for name in physics}
        pairs = combined_pair_features(features, masks, physics)
        combined = torch.cat(list(masks.values()), dim=1)
        eye = torch.eye(combined.shape[1], dtype=torch.bool)
        distinct = combined[:, :, None] & combined[:, None, :] & ~eye
        moments.update(pairs[distinct].numpy())


def compute_statistics(
    spec: EventSpec,
    options: Options,
    blocks: Iterable[EventBlock],
    *,
    source: str,
    max_objects: dict[str, int],
    classifications: dict[str, np.ndarray],
    pair_features: dict[str, tuple[str, ...]] | None = None,
) -> DatasetStatistics:
    """Measure the training split.

    ``blocks`` yield the training events with features; ``classifications`` holds every
    training label per key (already gathered by the loader's first pass); ``pair_features``
    names each RELATIVE input's pairwise features (:func:`hdf5_layout.pair_features`), measured over
    pairs of real objects like SPANet's covariant features.
    """
    pair_features = dict(pair_features or {})
    pair_specs = {name: [f for f in spec.input(name).features if f.name in names]
                  for name, names in pair_features.items() if names}
    pair_moments = {name: RunningMoments(len(features)) for name, features in pair_specs.items()}
    physics = physics_columns(spec, options.pair_features)
    physics_moments = RunningMoments(len(PAIR_FEATURE_NAMES))
    moments = {s.name: RunningMoments(s.num_features) for s in spec.inputs}
    log_columns = {s.name: np.array([f.log for f in s.features]) for s in spec.inputs}
    regression_values: dict[str, list[np.ndarray]] = {t.key: [] for t in spec.regressions}
    events = physics_events = 0
    for block in blocks:
        events += len(block)
        for source_spec in spec.inputs:
            values = block.features[source_spec.name]
            real = values[block.masks[source_spec.name]] if source_spec.has_objects else values  # (m, F)
            logs = log_columns[source_spec.name]
            if logs.any():
                _check_log_domain(real, logs, block, source_spec, source)
                real = real.astype(np.float64)
                real[:, logs] = np.log1p(real[:, logs])
            moments[source_spec.name].update(real)
        for name, features in pair_specs.items():
            mask = block.masks[name]
            real = block.pairs[name][mask[:, :, None] & mask[:, None, :]]  # (m, C)
            logs = np.array([f.log for f in features])
            if logs.any():
                real = real.astype(np.float64)
                bad = outside_log_domain(real[:, logs])
                if bad.any():
                    column = int(np.flatnonzero(logs)[int(np.argmax(bad.any(axis=0)))])
                    raise InputError(source, hdf5_layout.feature_path(name, features[column].name),
                                     LOG_DOMAIN,
                                     f"{int(bad.sum())} pair value(s) <= -1 in events "
                                     f"{int(block.rows[0])}..{int(block.rows[-1])}")
                real[:, logs] = np.log1p(real[:, logs])
            pair_moments[name].update(real)
        if physics is not None and physics_events < PHYSICS_PAIR_EVENTS:
            take = min(len(block), PHYSICS_PAIR_EVENTS - physics_events)
            _measure_physics_pairs(block, physics, take, physics_moments)
            physics_events += take
        for key, column in block.regressions.items():
            regression_values[key].append(column[np.isfinite(column)])

    stats = DatasetStatistics(max_objects=dict(max_objects), num_training_events=events)
    for source_spec in spec.inputs:
        normalize = np.array([f.normalize and options.normalize_features for f in source_spec.features])
        found = moments[source_spec.name]
        stats.feature_mean[source_spec.name] = np.where(normalize, found.mean, 0.0).tolist()
        stats.feature_std[source_spec.name] = np.where(normalize, found.std, 1.0).tolist()
    stats.pair_features = {name: list(names) for name, names in pair_features.items()}
    if physics is not None:
        stats.physics_pair_mean = physics_moments.mean.tolist()
        stats.physics_pair_std = physics_moments.std.tolist()
    for name, features in pair_specs.items():
        normalize = np.array([f.normalize and options.normalize_features for f in features])
        found = pair_moments[name]
        stats.pair_mean[name] = np.where(normalize, found.mean, 0.0).tolist()
        stats.pair_std[name] = np.where(normalize, found.std, 1.0).tolist()
    for target in spec.regressions:
        parts = regression_values[target.key]
        values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if len(values) == 0:
            raise InputError(
                source,
                hdf5_layout.regression_path(target.key),
                "at least one non-NaN value in the training split",
                "only NaN",
            )
        stats.regression_center[target.key], stats.regression_scale[target.key] = _regression_moments(
            values.astype(np.float64), target.type
        )
    for label in spec.classifications:
        stats.num_classes[label.key] = count_classes(classifications[label.key], source, label.key)
    return stats


def _labelled_classes(labels: np.ndarray) -> np.ndarray:
    """The distinct classes of the labelled events, in order (-1 marks an unlabelled event)."""
    return np.unique(labels[labels >= 0])


def count_classes(labels: np.ndarray, source: str, key: str) -> int:
    """The highest label + 1, as SPANet counts a head's classes (-1 marks an unlabelled event);
    an error when the training split has no label at all (SPANet's head would have no class)."""
    present = _labelled_classes(labels)
    if len(present) == 0:
        raise InputError(
            source, hdf5_layout.classification_path(key), "at least one labelled event (label >= 0) in the "
            "training split", "no labels",
        )
    return int(present[-1]) + 1


def single_class_note(labels: np.ndarray, key: str) -> str | None:
    """One line when every labelled training event has the same class. SPANet trains on such a
    split (its own ttH example gives one with ``partial_events: false``), and so does
    spanet_lite, but the head can then learn only that class."""
    present = _labelled_classes(labels)
    if len(present) != 1:
        return None
    label = int(present[0])
    return (
        f"{hdf5_layout.classification_path(key)}: every labelled training event is class {label}; the head "
        f"has {label + 1} classes (the highest label + 1, as in SPANet) and can learn only that one"
    )


def _regression_moments(values: np.ndarray, kind: str) -> tuple[float, float]:
    if kind == "log_gaussian":
        values = signed_log(values)
    if kind == "laplacian":
        center = float(np.median(values))
        scale = float(np.mean(np.abs(values - center)))
    else:
        center = float(values.mean())
        scale = float(values.std())
    return center, scale if np.isfinite(scale) and scale > 0 else 1.0


def _check_log_domain(
    real: np.ndarray, logs: np.ndarray, block: EventBlock, input_spec: InputSpec, source: str
) -> None:
    """``log(x + 1)`` needs ``x > -1``: name the feature, the first event and the count otherwise."""
    for column in np.flatnonzero(logs):
        bad = outside_log_domain(real[:, column])
        if bad.any():
            first = int(np.argmax(bad))
            if input_spec.has_objects:  # entry -> event: entries are real objects, event by event
                event_of_entry = np.repeat(block.rows, block.masks[input_spec.name].sum(axis=1))
                event = int(event_of_entry[first])
            else:
                event = int(block.rows[first])
            raise InputError(
                source,
                hdf5_layout.feature_path(input_spec.name, input_spec.features[column].name),
                LOG_DOMAIN,
                f"{float(real[first, column]):g} in event {event} ({int(bad.sum())} such value(s) in events "
                f"{int(block.rows[0])}..{int(block.rows[-1])})",
            )
