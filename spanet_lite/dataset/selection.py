"""Which events a run reads and how it serves them: pure policies, no files, no Lightning.

:class:`~spanet_lite.dataset.datamodule.SpanetDataModule` is the glue that reads the per-event
facts of a file and calls these; each one here takes plain numbers and arrays, so a policy
can be checked with a handful of events (SPANet's option meanings are in the datamodule's
module docstring):

- :func:`split_rows`: ``dataset_limit``, ``dataset_randomization`` and
  ``train_validation_split`` -> training and validation rows of the training file;
- :func:`filter_rows`: ``limit_to_num_jets`` and ``drop_invalid_events``;
- :func:`full_event_rows`: ``partial_events: false``;
- :func:`equal_share` / :func:`rank_share`: one DDP rank's part of a split;
- :func:`bytes_per_event` and :func:`choose_mode`: ``dataset_mode`` (device, memory, streaming);
- :func:`usable_workers`: the loader processes worth starting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from spanet_lite.config.event_spec import EventSpec

DatasetMode = Literal["memory", "streaming", "device"]

MEMORY_FRACTION = 0.5
"""``dataset_mode: auto`` keeps the data on the GPU when the run trains on one and it fits
(:func:`~spanet_lite.dataset.device.fits_on_device`); otherwise it reads a split into memory
when its arrays need less than this fraction of the available memory, and streams it."""


def split_rows(
    num_events: int,
    *,
    dataset_limit: float,
    train_validation_split: float,
    randomization_seed: int,
    has_validation_file: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows of the training file, each sorted.

    Same arithmetic as SPANet, so a seed picks the same events: a positive
    ``randomization_seed`` permutes with ``numpy.random.RandomState(seed)``; training takes
    positions ``[0, round(limit * split * N))``, validation the rest up to ``round(limit * N)``.
    With a separate validation file, training keeps all ``round(limit * N)`` and validation
    here is empty.
    """
    if randomization_seed > 0:
        order = np.random.RandomState(randomization_seed).permutation(num_events)
    else:
        order = np.arange(num_events)
    kept = round(dataset_limit * num_events)
    if has_validation_file:
        return np.sort(order[:kept]), np.zeros(0, dtype=np.int64)
    cut = round(dataset_limit * train_validation_split * num_events)
    return np.sort(order[:cut]), np.sort(order[cut:kept])


@dataclass(frozen=True)
class Filtered:
    """What :func:`filter_rows` kept, and why the others went."""

    rows: np.ndarray
    wrong_count: int
    """Events without exactly ``limit_to_num_jets`` vectors."""
    invalid: int
    """Events (of those with the right count) with a NaN/inf feature on a real object."""
    first_invalid: int | None
    """The file row of the first invalid event (None when there is none)."""


def filter_rows(
    rows: np.ndarray, num_vectors: np.ndarray, finite: np.ndarray | None, *, limit_to_num_jets: int
) -> Filtered:
    """Keep ``rows`` whose event has exactly ``limit_to_num_jets`` vectors (when positive) and,
    when ``finite`` is given (``drop_invalid_events``), only finite features.

    ``num_vectors`` and ``finite`` are per file row (SPANet's count: real objects, each GLOBAL
    input adding one).
    """
    keep = np.ones(len(rows), dtype=bool)
    if limit_to_num_jets > 0:
        keep &= num_vectors[rows] == limit_to_num_jets
    wrong_count = len(rows) - int(keep.sum())
    invalid, first = 0, None
    if finite is not None:
        bad = ~finite[rows] & keep
        invalid = int(bad.sum())
        if invalid:
            first = int(rows[np.argmax(bad)])
        keep &= ~bad
    return Filtered(rows[keep], wrong_count, invalid, first)


def full_event_rows(
    rows: np.ndarray, target_masks: Mapping[str, np.ndarray], particles: Sequence[str]
) -> np.ndarray:
    """``partial_events: false``: the rows in which every particle is reconstructable
    (``target_masks`` per file row); all rows when there is no particle."""
    if not particles:
        return rows
    full = np.logical_and.reduce([target_masks[name][rows] for name in particles])
    return rows[full]


def equal_share(rows: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Contiguous share of ``rank``, all shares of equal length (at most world - 1 events
    dropped), so every rank takes the same number of training steps."""
    size = len(rows) // world
    return rows[rank * size : (rank + 1) * size]


def rank_share(rows: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Contiguous share of ``rank`` that drops nothing (validation and testing see every event)."""
    return np.array_split(rows, world)[rank]


def bytes_per_event(
    spec: EventSpec, max_objects: Mapping[str, int], pair_features: Mapping[str, Sequence[str]] | None = None
) -> int:
    """Bytes the in-memory arrays take per event (features, pairs, masks, targets, labels, weights)."""
    total = 8 + 4 * 2 + 1  # row, event and assignment weight, assignment mask
    for name, names in (pair_features or {}).items():
        total += 4 * max_objects.get(name, 0) ** 2 * len(names)
    for source in spec.sequential:
        total += max_objects.get(source.name, 0) * (4 * source.num_features + 1)
    total += sum(4 * s.num_features for s in spec.global_inputs)
    total += sum(8 * p.num_products + 1 + 4 for p in spec.particles)
    total += 4 * len(spec.regressions) + 12 * len(spec.classifications)
    return total


def choose_mode(
    requested: str, need_bytes: int, *, fits_on_device: bool, available_memory: int
) -> DatasetMode:
    """The option ``dataset_mode`` when it names a mode; for ``auto``: the device when the data
    fits there, else memory below :data:`MEMORY_FRACTION` of ``available_memory``, else streaming."""
    if requested in ("memory", "streaming", "device"):
        return requested  # type: ignore[return-value]
    if fits_on_device:
        return "device"
    return "memory" if need_bytes < MEMORY_FRACTION * available_memory else "streaming"


def usable_workers(asked: int, mode: str, blocks: int, cpus: int) -> int:
    """Loader processes worth starting: none for in-memory data, else at most the usable CPU
    cores and the number of blocks to read."""
    if mode == "memory":
        return 0
    return max(0, min(asked, cpus, blocks))
