"""Lightning DataModule: files + event spec + options -> train/val/test loaders of :class:`Batch`.

All file I/O happens in :meth:`SpanetDataModule.setup`. For each file it: validates it with
:func:`spanet_lite.dataset.schema.validate_file` (the first error becomes an ``InputError``);
reads masks, targets and labels once in blocks (the *scan*) to apply the event filters and fit
the balancing tables; computes :class:`DatasetStatistics` from the training split (unless
given); then builds an in-memory or a streaming dataset for this rank's share.

Which events (SPANet's options, in this order; the policies are the pure functions of
:mod:`spanet_lite.dataset.selection`, this module is their Lightning glue):

1. ``dataset_limit`` keeps a fraction ``f`` of the training file: the first ``round(f * N)``
   events, or, when ``dataset_randomization`` is positive, a random subset drawn with that
   seed (``numpy.random.RandomState``, as SPANet does, so the same seed picks the same events).
2. ``train_validation_split`` ``s`` sends the first ``round(f * s * N)`` of those (in the drawn
   order) to training, the rest to validation; with ``validation_file`` the training split
   keeps all of them and validation reads that whole file. Each split is read in file order.
3. Filters, per split: ``partial_events: false`` (SPANet's default) leaves out of training
   *and* validation every event in which some particle is not fully reconstructable (a
   one-line count is in :attr:`SpanetDataModule.notes`; testing keeps every event);
   ``limit_to_num_jets = J > 0`` keeps events with exactly ``J`` vectors counted as SPANet
   counts them: the real objects of every input, each GLOBAL input adding one (so with a
   GLOBAL input, 6 jets is ``J = 7``); ``drop_invalid_events`` drops events with a
   NaN/inf feature on a real object (the count is logged); otherwise such a file is an error.
4. DDP: ``batch_size`` is per process, as in SPANet: each of ``W`` ranks takes
   ``batch_size`` events per step (``W x batch_size`` per optimiser step in all) and reads
   only its contiguous share of the split (training shares are cut to equal
   length so every rank takes the same number of steps). The loaders are built on
   IterableDatasets, so Lightning adds no DistributedSampler: the DataModule shards itself.

Loader workers: ``num_dataloader_workers`` is capped at what can help: none for data held in
memory (batches are slices of arrays already there), and for streamed data at most the CPU
cores this process may use and the number of blocks to read (SPANet's examples ask for 16).
When a number the options file sets is capped, :attr:`SpanetDataModule.notes` says so.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import lightning as L
import numpy as np
import torch

from spanet_lite.config.event_file import event_spec_of
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset import hdf5_layout, schema
from spanet_lite.dataset.balance import BalanceTables, apply_weights, fit_balance
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.dataset import (
    DEFAULT_BLOCK_EVENTS,
    EpochDataLoader,
    InMemoryDataset,
    StreamingDataset,
    iter_blocks,
    materialize,
)
from spanet_lite.dataset.device import DeviceDataset, DeviceLoader, bucket_for, fits_on_device, presize
from spanet_lite.dataset.normalization import compute_statistics, single_class_note
from spanet_lite.dataset.reader import EventBlock, FileLayout, resolve_layout
from spanet_lite.dataset.selection import (
    DatasetMode,
    bytes_per_event,
    choose_mode,
    equal_share,
    filter_rows,
    full_event_rows,
    rank_share,
    split_rows,
    usable_workers,
)
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.errors import InputError, SpanetWarning

log = logging.getLogger(__name__)


@dataclass
class FileFacts:
    """Compact per-event facts of one file from the scan (about 5 + P + 4C bytes per event, 4 more
    with per-event weights)."""

    layout: FileLayout
    num_objects: np.ndarray
    """(n,) int32 vectors per event as SPANet counts them (``EventBlock.num_vectors``)."""
    finite: np.ndarray | None
    """(n,) bool: all features of real objects finite (None when not scanned)."""
    target_masks: dict[str, np.ndarray]
    classifications: dict[str, np.ndarray]
    event_weights: np.ndarray | None = None
    """(n,) float32 per-event weights when the file has ``event_weight_dataset`` (the scan's blocks
    read them anyway), else None."""


@dataclass
class SplitData:
    """One rank's share of a split and how to serve it."""

    layout: FileLayout
    rows: np.ndarray
    """Sorted file rows of this rank's events."""
    dataset: InMemoryDataset | StreamingDataset | DeviceDataset


def starting_epoch(trainer: Any) -> int | None:
    """The epoch a trainer is starting (None without a trainer). Lightning's ``processed``
    counter is right also when a resumed run re-creates its iterator, where ``current_epoch``
    still lags by one."""
    return None if trainer is None else int(trainer.fit_loop.epoch_progress.current.processed)


_STAGES = (None, "fit", "validate", "test", "predict")  # Lightning's stage names


class SpanetDataModule(L.LightningDataModule):
    """Train/val/test loaders over SPANet HDF5 files; see the module docstring.

    Files default to the options' ``training_file``, ``validation_file`` and ``testing_file``.
    ``statistics`` (e.g. from a run directory) skips computing them; after :meth:`setup`
    :attr:`statistics` holds the statistics in use. ``on_gpu``: whether the run trains on a GPU
    (``spanet-train`` passes its choice, so ``--gpus 0`` on a GPU machine neither keeps the data
    on the GPU nor pins host memory); None, as in a notebook without a trainer, means "when CUDA
    is available".
    """

    def __init__(
        self,
        spec: EventSpec | str | Path,
        options: Options,
        *,
        training_file: str | Path | None = None,
        validation_file: str | Path | None = None,
        testing_file: str | Path | None = None,
        statistics: DatasetStatistics | None = None,
        on_gpu: bool | None = None,
    ) -> None:
        super().__init__()
        self.spec = event_spec_of(spec)
        self.on_gpu = torch.cuda.is_available() if on_gpu is None else on_gpu
        self.options = options
        self.training_file = _path_or_none(training_file, options.training_file)
        self.validation_file = _path_or_none(validation_file, options.validation_file)
        self.testing_file = _path_or_none(testing_file, options.testing_file)
        self.statistics: DatasetStatistics | None = statistics
        self.splits: dict[str, SplitData] = {}
        self.mode: DatasetMode | None = None
        self.num_training_events: int | None = None
        """Events in the whole training split after filters (all ranks), set by setup("fit")."""
        self.notes: list[str] = []
        """One-line facts for the user about event selection and loader workers (set by setup)."""
        self.event_weights: str | None = None
        """The per-event weight dataset when the training or validation file has it (set by
        setup("fit"))."""
        self.event_weight_range: tuple[float, float] | None = None
        """Smallest and largest per-event weight of the training and validation events (after
        filters; 1 for a file without the dataset), when either file has weights (set by
        setup("fit")); equal ends mean the weighting is a constant. Both splits count: validation
        metrics are weighted too, and they choose the best checkpoint."""

    # ------------------------------------------------------------------ setup

    def setup(self, stage: str | None = None) -> None:
        if stage not in _STAGES:
            raise InputError(None, "stage", f"one of {', '.join(map(str, _STAGES))}", repr(stage))
        self._warnings: list[str] = []
        self._setup_stages(stage)
        for message in dict.fromkeys(self._warnings):
            warnings.warn(message, SpanetWarning, stacklevel=2)

    def _setup_stages(self, stage: str | None) -> None:
        rank, world = self._distributed()
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            self._setup_fit(rank, world)
        if (
            stage in (None, "test", "predict")
            and "test" not in self.splits
            and (self.testing_file is not None or stage in ("test", "predict"))
        ):
            self._setup_test(rank, world)

    def _setup_fit(self, rank: int, world: int) -> None:
        if self.training_file is None:
            raise InputError(None, "training_file", "a training HDF5 file (option training_file)", "none")
        per_rank = self.options.batch_size  # per process, as in SPANet
        train_facts = self._scan(self.training_file)
        train_rows, val_rows = split_rows(
            train_facts.layout.num_events,
            dataset_limit=self.options.dataset_limit,
            train_validation_split=self.options.train_validation_split,
            randomization_seed=self.options.dataset_randomization,
            has_validation_file=self.validation_file is not None,
        )
        used = len(train_rows) + len(val_rows)
        train_rows = self._filter(self.training_file, "training", train_facts, train_rows)
        train_before = len(train_rows)
        train_rows = self._full_events(self.training_file, "training", train_facts, train_rows)
        if self.validation_file is not None:
            val_facts = self._scan(self.validation_file)
            val_path = self.validation_file
            val_rows = np.arange(val_facts.layout.num_events, dtype=np.int64)
        else:
            val_facts, val_path = train_facts, self.training_file
            if len(val_rows) == 0:
                raise InputError(
                    None,
                    "train_validation_split",
                    "a split that leaves at least one validation event (a lower split, or a "
                    "validation_file)",
                    f"{self.options.train_validation_split} of {used} event(s): none left for validation",
                )
        val_rows = self._filter(val_path, "validation", val_facts, val_rows)
        self.event_weights = train_facts.layout.event_weight or val_facts.layout.event_weight
        val_before = len(val_rows)
        val_rows = self._full_events(val_path, "validation", val_facts, val_rows)
        if not self.options.partial_events and self.spec.particles:
            left_out = (train_before - len(train_rows), val_before - len(val_rows))
            self.notes.append(
                f"partial_events = false: left out {left_out[0]} of {train_before} training and "
                f"{left_out[1]} of {val_before} validation events without every particle reconstructable"
            )

        if len(train_rows) < self.options.batch_size * world:
            processes = f" x {world} processes" if world > 1 else ""
            raise InputError(
                self.training_file,
                "",
                f"at least batch_size = {self.options.batch_size}{processes} training "
                "events (lower batch_size or raise dataset_limit / train_validation_split)",
                f"{len(train_rows)} events",
            )
        tables = fit_balance(
            self.spec,
            self.options,
            target_masks={k: v[train_rows] for k, v in train_facts.target_masks.items()},
            num_objects=train_facts.num_objects[train_rows],
            classifications={k: v[train_rows] for k, v in train_facts.classifications.items()},
        )
        self.num_training_events = len(train_rows)
        self.event_weight_range = _weight_range((train_facts, train_rows), (val_facts, val_rows))
        train_share = equal_share(train_rows, rank, world)
        val_share = rank_share(val_rows, rank, world)
        if len(val_share) == 0:
            raise InputError(
                val_path,
                "",
                f"at least one validation event per process ({world} processes), "
                "so the validation split has batches",
                f"{len(val_rows)} events",
            )
        self.mode = self._choose_mode(len(train_share) + len(val_share), train_facts.layout)

        train_block = None
        if self.mode in ("memory", "device"):
            train_block = self._load(self.training_file, train_facts.layout, train_share)
        if self.statistics is None:
            self.statistics = self._compute_statistics(
                train_facts, train_rows, train_block if world == 1 else None
            )
        self._check_labels(train_facts, train_rows, self.training_file)
        self._check_labels(val_facts, val_rows, val_path)
        for key, labels in train_facts.classifications.items():
            note = single_class_note(labels[train_rows], key)
            if note is not None:
                self.notes.append(note)

        seed = self.options.seed
        self.splits["train"] = self._make_split(
            train_facts.layout,
            train_share,
            train_block,
            per_rank,
            shuffle=True,
            tables=tables,
            seed=seed,
            rank=rank,
            device=self.mode == "device",
        )
        val_block = (
            self._load(val_path, val_facts.layout, val_share) if self.mode in ("memory", "device") else None
        )
        note = self._worker_note(self.splits["train"].dataset)
        if note:
            self.notes.append(note)
        self.splits["val"] = self._make_split(
            val_facts.layout,
            val_share,
            val_block,
            per_rank,
            shuffle=False,
            tables=None,
            seed=seed,
            rank=rank,
            device=self.mode == "device",
        )

    def _setup_test(self, rank: int, world: int) -> None:
        if self.testing_file is None:
            raise InputError(None, "testing_file", "a testing HDF5 file (option testing_file)", "none")
        if self.statistics is None:
            raise InputError(
                None,
                "statistics",
                "statistics from a training run (or a training_file to compute them) before testing",
                "none",
            )
        per_rank = self.options.batch_size  # per process, as in SPANet
        facts = self._scan(self.testing_file)
        rows = self._filter(
            self.testing_file, "testing", facts, np.arange(facts.layout.num_events, dtype=np.int64)
        )
        self._check_labels(facts, rows, self.testing_file)
        share = rank_share(rows, rank, world)
        if len(share) == 0:
            raise InputError(
                self.testing_file,
                "",
                f"at least one testing event per process ({world} processes)",
                f"{len(rows)} events",
            )
        # Testing goes through the host loaders (evaluation reads its batches there).
        chosen = self._choose_mode(len(share), facts.layout)
        mode: DatasetMode = "memory" if chosen == "device" else chosen
        self.mode = self.mode or mode
        block = self._load(self.testing_file, facts.layout, share) if mode == "memory" else None
        self.splits["test"] = self._make_split(
            facts.layout,
            share,
            block,
            per_rank,
            shuffle=False,
            tables=None,
            seed=self.options.seed,
            rank=rank,
        )

    # ------------------------------------------------------------------ loaders

    def train_dataloader(self) -> EpochDataLoader:
        return self._loader("train")

    def val_dataloader(self) -> EpochDataLoader:
        return self._loader("val")

    def test_dataloader(self) -> EpochDataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> EpochDataLoader:
        return self._loader("test")

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, Batch):
            if torch.device(device).type != "cpu":  # widths read on the host, cut on the device
                order = [s.name for s in self.spec.sequential]
                return presize(batch, order, bucket_for(device), device)
            return batch.to(device, non_blocking=True)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def rows(self, split: str) -> np.ndarray:
        """Sorted file rows of this rank's events in ``split`` ("train", "val", "test"), e.g. to
        write predictions back next to the events they belong to."""
        return self._split(split, f"rows({split!r})").rows

    def _split(self, split: str, what: str) -> SplitData:
        """The prepared ``split``, or one line naming ``what`` was called too early (or with a
        name that is no split): rows() before setup() was a KeyError traceback."""
        if split not in ("train", "val", "test"):
            raise InputError(None, what, "a split train, val or test", repr(split))
        if split not in self.splits:
            stage = "fit" if split in ("train", "val") else "test"
            raise InputError(None, what, f"setup({stage!r}) first, which reads the files",
                             f"no {split} split prepared")
        return self.splits[split]

    def _loader(self, split: str) -> EpochDataLoader | DeviceLoader:
        dataset = self._split(split, f"{split}_dataloader()").dataset
        if isinstance(dataset, DeviceDataset):
            return DeviceLoader(dataset, epoch_fn=self._trainer_epoch, device_fn=self._trainer_device)
        workers = 0
        if isinstance(dataset, StreamingDataset):
            asked = self.options.num_dataloader_workers
            workers = usable_workers(asked, "streaming", dataset.num_blocks, _cpu_count())
        return EpochDataLoader(
            dataset,
            epoch_fn=self._trainer_epoch,
            num_workers=workers,
            pin_memory=self.on_gpu,
        )

    def _trainer_epoch(self) -> int | None:
        return starting_epoch(getattr(self, "trainer", None))

    def _trainer_device(self) -> torch.device | None:
        trainer = getattr(self, "trainer", None)
        return None if trainer is None else trainer.strategy.root_device

    # ------------------------------------------------------------------ helpers

    def _distributed(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return int(trainer.global_rank), int(trainer.world_size)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _worker_note(self, dataset: InMemoryDataset | StreamingDataset) -> str | None:
        """The line saying that a num_dataloader_workers the file sets is capped (None otherwise)."""
        asked = self.options.num_dataloader_workers
        streaming = isinstance(dataset, StreamingDataset)
        blocks = dataset.num_blocks if streaming else 0
        used = usable_workers(asked, "streaming" if streaming else "memory", blocks, _cpu_count())
        if used == asked or "num_dataloader_workers" not in self.options.explicit:
            return None
        if not streaming:
            why = "the data is held in memory, so batches need no loader processes"
        else:
            why = f"{_cpu_count()} usable CPU core(s), {blocks} block(s) to stream"
        return f"num_dataloader_workers = {asked}: using {used} ({why})"

    def _scan(self, path: Path) -> FileFacts:
        """Validate ``path`` and read its per-event facts (masks, targets, labels) in blocks."""
        report = schema.validate_file(
            path, self.spec, event_weight_dataset=self.options.event_weight_dataset, progress=True
        )
        _raise_first_error(report, allow_nonfinite=self.options.drop_invalid_events)
        # The warnings spanet-inspect shows for the same file, printed once setup found no error.
        self._warnings += report.warning_lines()
        with schema.open_h5(path) as file:
            layout = resolve_layout(file, self.spec, path, self.options.event_weight_dataset)
            reference = self.statistics.pair_features if self.statistics is not None else None
            if reference is None:
                reference = self._pairs_seen(layout)
            hdf5_layout.check_pair_features(layout.pair_features, reference, str(path))
            if layout.num_events == 0:
                raise InputError(path, "", "at least one event", "an empty file")
            check_finite = self.options.drop_invalid_events
            parts = []
            for block in iter_blocks(
                file,
                self.spec,
                layout,
                np.arange(layout.num_events, dtype=np.int64),
                with_features=check_finite,
                check_finite=check_finite,
            ):
                parts.append(
                    (
                        block.num_vectors().astype(np.int32),
                        block.finite,
                        block.target_masks,
                        {k: v.astype(np.int32) for k, v in block.classifications.items()},
                        block.event_weights,
                    )
                )
        return FileFacts(
            layout=layout,
            num_objects=np.concatenate([p[0] for p in parts]),
            finite=np.concatenate([p[1] for p in parts]) if check_finite else None,
            target_masks={p.name: np.concatenate([q[2][p.name] for q in parts]) for p in self.spec.particles},
            classifications={
                t.key: np.concatenate([q[3][t.key] for q in parts]) for t in self.spec.classifications
            },
            event_weights=np.concatenate([p[4] for p in parts]) if layout.event_weight else None,
        )

    def _pairs_seen(self, layout: FileLayout) -> dict[str, tuple[str, ...]]:
        """The pairwise features of the first file scanned (the training file); later files must match."""
        if not hasattr(self, "_first_pairs"):
            self._first_pairs = dict(layout.pair_features)
        return self._first_pairs

    def _filter(self, path: Path, split: str, facts: FileFacts, rows: np.ndarray) -> np.ndarray:
        """Apply ``limit_to_num_jets`` and ``drop_invalid_events``; error when nothing is left."""
        before = len(rows)
        if before == 0:
            raise InputError(
                path,
                "",
                f"at least one {split} event",
                f"0 events (dataset_limit {self.options.dataset_limit}, "
                f"train_validation_split {self.options.train_validation_split})",
            )
        limit = self.options.limit_to_num_jets
        kept = filter_rows(rows, facts.num_objects, facts.finite, limit_to_num_jets=limit)
        too_many, invalid = kept.wrong_count, kept.invalid
        if invalid:
            log.warning(
                "%s: dropped %d %s event(s) with NaN/inf features (first: event %d)",
                path,
                invalid,
                split,
                kept.first_invalid,
            )
        rows = kept.rows
        if len(rows) == 0:
            reasons = []
            if too_many:
                reasons.append(
                    f"{too_many} without exactly limit_to_num_jets = {limit} vectors "
                    "(objects, each GLOBAL input counting 1)"
                )
            if invalid:
                reasons.append(f"{invalid} with NaN/inf features")
            raise InputError(
                path,
                "",
                f"at least one {split} event after filtering",
                f"0 of {before} ({'; '.join(reasons)} removed)",
            )
        return rows

    def _full_events(self, path: Path, split: str, facts: FileFacts, rows: np.ndarray) -> np.ndarray:
        """With ``partial_events: false``, only events in which every particle is reconstructable."""
        if self.options.partial_events or not self.spec.particles:
            return rows
        full = full_event_rows(rows, facts.target_masks, [p.name for p in self.spec.particles])
        if len(full) == 0:
            raise InputError(
                path,
                "",
                f"at least one {split} event with every particle reconstructable "
                "(or partial_events: true to train on partial events)",
                f"0 of {len(rows)}",
            )
        return full

    def _choose_mode(self, events: int, layout: FileLayout) -> DatasetMode:
        requested = self.options.dataset_mode
        if requested in ("memory", "streaming", "device"):  # measure nothing: the file decided
            return choose_mode(requested, 0, fits_on_device=False, available_memory=0)
        need = events * bytes_per_event(self.spec, layout.max_objects, layout.pair_features)
        return choose_mode(requested, need, fits_on_device=self.on_gpu and fits_on_device(need),
                           available_memory=_available_memory())

    def _load(self, path: Path, layout: FileLayout, rows: np.ndarray) -> EventBlock:
        with h5py.File(path, "r") as file:
            return materialize(iter_blocks(file, self.spec, layout, rows), len(rows))

    def _compute_statistics(
        self, facts: FileFacts, rows: np.ndarray, block: EventBlock | None
    ) -> DatasetStatistics:
        labels = {k: v[rows] for k, v in facts.classifications.items()}
        common = dict(
            source=str(facts.layout.path), max_objects=facts.layout.max_objects, classifications=labels,
            pair_features=facts.layout.pair_features,
        )
        if block is not None:
            chunks = (
                block.select(slice(a, a + DEFAULT_BLOCK_EVENTS))
                for a in range(0, len(block), DEFAULT_BLOCK_EVENTS)
            )
            return compute_statistics(self.spec, self.options, chunks, **common)  # type: ignore[arg-type]
        with h5py.File(facts.layout.path, "r") as file:
            blocks = iter_blocks(file, self.spec, facts.layout, rows)
            return compute_statistics(self.spec, self.options, blocks, **common)  # type: ignore[arg-type]

    def _check_labels(self, facts: FileFacts, rows: np.ndarray, path: Path) -> None:
        """Labels the training split never saw would crash the loss deep inside Lightning."""
        assert self.statistics is not None
        for key, labels in facts.classifications.items():
            classes = self.statistics.num_classes.get(key)
            if classes is None:
                continue
            used = labels[rows]
            bad = used >= classes
            if bad.any():
                first = int(np.argmax(bad))
                raise InputError(
                    path,
                    hdf5_layout.classification_path(key),
                    f"labels -1 .. {classes - 1} (the classes of the training split)",
                    f"{int(bad.sum())} event(s) with a larger label, first {int(used[first])} "
                    f"in event {int(rows[first])}",
                )

    def _make_split(
        self,
        layout: FileLayout,
        rows: np.ndarray,
        block: EventBlock | None,
        batch_size: int,
        *,
        shuffle: bool,
        tables: BalanceTables | None,
        seed: int,
        rank: int,
        device: bool = False,
    ) -> SplitData:
        dataset: InMemoryDataset | StreamingDataset | DeviceDataset
        if block is not None and device:
            block = apply_weights(block, self.spec, self.options, tables)
            dataset = DeviceDataset(
                block, self.spec, batch_size=batch_size, shuffle=shuffle, seed=seed, rank=rank,
                group_by_multiplicity=self.options.group_by_multiplicity,
            )
        elif block is not None:
            block = apply_weights(block, self.spec, self.options, tables)
            group_by = [s.name for s in self.spec.sequential] if self.options.group_by_multiplicity else None
            dataset = InMemoryDataset(
                block, batch_size=batch_size, shuffle=shuffle, seed=seed, rank=rank, group_by=group_by
            )
        else:
            dataset = StreamingDataset(
                self.spec,
                self.options,
                layout,
                rows,
                batch_size=batch_size,
                shuffle=shuffle,
                tables=tables,
                seed=seed,
                rank=rank,
            )
        return SplitData(layout, rows, dataset)


def _raise_first_error(report: schema.ValidationReport, *, allow_nonfinite: bool) -> None:
    """Turn the report's first error into an InputError (NaN/inf features pass when dropping)."""
    errors = [p for p in report.errors if not (allow_nonfinite and _is_nonfinite_feature(p))]
    if errors:
        more = len(errors) - 1
        suffix = f" ({more} more problem(s): run spanet-inspect)" if more else ""
        raise InputError(report.source, errors[0].where, errors[0].message + suffix)


def _is_nonfinite_feature(problem: schema.Problem) -> bool:
    return problem.code == "nonfinite" and problem.where.startswith("INPUTS/")


def _available_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _path_or_none(value: str | Path | None, default: str) -> Path | None:
    chosen = value if value not in (None, "") else default
    return Path(chosen) if chosen else None


def _weight_range(*splits: tuple[FileFacts, np.ndarray]) -> tuple[float, float] | None:
    """Smallest and largest event weight over the given (file, rows) splits, a file without the
    weight dataset counting as weight 1 (as the reader gives it); None when no file has weights."""
    if all(facts.event_weights is None for facts, _ in splits):
        return None
    ends = [
        (float(facts.event_weights[rows].min()), float(facts.event_weights[rows].max()))
        if facts.event_weights is not None
        else (1.0, 1.0)
        for facts, rows in splits
        if len(rows)
    ]
    return min(low for low, _ in ends), max(high for _, high in ends)
