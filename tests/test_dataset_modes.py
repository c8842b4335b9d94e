"""In-memory and streaming modes: identical batches without shuffling, full coverage with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _dataset_helpers import TINY_SPEC, assert_same_batch, random_arrays, write_h5

from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.datamodule import SpanetDataModule
from spanet_lite.dataset.dataset import InMemoryDataset, StreamingDataset


@pytest.fixture(scope="module")
def random_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h5(tmp_path_factory.mktemp("modes") / "random.h5", random_arrays(1000, seed=1))


def module(path: Path, mode: str, **options) -> SpanetDataModule:
    opts = Options(
        **{
            "batch_size": 64,
            "partial_events": True,
            "dataset_mode": mode,
            "balance_particles": True,
            "balance_classifications": True,
            "dataset_randomization": 5,
            **options,
        }
    )
    dm = SpanetDataModule(TINY_SPEC, opts, training_file=path)
    dm.setup("fit")
    return dm




def unshuffled(dm: SpanetDataModule, split: str) -> list[Batch]:
    dm.splits[split].dataset.shuffle = False
    loader = dm.train_dataloader() if split == "train" else dm.val_dataloader()
    return list(loader)


def test_modes_give_identical_batches_without_shuffling(random_file: Path) -> None:
    memory, streaming = (
        module(random_file, "memory"),
        module(random_file, "streaming", num_dataloader_workers=0),
    )
    assert isinstance(memory.splits["train"].dataset, InMemoryDataset)
    assert isinstance(streaming.splits["train"].dataset, StreamingDataset)
    assert memory.statistics == streaming.statistics
    for split in ("train", "val"):
        a, b = unshuffled(memory, split), unshuffled(streaming, split)
        assert len(a) == len(b) == len(memory.splits[split].dataset)
        for x, y in zip(a, b):
            assert_same_batch(x, y)


def test_streaming_blocks_smaller_than_the_split_and_workers_keep_file_order(random_file: Path) -> None:
    memory = module(random_file, "memory")
    streaming = module(random_file, "streaming", num_dataloader_workers=2)
    streaming.splits["val"].dataset.block_batches = 1
    dataset = streaming.splits["train"].dataset
    dataset.block_batches = 3  # several blocks, the last one partial
    for split in ("train", "val"):
        for x, y in zip(unshuffled(memory, split), unshuffled(streaming, split), strict=True):
            assert_same_batch(x, y)


@pytest.mark.parametrize("mode", ["memory", "streaming"])
def test_shuffled_training_sees_every_event_once_and_depends_on_the_epoch(
    random_file: Path, mode: str
) -> None:
    dm = module(random_file, mode)
    dataset = dm.splits["train"].dataset
    if isinstance(dataset, StreamingDataset):
        dataset.block_batches = 2
    loader = dm.train_dataloader()
    epochs = []
    for _ in range(2):
        weights = torch.cat([b.event_weights for b in loader])
        epochs.append(weights)
    expected = sorted(torch.cat([b.event_weights for b in unshuffled(dm, "train")]).tolist())
    assert sorted(epochs[0].tolist()) == expected == sorted(epochs[1].tolist())
    assert not torch.equal(epochs[0], epochs[1])


def test_sparse_rows_are_read_in_bounded_spans_with_the_same_result(random_file: Path, monkeypatch) -> None:
    from spanet_lite.dataset import dataset as dataset_module

    memory = module(random_file, "memory", train_validation_split=0.1)  # validation: 90% scattered rows
    monkeypatch.setattr(dataset_module, "MAX_READ_SPAN", 7)
    streaming = module(random_file, "streaming", train_validation_split=0.1)
    for split in ("train", "val"):
        for x, y in zip(unshuffled(memory, split), unshuffled(streaming, split), strict=True):
            assert_same_batch(x, y)
