"""Device-resident data (``dataset_mode: device``) and batches whose object width the host knows.

**Why.** On a GPU a training step of these small networks takes milliseconds; a DataLoader that
gathers a batch on the host, pins it and copies it over, and a step that reads the trimmed
width back from the device (:meth:`Batch.trimmed` needs the last used slot as a Python
number), keep the GPU waiting on the host. In ``device`` mode the whole split lives on the
accelerator as torch tensors (1M events x 20 objects x 5 features is 0.4 GB) and
:class:`DeviceLoader` draws batches there, with no workers and no copies per step.

**Same batches as memory mode.** The event order of an epoch is the one
:class:`~spanet_lite.dataset.dataset.InMemoryDataset` uses (same ``(seed, epoch, rank)``
generator, each batch's indices sorted), so a run gives the same batches, and the same losses
up to the width padding below, in ``memory`` and ``device`` mode. The order is drawn on the
host once per epoch and copied to the device in one transfer.

**Widths known on the host.** At load time each event's *extent* per SEQUENTIAL input (last
slot a real object or a target index uses, + 1) is computed once on the host. A batch's kept
width is then the maximum over its events, a numpy reduction over the batch's host-side
indices, so trimming needs no device-to-host read. The batch is handed over as a
:class:`SizedBatch`, whose :meth:`~SizedBatch.trimmed` is a no-op.

**Width buckets.** With ``bucket`` > 1 (on CUDA) kept widths are rounded up to a multiple of
``bucket`` (capped at the file's width), so the network sees a handful of shapes instead of a
new one almost every step; that is what lets ``torch.compile`` and CUDA graphs reuse their
work. Padding a trimmed batch with more masked slots is exact for the same reason trimming
is (padded objects are masked keys everywhere). On the CPU, where a smaller tensor is simply
faster and nothing is compiled, the bucket is 1 (exact trimming).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset.batch import Batch, SlotMap, kept_slots, trim_inputs, trim_pairs
from spanet_lite.dataset.dataset import _rng, epoch_order, event_extents
from spanet_lite.dataset.reader import EventBlock

CUDA_WIDTH_BUCKET = 4
"""Kept widths on CUDA are rounded up to a multiple of this (see the module docstring)."""

DEVICE_MEMORY_FRACTION = 0.25
"""``dataset_mode: auto`` keeps the data on the GPU when train + validation arrays need less than
this fraction of its free memory (the rest is left to activations, optimiser state and the
allocator's caches)."""


def bucket_for(device: torch.device | str) -> int:
    """The width bucket for batches that train on ``device``: 1 (exact) off CUDA."""
    return CUDA_WIDTH_BUCKET if torch.device(device).type == "cuda" else 1


def bucketed(kept: Sequence[int], widths: Sequence[int], bucket: int) -> tuple[int, ...]:
    """Kept widths rounded up to a multiple of ``bucket``, never past the file's widths."""
    if bucket <= 1:
        return tuple(int(k) for k in kept)
    return tuple(
        min(w, max(bucket, math.ceil(k / bucket) * bucket)) for k, w in zip(kept, widths, strict=True)
    )


def fits_on_device(num_bytes: int) -> bool:
    """Whether ``auto`` should keep ``num_bytes`` of data on the current CUDA device."""
    if not torch.cuda.is_available():
        return False
    try:
        free, _total = torch.cuda.mem_get_info()
    except (RuntimeError, AssertionError):
        return False
    return num_bytes < DEVICE_MEMORY_FRACTION * free


class SizedBatch(Batch):
    """A :class:`Batch` already trimmed (or bucket-padded) on the host side: nothing left to trim.

    :meth:`trimmed` returns it unchanged, so the training step never reads a width back from
    the device; :meth:`to` keeps the class (and is free when the tensors are already there).
    """

    def trimmed(self, order: Sequence[str] | None = None) -> SizedBatch:
        return self

    def to(self, device: torch.device | str, non_blocking: bool = False) -> SizedBatch:
        if next(iter(self.features.values())).device == torch.device(device):
            return self
        return _as_sized(super().to(device, non_blocking=non_blocking))

    def pin_memory(self) -> SizedBatch:
        return _as_sized(super().pin_memory())


def _as_sized(batch: Batch) -> SizedBatch:
    return SizedBatch(**{f.name: getattr(batch, f.name) for f in fields(batch)})


def presize(
    batch: Batch, order: Sequence[str], bucket: int, device: torch.device | str | None = None
) -> SizedBatch:
    """``batch`` (on the host) trimmed to its kept slots rounded up to ``bucket``, as a SizedBatch,
    moved to ``device`` when given.

    For loaders that build batches on the host (memory and streaming modes): the kept widths
    are read there, where reading them costs nothing. The whole (pinned, contiguous) batch is
    copied asynchronously and cut on the device: cutting first would make a non-contiguous
    view that the copy has to stage through unpinned memory, synchronously.
    """
    if isinstance(batch, SizedBatch):
        return batch if device is None else batch.to(device, non_blocking=True)
    slots = kept_slots(batch.masks, order, batch.targets.values())
    slots = SlotMap(slots.names, slots.widths, bucketed(slots.kept, slots.widths, bucket))
    if device is not None:
        batch = batch.to(device, non_blocking=True)
    return _apply_slots(batch, slots)


def _apply_slots(batch: Batch, slots: SlotMap) -> SizedBatch:
    if not slots.trims:
        return _as_sized(batch)
    features, masks = trim_inputs(batch.features, batch.masks, slots)
    targets = {name: shift_targets(value, slots) for name, value in batch.targets.items()}
    values = {f.name: getattr(batch, f.name) for f in fields(batch)}
    values.update(features=features, masks=masks, targets=targets, pairs=trim_pairs(batch.pairs, slots))
    return SizedBatch(**values)


def shift_targets(indices: Tensor, slots: SlotMap) -> Tensor:
    """Original combined indices -> trimmed ones, like :meth:`SlotMap.to_trimmed`, with the
    shifts as Python numbers (no small host-to-device copy per batch)."""
    if not slots.trims:
        return indices
    shifted = indices
    start, lost = 0, 0
    for width, kept in zip(slots.widths[:-1], slots.kept[:-1], strict=True):
        start += width
        step = width - kept  # what this input lost shifts every later input down
        if step:
            shifted = shifted - (indices >= start).to(indices.dtype) * step
        lost += step
    if lost == 0:
        return indices
    return torch.where(indices >= 0, shifted, indices)


class DeviceDataset:
    """One split as torch tensors, moved once to the training device; see the module docstring.

    ``block`` has its weights applied. Tensors stay on the host until the first pass, which
    moves them to ``device_fn()`` (the trainer's device: each DDP process its own GPU).
    """

    def __init__(
        self,
        block: EventBlock,
        spec: EventSpec,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        group_by_multiplicity: bool = False,
    ) -> None:
        assert block.assignment_weights is not None and block.assignment_event_mask is not None
        self.order = [s.name for s in spec.sequential]
        self.widths = tuple(block.masks[name].shape[1] for name in self.order)
        self.extents = event_extents(block, self.order)
        self.sizes = self.extents.sum(1) if group_by_multiplicity and shuffle else None  # as event_sizes
        self.num_events = len(block)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.epoch = 0
        self.device = torch.device("cpu")

        def tensors(values: dict[str, np.ndarray]) -> dict[str, Tensor]:
            return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in values.items()}

        self.columns = Batch(
            features=tensors(block.features),
            masks=tensors(block.masks),
            targets=tensors(block.targets),
            target_masks=tensors(block.target_masks),
            particle_weights=tensors(block.particle_weights),
            regressions=tensors(block.regressions),
            classifications=tensors(block.classifications),
            event_weights=torch.from_numpy(np.ascontiguousarray(block.event_weights)),
            assignment_weights=torch.from_numpy(np.ascontiguousarray(block.assignment_weights)),
            classification_weights=tensors(block.classification_weights),
            assignment_event_mask=torch.from_numpy(np.ascontiguousarray(block.assignment_event_mask)),
            pairs=tensors(block.pairs),
        )

    def __len__(self) -> int:
        return math.ceil(self.num_events / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def place(self, device: torch.device | str) -> None:
        """Move the split to ``device`` (once; a no-op when it is there)."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device != self.device:
            self.columns = self.columns.to(device)
            self.device = device

    def batches(self) -> Iterator[SizedBatch]:
        """This epoch's batches, on the split's device, trimmed to bucketed widths."""
        bucket = bucket_for(self.device)
        if self.shuffle:
            rng = _rng(self.seed, self.epoch, self.rank)
            order = epoch_order(rng, self.num_events, self.batch_size, self.sizes)
            for start in range(0, self.num_events, self.batch_size):
                order[start : start + self.batch_size].sort()
            device_order = torch.from_numpy(order).to(self.device)  # one copy per epoch
        for start in range(0, self.num_events, self.batch_size):
            stop = min(start + self.batch_size, self.num_events)
            host_index = order[start:stop] if self.shuffle else slice(start, stop)
            kept = self.extents[host_index].max(axis=0) if stop > start else np.zeros(len(self.order))
            kept = tuple(min(max(int(k), 1), w) for k, w in zip(kept, self.widths, strict=True))
            slots = SlotMap(tuple(self.order), self.widths, bucketed(kept, self.widths, bucket))
            index = device_order[start:stop] if self.shuffle else None
            yield self._batch(slots, start, stop, index)

    def _batch(self, slots: SlotMap, start: int, stop: int, index: Tensor | None) -> SizedBatch:
        kept = dict(zip(slots.names, slots.kept, strict=True))

        def take(value: Tensor, width: int | None = None) -> Tensor:
            if width is not None:
                value = value[:, :width]
            return value[start:stop] if index is None else value.index_select(0, index)

        def take_all(values: dict[str, Tensor], cut: bool = False) -> dict[str, Tensor]:
            return {k: take(v, kept.get(k) if cut else None) for k, v in values.items()}

        c = self.columns
        assert c.event_weights is not None and c.assignment_weights is not None
        assert c.assignment_event_mask is not None
        return SizedBatch(
            features=take_all(c.features, cut=True),
            masks=take_all(c.masks, cut=True),
            targets={k: shift_targets(v, slots) for k, v in take_all(c.targets).items()},
            target_masks=take_all(c.target_masks),
            particle_weights=take_all(c.particle_weights),
            regressions=take_all(c.regressions),
            classifications=take_all(c.classifications),
            event_weights=take(c.event_weights),
            assignment_weights=take(c.assignment_weights),
            classification_weights=take_all(c.classification_weights),
            assignment_event_mask=take(c.assignment_event_mask),
            pairs={k: take(v[:, : kept[k], : kept[k]]) for k, v in c.pairs.items()},
        )


class DeviceLoader:
    """An iterable of device batches with a length, standing in for a DataLoader.

    Like :class:`~spanet_lite.dataset.dataset.EpochDataLoader` it tells its dataset the epoch
    before each pass (``epoch_fn``, else passes are counted); ``device_fn`` names the device the
    data should be on (the trainer's), looked up at the start of each pass.
    """

    def __init__(
        self,
        dataset: DeviceDataset,
        *,
        epoch_fn: Callable[[], int | None] | None = None,
        device_fn: Callable[[], torch.device | str | None] | None = None,
    ) -> None:
        self.dataset = dataset
        self._epoch_fn = epoch_fn
        self._device_fn = device_fn
        self._passes = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[Any]:
        epoch = self._epoch_fn() if self._epoch_fn is not None else None
        self.dataset.set_epoch(self._passes if epoch is None else epoch)
        self._passes += 1
        device = self._device_fn() if self._device_fn is not None else None
        if device is not None:
            self.dataset.place(device)
        return self.dataset.batches()
