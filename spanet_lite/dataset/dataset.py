"""Iterable datasets that yield whole :class:`Batch` objects, in memory or streamed from HDF5.

A *split* is a sorted array of file rows (one rank's share of training, validation or
testing events). Batch ``i`` of a split is always the events at split positions
``[i*B, (i+1)*B)`` when shuffling is off, in both modes, so the two modes give identical
batches (tested). The DataLoader runs with ``batch_size=None``: collation is ours.

:class:`InMemoryDataset`
    Holds every array of its split as one numpy array (read once, block by block, into
    preallocated arrays, so peak memory is the arrays plus one block). Unshuffled batches
    are zero-copy slices wrapped by ``torch.from_numpy``; shuffled ones gather a sorted
    random index per batch (sorted for memory locality; the order inside a batch does not
    matter to the loss). Runs in the main process: workers would only copy data that is
    already in RAM.

:class:`StreamingDataset`
    Reads blocks of ``block_batches`` batches with one contiguous HDF5 slice per dataset.
    Training shuffles the block order and the events inside each block (seeded by
    ``seed``, epoch and rank). DataLoader workers take every ``W``-th block and send each
    block whole (:class:`BlockItem`); :class:`EpochDataLoader` cuts it into batches in the
    main process. The DataLoader collects worker output round-robin, so unshuffled blocks
    arrive in file order whatever the number of workers. Memory: a block per worker and
    prefetch slot, plus 8 bytes per event for the row index.

With ``group_by_multiplicity`` both regroup their shuffled order (the whole split in memory,
each block when streaming) so that a batch holds events of similar size: :func:`grouped_order`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset.balance import BalanceTables, apply_weights
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.reader import EventBlock, FileLayout, read_block

DEFAULT_BLOCK_EVENTS = 32768
"""Events per contiguous read: large enough that HDF5 call overhead vanishes, small enough
that a block of a 20-object, 10-feature file stays near 30 MB."""

MAX_READ_SPAN = 2 * DEFAULT_BLOCK_EVENTS
"""Most file rows one HDF5 read covers (see :func:`read_rows`)."""


# ----------------------------------------------------------------------------- reading rows


def iter_blocks(
    file: h5py.File,
    spec: EventSpec,
    layout: FileLayout,
    rows: np.ndarray,
    *,
    block_events: int = DEFAULT_BLOCK_EVENTS,
    with_features: bool = True,
    check_finite: bool = False,
) -> Iterator[EventBlock]:
    """Yield the events at sorted file ``rows``, ``block_events`` split positions at a time.

    Each block is one contiguous read of file rows ``[rows[a], rows[b-1] + 1)``; events in that
    range that are not in ``rows`` are read and dropped (cheaper than many small reads).
    """
    for a in range(0, len(rows), block_events):
        yield read_rows(
            file,
            spec,
            layout,
            rows[a : a + block_events],
            with_features=with_features,
            check_finite=check_finite,
        )


def read_rows(
    file: h5py.File,
    spec: EventSpec,
    layout: FileLayout,
    rows: np.ndarray,
    *,
    with_features: bool = True,
    check_finite: bool = False,
) -> EventBlock:
    """The events at sorted file ``rows``, with one contiguous read per ``MAX_READ_SPAN`` file rows.

    Sparse rows (a randomly drawn 5% validation split) would otherwise make one read span
    the whole file; capping the span bounds both the temporary memory and the wasted reading.
    """
    start, stop = int(rows[0]), int(rows[-1]) + 1
    if stop - start > MAX_READ_SPAN:
        cuts = np.searchsorted(rows, np.arange(start + MAX_READ_SPAN, stop, MAX_READ_SPAN))
        pieces = (
            read_rows(file, spec, layout, part, with_features=with_features, check_finite=check_finite)
            for part in np.split(rows, cuts)
            if len(part)
        )
        return materialize(pieces, len(rows))
    block = read_block(
        file, spec, layout, start, stop, with_features=with_features, check_finite=check_finite
    )
    if stop - start == len(rows):
        return block
    return block.select(rows - start)


def materialize(blocks: Iterator[EventBlock], total: int) -> EventBlock:
    """Concatenate ``blocks`` holding ``total`` events into preallocated arrays.

    Peak memory is the result plus one block, rather than the 2x of a final concatenate.
    """
    out: EventBlock | None = None
    position = 0
    for block in blocks:
        if out is None:
            out = _allocate_like(block, total)
        _assign(out, block, position)
        position += len(block)
    if out is None or position != total:
        raise ValueError(f"expected {total} events, got {position}")
    return out


def _allocate_like(block: EventBlock, total: int) -> EventBlock:
    def empty(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, dict):
            return {k: empty(v) for k, v in value.items()}
        return np.empty((total, *value.shape[1:]), dtype=value.dtype)

    return EventBlock(**{f.name: empty(getattr(block, f.name)) for f in fields(block)})


def _assign(out: EventBlock, block: EventBlock, position: int) -> None:
    end = position + len(block)
    for f in fields(block):
        source, target = getattr(block, f.name), getattr(out, f.name)
        if source is None:
            continue
        if isinstance(source, dict):
            for key, value in source.items():
                target[key][position:end] = value
        else:
            target[position:end] = source


# ----------------------------------------------------------------------------- batches


def batch_from(block: EventBlock, index: slice | np.ndarray) -> Batch:
    """The :class:`Batch` of ``block`` (weights applied) at ``index``.

    A slice gives zero-copy views; an index array gathers with numpy, which on a busy CPU is
    many times faster than torch's multi-threaded ``index_select`` for batch-sized gathers.
    """

    if isinstance(index, slice):

        def take(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(values[index])
    else:

        def take(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.take(values, index, axis=0))  # several times faster than values[index]

    def take_all(values: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: take(v) for k, v in values.items()}

    assert block.assignment_weights is not None and block.assignment_event_mask is not None
    return Batch(
        features=take_all(block.features),
        masks=take_all(block.masks),
        targets=take_all(block.targets),
        target_masks=take_all(block.target_masks),
        particle_weights=take_all(block.particle_weights),
        regressions=take_all(block.regressions),
        classifications=take_all(block.classifications),
        event_weights=take(block.event_weights),
        assignment_weights=take(block.assignment_weights),
        classification_weights=take_all(block.classification_weights),
        assignment_event_mask=take(block.assignment_event_mask),
        pairs=take_all(block.pairs),
    )


def event_extents(block: EventBlock, order: Sequence[str]) -> np.ndarray:
    """(n, S) int32: per event and SEQUENTIAL input, the last slot a real object or a target
    index uses, + 1 (0 when none); the per-event form of :func:`spanet_lite.dataset.batch.kept_slots`."""
    n = len(block)
    widths = [block.masks[name].shape[1] for name in order]
    extents = np.zeros((n, len(order)), dtype=np.int32)
    for i, name in enumerate(order):
        mask = block.masks[name].astype(bool)
        if mask.shape[1]:
            last = mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)
            extents[:, i] = np.where(mask.any(axis=1), last, 0)
    starts = np.cumsum([0, *widths])
    rows = np.arange(n)
    for targets in block.targets.values():
        for column in np.asarray(targets).reshape(n, -1).T:
            used = column >= 0
            which = np.clip(np.searchsorted(starts[1:], column, side="right"), 0, len(order) - 1)
            reach = np.where(used, column - starts[which] + 1, 0).astype(np.int32)
            np.maximum.at(extents, (rows[used], which[used]), reach[used])
    return extents


GROUP_POOL_BATCHES = 64
"""``group_by_multiplicity``: the shuffled events are sorted by size within pools of this many
batches. Larger pools give more uniform batches but batches drawn from fewer distinct regions
of the epoch's order; 64 cut the mean trimmed width of SPANet's ttbar events from 9.0 to 6.7."""


def grouped_order(
    order: np.ndarray, sizes: np.ndarray, batch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """A shuffled ``order`` regrouped so that each batch holds events of similar ``sizes``.

    Batches are trimmed to the widest event they hold, so a batch of events with 6 jets costs
    less than one with a single 14-jet event among them. Each pool of ``GROUP_POOL_BATCHES``
    batches of ``order`` is sorted by size (stably: equal sizes keep their random order) and
    cut into batches, and then the full batches of the whole epoch are put in a random order
    (a short last batch stays last: batches are cut from the result at multiples of
    ``batch_size``). Every event still comes exactly once per epoch; what changes is which
    events share a batch.
    """
    pool = GROUP_POOL_BATCHES * batch_size
    regrouped = order.copy()
    for start in range(0, len(order), pool):
        chunk = regrouped[start : start + pool]
        regrouped[start : start + pool] = chunk[np.argsort(sizes[chunk], kind="stable")]
    full = len(order) // batch_size
    batches = regrouped[: full * batch_size].reshape(full, batch_size)[rng.permutation(full)]
    return np.concatenate([batches.reshape(-1), regrouped[full * batch_size :]])


def event_sizes(block: EventBlock, order: Sequence[str]) -> np.ndarray:
    """(n,) what :func:`grouped_order` groups by: the slots an event keeps, over every input."""
    return event_extents(block, order).sum(1)


def epoch_order(
    rng: np.random.Generator, num_events: int, batch_size: int, sizes: np.ndarray | None
) -> np.ndarray:
    """A shuffled order of ``num_events``, grouped by ``sizes`` (:func:`grouped_order`) when given."""
    order = rng.permutation(num_events)
    return order if sizes is None else grouped_order(order, sizes, batch_size, rng)


def _rng(seed: int, epoch: int, rank: int, salt: int = 0) -> np.random.Generator:
    """A generator that differs per (seed, epoch, rank, salt) and repeats for equal ones."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, rank, salt]))


def _batches(block: EventBlock, size: int, order: np.ndarray | None) -> Iterator[Batch]:
    """Consecutive batches of ``block``, or of ``order`` (each batch's indices sorted, for
    memory locality: the order inside a batch does not matter to the loss)."""
    for start in range(0, len(block), size):
        if order is None:
            yield batch_from(block, slice(start, start + size))
        else:
            yield batch_from(block, np.sort(order[start : start + size]))


@dataclass
class BlockItem:
    """What a streaming worker hands to the main process: a whole block and its event order.

    Sending one ~20 MB block instead of ~30 batches of ~20 tensors each turns hundreds of
    shared-memory hand-overs into one pickle; the main process then cuts batches exactly as
    in-memory mode does (:class:`EpochDataLoader`). Blocks arrive in the order the
    DataLoader collects them from its workers (round-robin), which for unshuffled blocks
    dealt out round-robin is the file order.
    """

    block: EventBlock
    order: np.ndarray | None
    batch_size: int

    def batches(self) -> Iterator[Batch]:
        return _batches(self.block, self.batch_size, self.order)


class _EpochAware(IterableDataset):
    """Shared bits: length in batches, the epoch used to seed shuffling."""

    num_events: int
    batch_size: int

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.num_events / self.batch_size)


class InMemoryDataset(_EpochAware):
    """All events of a split as numpy arrays; yields batches (see the module docstring)."""

    def __init__(
        self,
        block: EventBlock,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        group_by: Sequence[str] | None = None,
    ) -> None:
        """``group_by``: the SEQUENTIAL inputs whose sizes group shuffled batches
        (``group_by_multiplicity``, :func:`grouped_order`); None shuffles plainly."""
        super().__init__()
        self.block = block
        self.num_events = len(block)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.sizes = event_sizes(block, group_by) if group_by is not None and shuffle else None

    def __iter__(self) -> Iterator[Batch]:
        order = None
        if self.shuffle:
            rng = _rng(self.seed, self.epoch, self.rank)
            order = epoch_order(rng, self.num_events, self.batch_size, self.sizes)
        yield from _batches(self.block, self.batch_size, order)


class StreamingDataset(_EpochAware):
    """Reads its split from HDF5 block by block; see the module docstring.

    Holds only what is cheap to pickle (the row array and small tables); every worker opens
    the file itself, so no HDF5 handle crosses a fork.
    """

    def __init__(
        self,
        spec: EventSpec,
        options: Options,
        layout: FileLayout,
        rows: np.ndarray,
        *,
        batch_size: int,
        shuffle: bool,
        tables: BalanceTables | None,
        seed: int = 0,
        rank: int = 0,
        block_events: int = DEFAULT_BLOCK_EVENTS,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.options = options
        self.layout = layout
        self.rows = rows
        self.num_events = len(rows)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.tables = tables
        self.seed = seed
        self.rank = rank
        self.block_batches = max(1, block_events // batch_size)

    @property
    def num_blocks(self) -> int:
        return math.ceil(self.num_events / (self.block_batches * self.batch_size))

    def blocks(self, worker: int, num_workers: int) -> list[tuple[int, int]]:
        """Split-position ranges ``(a, b)`` this worker reads, in the order it reads them."""
        span = self.block_batches * self.batch_size
        ranges = [(a, min(a + span, self.num_events)) for a in range(0, self.num_events, span)]
        if self.shuffle:
            order = _rng(self.seed, self.epoch, self.rank, 1).permutation(len(ranges))
            ranges = [ranges[i] for i in order]
        return ranges[worker::num_workers]

    def __iter__(self) -> Iterator[BlockItem]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        with h5py.File(self.layout.path, "r") as file:
            for a, b in self.blocks(worker, num_workers):
                block = read_rows(file, self.spec, self.layout, self.rows[a:b])
                apply_weights(block, self.spec, self.options, self.tables)
                order = None
                if self.shuffle:
                    sizes = None
                    if self.options.group_by_multiplicity:
                        sizes = event_sizes(block, [s.name for s in self.spec.sequential])
                    rng = _rng(self.seed, self.epoch, self.rank, 2 + a)
                    order = epoch_order(rng, len(block), self.batch_size, sizes)
                yield BlockItem(block, order, self.batch_size)


class EpochDataLoader(DataLoader):
    """A DataLoader of :class:`Batch` that tells its dataset the epoch before each pass.

    ``epoch_fn`` (e.g. the trainer's current epoch, so a resumed run reshuffles like an
    uninterrupted one) wins; without it, passes are counted. Workers are not persistent, so
    every pass forks them with the new epoch. :class:`BlockItem` objects from streaming
    workers are cut into batches here, and batches are pinned here when ``pin_memory``.
    """

    def __init__(
        self,
        dataset: _EpochAware,
        *,
        epoch_fn: Callable[[], int | None] | None = None,
        pin_memory: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, batch_size=None, **kwargs)
        self._epoch_fn = epoch_fn
        self._pin = pin_memory
        self._passes = 0

    def __iter__(self) -> Iterator[Batch]:  # type: ignore[override]
        epoch = self._epoch_fn() if self._epoch_fn is not None else None
        self.dataset.set_epoch(self._passes if epoch is None else epoch)  # type: ignore[attr-defined]
        self._passes += 1
        return self._batches(super().__iter__())

    def _batches(self, items: Iterator[Any]) -> Iterator[Batch]:
        for item in items:
            for batch in item.batches() if isinstance(item, BlockItem) else (item,):
                yield batch.pin_memory() if self._pin else batch
