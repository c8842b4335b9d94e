"""Device-resident data (dataset_mode: device): memory mode's batches, trimmed on the host side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _dataset_helpers import TINY_SPEC, assert_same_batch, random_arrays, write_h5
from lightning.pytorch import Callback

from spanet_lite.config.options import Options
from spanet_lite.dataset import datamodule as datamodule_module
from spanet_lite.dataset.batch import SlotMap, kept_slots
from spanet_lite.dataset.datamodule import SpanetDataModule
from spanet_lite.dataset.dataset import event_extents
from spanet_lite.dataset.device import (
    DeviceDataset,
    DeviceLoader,
    SizedBatch,
    bucketed,
    presize,
    shift_targets,
)
from spanet_lite.dataset.reader import EventBlock

ORDER = ["Jets", "Leptons"]  # TINY_SPEC's SEQUENTIAL inputs: 5 and 2 slots


@pytest.fixture(scope="module")
def random_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h5(tmp_path_factory.mktemp("device") / "random.h5", random_arrays(500, seed=3))


@pytest.fixture(scope="module")
def memory(random_file: Path) -> SpanetDataModule:
    return data(random_file, "memory")


@pytest.fixture(scope="module")
def device(random_file: Path) -> SpanetDataModule:
    return data(random_file, "device")


def data(path: Path, mode: str, on_gpu: bool | None = None) -> SpanetDataModule:
    options = Options(
        batch_size=32, dataset_mode=mode, balance_particles=True, dataset_randomization=5, partial_events=True
    )
    dm = SpanetDataModule(TINY_SPEC, options, training_file=path, on_gpu=on_gpu)
    dm.setup("fit")
    return dm




def test_device_mode_draws_memory_modes_batches_trimmed_without_reading_the_device(
    memory: SpanetDataModule, device: SpanetDataModule
) -> None:
    assert device.mode == "device" and isinstance(device.splits["train"].dataset, DeviceDataset)
    for split in ("train", "val"):
        a = memory.train_dataloader() if split == "train" else memory.val_dataloader()
        b = device.train_dataloader() if split == "train" else device.val_dataloader()
        assert isinstance(b, DeviceLoader) and len(a) == len(b)
        for _epoch in range(2):  # shuffled training: epoch 0 and 1 differ, and match memory mode
            pairs = list(zip(a, b, strict=True))
            for x, y in pairs:
                assert isinstance(y, SizedBatch) and y.trimmed() is y
                assert_same_batch(x.trimmed(ORDER), y)
    widths = {tuple(batch.masks[n].shape[1] for n in ORDER) for batch in device.train_dataloader()}
    assert widths <= {(3, 1), (3, 2), (4, 1), (4, 2), (5, 1), (5, 2)}


def test_event_extents_are_kept_slots_of_each_single_event(device: SpanetDataModule) -> None:
    block = device.splits["val"].dataset
    assert isinstance(block, DeviceDataset)
    columns = block.columns
    for i in range(0, block.num_events, 7):
        masks = {n: columns.masks[n][i : i + 1] for n in ORDER}
        targets = [t[i : i + 1] for t in columns.targets.values()]
        assert tuple(block.extents[i]) == kept_slots(masks, ORDER, targets).kept


def test_event_extents_count_targets_that_point_past_the_real_objects() -> None:
    block = EventBlock(
        rows=np.arange(2),
        features={},
        masks={"Jets": np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool), "Leptons": np.zeros((2, 2), bool)},
        targets={"t": np.array([[0, 3, -1], [-1, -1, 6]])},
        target_masks={},
        particle_weights={},
        regressions={},
        classifications={},
        event_weights=np.ones(2, np.float32),
    )
    assert event_extents(block, ORDER).tolist() == [[4, 0], [0, 2]]


def test_buckets_round_widths_up_and_never_past_the_file() -> None:
    assert bucketed((3, 1, 9), (5, 2, 20), 4) == (4, 2, 12)
    assert bucketed((1, 2), (19, 2), 4) == (4, 2)
    assert bucketed((3, 1), (5, 2), 1) == (3, 1)


def test_host_presizing_to_a_bucket_keeps_every_target_on_its_object(memory: SpanetDataModule) -> None:
    batch = next(iter(memory.val_dataloader()))
    sized = presize(batch, ORDER, bucket=4)
    slots = SlotMap(tuple(ORDER), (5, 2), tuple(sized.masks[n].shape[1] for n in ORDER))
    assert all(width in (4, 5, 2, 1) for width in slots.kept)
    for name, original in batch.targets.items():
        assert torch.equal(slots.to_original(sized.targets[name]), original)
        assert torch.equal(shift_targets(original, slots), slots.to_trimmed(original))
    assert presize(sized, ORDER, bucket=4) is sized


def test_auto_keeps_the_data_on_the_gpu_only_when_it_fits(random_file: Path, monkeypatch) -> None:
    monkeypatch.setattr(datamodule_module, "fits_on_device", lambda need: True)
    assert data(random_file, "auto", on_gpu=True).mode == "device"
    monkeypatch.setattr(datamodule_module, "fits_on_device", lambda need: False)
    assert data(random_file, "auto", on_gpu=True).mode == "memory"


def test_a_run_on_the_cpu_neither_keeps_its_data_on_a_gpu_nor_pins_memory(
    random_file: Path, tmp_path: Path, monkeypatch
) -> None:
    """``--gpus 0`` on a machine with a GPU: ``auto`` must not pick the GPU for the data."""
    from _dataset_helpers import TINY_YAML

    from spanet_lite.training.run import train

    monkeypatch.setattr(datamodule_module, "fits_on_device", lambda need: True)  # a GPU with room
    assert data(random_file, "auto", on_gpu=True).mode == "device"
    on_cpu = data(random_file, "auto", on_gpu=False)
    assert on_cpu.mode == "memory"
    assert on_cpu.train_dataloader()._pin is False

    modes = []

    class Seen(Callback):
        def on_fit_start(self, trainer, module) -> None:
            modes.append(trainer.datamodule.inner.mode)

    event_file = tmp_path / "tiny.yaml"
    event_file.write_text(TINY_YAML)
    options = Options(event_info_file=str(event_file), training_file=str(random_file), batch_size=100,
                      epochs=1, partial_events=True, hidden_dim=8, num_attention_heads=1)
    train(options, gpus=0, log_dir=tmp_path, quiet=True, callbacks=[Seen()])
    assert modes == ["memory"]


def test_training_in_device_mode_matches_memory_mode_through_the_trainer(
    random_file: Path, tmp_path: Path
) -> None:
    from _dataset_helpers import TINY_YAML

    from spanet_lite.training.run import train

    event_file = tmp_path / "tiny.yaml"
    event_file.write_text(TINY_YAML)
    small = dict(hidden_dim=8, num_attention_heads=1, num_encoder_layers=1, num_branch_encoder_layers=1)
    results = {}
    precisions = []

    class Seen(Callback):
        def on_fit_start(self, trainer, module) -> None:
            precisions.append(trainer.precision)

    for mode in ("memory", "device"):
        options = Options(
            event_info_file=str(event_file),
            training_file=str(random_file),
            batch_size=100,
            epochs=2,
            dataset_mode=mode,
            partial_events=True,
            precision="32-true",  # on a GPU the default is bf16-mixed, whose rounding swamps the test
            **small,
        )
        results[mode] = train(options, log_dir=tmp_path / mode, quiet=True, callbacks=[Seen()])
    assert precisions == ["32-true", "32-true"]
    memory, device = results["memory"].metrics, results["device"].metrics
    # CUDA's backward sums with atomics in no fixed order (and TF32 rounds fp32 matmuls): runs that
    # see the same batches agree to ~1e-6 a step there, not bit for bit as on the CPU.
    rel = 1e-3 if torch.cuda.is_available() else 1e-4
    assert {"train/total_loss", "val/assignment_loss", "val/regression_loss"} <= device.keys()
    assert results["device"].epochs_completed == 2 and results["device"].stopped is None
    assert memory.keys() == device.keys() and "val/event_purity" in device
    for key, value in memory.items():  # same batches, same weights: equal up to float rounding
        if key == "time_s":
            continue
        assert device[key] == pytest.approx(value, rel=rel, abs=1e-6, nan_ok=True), key


def test_presizing_while_moving_gives_the_same_batch_as_presizing_in_place(memory: SpanetDataModule) -> None:
    batch = next(iter(memory.val_dataloader()))
    assert_same_batch(presize(batch, ORDER, 4, "cpu"), presize(batch, ORDER, 4))
