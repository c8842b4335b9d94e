"""group_by_multiplicity: shuffled training batches of events of similar size, in every mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_helpers import TINY_SPEC, assert_same_batch, random_arrays, write_h5

from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.datamodule import SpanetDataModule
from spanet_lite.dataset.dataset import GROUP_POOL_BATCHES, StreamingDataset, grouped_order

ORDER = ["Jets", "Leptons"]  # TINY_SPEC's SEQUENTIAL inputs: 5 and 2 slots


def test_grouped_order_keeps_every_event_once_and_fills_batches_with_one_or_two_sizes() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(6, 16, 5000)  # 10 sizes, ~500 events each; 157 batches of 32
    order = rng.permutation(5000)
    grouped = grouped_order(order, sizes, 32, np.random.default_rng(1))
    assert sorted(grouped.tolist()) == list(range(5000))
    batches = [grouped[i : i + 32] for i in range(0, 5000, 32)]
    spread = [int(sizes[b].max() - sizes[b].min()) for b in batches]
    assert max(spread) <= 1  # a pool holds ~200 events of each size: a batch meets at most one boundary
    plain = [int(sizes[order[i : i + 32]].max()) for i in range(0, 5000, 32)]
    widest = [int(sizes[b].max()) for b in batches]
    assert np.mean(plain) > 14.5 and np.mean(widest) < 11.5  # what trimming gains
    first_pool = widest[:GROUP_POOL_BATCHES]
    assert first_pool != sorted(first_pool)  # the batches themselves come in a random order


def test_grouped_order_keeps_a_short_last_batch_last_and_handles_an_empty_split() -> None:
    sizes = np.array([3, 1, 2, 1, 3])
    grouped = grouped_order(np.array([4, 3, 2, 1, 0]), sizes, 2, np.random.default_rng(0))
    batches = {tuple(sorted(grouped[i : i + 2].tolist())) for i in range(0, 5, 2)}
    assert batches == {(1, 3), (2, 4), (0,)}  # sorted by size, ties in the order's order: 3 1 | 2 4 | 0
    assert grouped[-1] == 0  # the short batch stays last, so later batches keep their boundaries
    empty = grouped_order(np.array([], dtype=np.int64), sizes[:0], 2, np.random.default_rng(0))
    assert empty.size == 0


@pytest.fixture(scope="module")
def random_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h5(tmp_path_factory.mktemp("grouped") / "random.h5", random_arrays(1000, seed=4))


def module(path: Path, mode: str, group: bool) -> SpanetDataModule:
    options = Options(
        batch_size=16,
        partial_events=True,
        dataset_mode=mode,
        group_by_multiplicity=group,
        num_dataloader_workers=0,
    )
    dm = SpanetDataModule(TINY_SPEC, options, training_file=path)
    dm.setup("fit")
    return dm


def width(batch: Batch) -> int:
    return sum(batch.trimmed(ORDER).masks[name].shape[1] for name in ORDER)


def identities(batches: list[Batch]) -> list[tuple[float, ...]]:
    """Each event by the sums of its raw features (continuous random values: unique per event;
    padded slots hold zeros, so trimming leaves the sums as they were)."""
    sums = [torch.cat([b.features[n].flatten(1).sum(1, keepdim=True) for n in ORDER], 1) for b in batches]
    return sorted(tuple(round(v, 3) for v in row) for row in torch.cat(sums).tolist())


@pytest.mark.parametrize("mode", ["memory", "streaming", "device"])
def test_grouped_training_batches_are_narrower_and_hold_every_event_once(
    random_file: Path, mode: str
) -> None:
    plain, grouped = module(random_file, mode, False), module(random_file, mode, True)
    if isinstance(grouped.splits["train"].dataset, StreamingDataset):
        grouped.splits["train"].dataset.block_batches = 20  # several blocks, each grouped on its own
    loader = grouped.train_dataloader()
    epochs = [list(loader) for _ in range(2)]
    reference = list(plain.train_dataloader())
    assert identities(epochs[0]) == identities(reference) == identities(epochs[1])
    assert [width(b) for b in epochs[0]] != [width(b) for b in epochs[1]]  # reshuffled each epoch
    mean_plain = np.mean([width(b) for b in reference])
    mean_grouped = np.mean([width(b) for b in epochs[0]])
    assert mean_grouped < mean_plain - 0.5
    for x, y in zip(plain.val_dataloader(), grouped.val_dataloader(), strict=True):
        assert_same_batch(x, y)  # validation keeps file order


def test_memory_and_device_modes_group_alike(random_file: Path) -> None:
    memory, device = module(random_file, "memory", True), module(random_file, "device", True)
    a, b = memory.train_dataloader(), device.train_dataloader()
    for _epoch in range(2):
        for x, y in zip(a, b, strict=True):
            assert_same_batch(x.trimmed(ORDER), y)


def test_grouping_is_the_default_and_runs_stored_without_the_key_keep_plain_shuffling() -> None:
    assert Options().group_by_multiplicity is True
    stored = Options(group_by_multiplicity=False).to_dict()
    assert Options.from_dict(stored).group_by_multiplicity is False
    del stored["group_by_multiplicity"]  # a run stored before the option existed
    assert Options.from_dict(stored).group_by_multiplicity is False
