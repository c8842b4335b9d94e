"""From hand-made HDF5 files to Batch: targets, masks, weights, options and bad data."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _dataset_helpers import (
    EVENT_WEIGHT,
    JETS,
    LEPTONS,
    SIGNAL,
    TINY_SPEC,
    TINY_YAML,
    random_arrays,
    tiny_arrays,
    write_h5,
)

from spanet_lite.config import load_event_spec, parse_event_spec
from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.datamodule import SpanetDataModule
from spanet_lite.dataset.selection import usable_workers
from spanet_lite.errors import InputError, SpanetWarning


def all_events(path: Path, **options) -> Batch:
    """The whole tiny file as one validation batch (the file is its own validation file)."""
    opts = Options(
        **{
            "partial_events": True,
            "batch_size": 6,
            "validation_file": str(path),
            "dataset_mode": "memory",
            **options,
        }
    )
    module = SpanetDataModule(TINY_SPEC, opts, training_file=path)
    module.setup("fit")
    (batch,) = list(module.val_dataloader())
    return batch


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_h5(tmp_path / "tiny.h5", tiny_arrays())


def test_a_notebook_may_name_the_event_file_and_misuse_is_one_line(tiny: Path, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    options = Options(partial_events=True, batch_size=2, train_validation_split=0.5)
    module = SpanetDataModule(str(tmp_path / "tiny.yaml"), options,
                              training_file=tiny)
    assert module.spec == TINY_SPEC
    with pytest.raises(InputError, match=r"^train_dataloader\(\): expected setup\('fit'\) first, which reads "
                                         r"the files, got no train split prepared$"):
        module.train_dataloader()
    # rows() before setup() was a KeyError traceback
    with pytest.raises(InputError, match=r"^rows\('test'\): expected setup\('test'\) first"):
        module.rows("test")
    with pytest.raises(InputError, match=r"^rows\('validation'\): expected a split train, val or test, "
                                         r"got 'validation'$"):
        module.rows("validation")
    with pytest.raises(InputError, match=r"^stage: expected one of None, fit, validate, test, predict, "
                                         r"got 'fitt'$"):
        module.setup("fitt")
    module.setup("fit")
    assert len(module.train_dataloader()) > 0
    assert len(module.rows("val")) > 0


def test_features_keep_file_units_and_padding_is_zero(tiny: Path) -> None:
    batch = all_events(tiny)
    arrays = tiny_arrays()
    jets = batch.features["Jets"]
    assert jets.shape == (6, 5, 3) and jets.dtype == torch.float32
    assert batch.features["Leptons"].shape == (6, 2, 2)
    assert batch.features["Met"].shape == (6, 2)
    assert batch.masks["Jets"].sum(dim=1).tolist() == JETS
    assert batch.masks["Leptons"].sum(dim=1).tolist() == LEPTONS
    # event 0, jet 1, pt: raw, not log-transformed; padded slot (jet 4) is 0, not the file's NaN
    assert jets[0, 1, 0].item() == pytest.approx(float(arrays["INPUTS/Jets/pt"][0, 1]))
    assert jets[0, 4].tolist() == [0.0, 0.0, 0.0]
    assert torch.isfinite(jets).all()
    assert batch.features["Met"][:, 0].tolist() == pytest.approx(arrays["INPUTS/Met/met"].tolist())


def test_associated_targets_are_shifted_into_the_combined_space(tiny: Path) -> None:
    batch = all_events(tiny)
    # lt/l counts inside Leptons; Leptons start after the 5 Jets slots
    assert batch.targets["lt"].tolist() == [[3, 5], [-1, 6], [-1, -1], [-1, 5], [3, 6], [-1, -1]]
    assert batch.targets["t"][:2].tolist() == [[0, 1, 2], [2, 0, 1]]
    assert batch.targets["t"].dtype == torch.int64


def test_unassociated_targets_are_already_combined(tiny: Path) -> None:
    batch = all_events(tiny)
    assert batch.targets["h"].tolist() == [[-1, -1], [-1, -1], [0, 3], [-1, -1], [4, 5], [-1, -1]]


def test_target_masks_need_every_product_and_the_file_mask(tiny: Path) -> None:
    batch = all_events(tiny)
    # event 1 has all three t products, but TARGETS/t/MASK is False there
    assert batch.target_masks["t"].tolist() == [True, False, False, False, True, False]
    assert batch.target_masks["lt"].tolist() == [True, False, False, False, True, False]
    assert batch.target_masks["h"].tolist() == [False, False, True, False, True, False]
    assert batch.product_present("t")[3].tolist() == [True, True, False]


def test_a_file_mask_never_makes_an_unmatched_particle_reconstructable(tmp_path: Path) -> None:
    """MASK True over events 2, 3 and 5, whose t has a product -1: still not reconstructable (SPANet
    would score them, always wrong), and the reader says so once."""
    arrays = tiny_arrays()
    arrays["TARGETS/t/MASK"] = np.array([True, False, True, True, True, True])
    path = write_h5(tmp_path / "masked.h5", arrays)
    with pytest.warns(SpanetWarning, match=r"TARGETS/t/MASK: 3 event\(s\) with MASK True but a product"):
        batch = all_events(path)
    assert batch.target_masks["t"].tolist() == [True, False, False, False, True, False]


def test_particle_and_event_weights(tiny: Path) -> None:
    batch = all_events(tiny)
    assert batch.particle_weights["lt"].tolist() == [0.5, 1, 1, 1, 2, 1]
    assert batch.particle_weights["t"].tolist() == [1.0] * 6  # no TARGETS/t/WEIGHT: ones
    assert batch.event_weights.tolist() == EVENT_WEIGHT


def test_event_weight_dataset_option_and_its_absence(tiny: Path, tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["WEIGHTS/custom"] = np.arange(6, dtype=np.float32)
    path = write_h5(tmp_path / "custom.h5", arrays)
    assert all_events(path, event_weight_dataset="WEIGHTS/custom").event_weights.tolist() == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    del arrays["WEIGHTS/EVENT/weight"], arrays["WEIGHTS/custom"]
    path = write_h5(tmp_path / "none.h5", arrays)
    assert all_events(path).event_weights.tolist() == [1.0] * 6


def test_an_event_weight_dataset_named_in_the_options_must_be_in_the_file(tiny: Path) -> None:
    """A misspelt name trained without weights, with nothing said; the default may be absent
    (SPANet's files have no weights) and "" reads none."""
    with pytest.raises(InputError) as caught:
        all_events(tiny, event_weight_dataset="WEIGHTS/EVENT/wieght")
    assert str(caught.value) == (
        f"{tiny}: WEIGHTS/EVENT/wieght: expected a float weight per event, named by the option "
        "event_weight_dataset (\"\" for none), got nothing (did you mean 'weight'?)"
    )
    assert all_events(tiny, event_weight_dataset="").event_weights.tolist() == [1.0] * 6


def test_regressions_keep_nan_and_classifications_keep_minus_one(tiny: Path) -> None:
    batch = all_events(tiny)
    mass = batch.regressions["EVENT/mass"]
    assert torch.isnan(mass).tolist() == [False, False, False, True, False, False]
    assert mass[0].item() == 100.0
    assert batch.classifications["EVENT/signal"].tolist() == SIGNAL
    # without balancing: weight 1 for a label, 0 for -1
    assert batch.classification_weights["EVENT/signal"].tolist() == [1, 1, 1, 0, 1, 1]


def test_partial_events_on_keeps_every_event_for_assignment(tiny: Path) -> None:
    assert all_events(tiny, partial_events=True).assignment_event_mask.tolist() == [True] * 6


def test_partial_events_off_leaves_partial_events_out_of_training_and_validation(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "random.h5", random_arrays(400))
    every = all_events(path, partial_events=True, batch_size=400)
    full = torch.stack([every.target_masks[p] for p in ("t", "lt", "h")]).all(0).nonzero().flatten().tolist()
    options = Options(batch_size=4, train_validation_split=0.5, dataset_mode="memory", partial_events=False)
    module = SpanetDataModule(TINY_SPEC, options, training_file=path)
    module.setup("fit")
    # SPANet's partial_events false: events without every particle reconstructable are not used at all
    assert module.rows("train").tolist() == [row for row in full if row < 200]
    assert module.rows("val").tolist() == [row for row in full if row >= 200]
    assert module.statistics.num_training_events == len(module.rows("train"))
    train, val = len(module.rows("train")), len(module.rows("val"))
    assert 0 < train < 200 and 0 < val < 200
    assert module.notes == [
        f"partial_events = false: left out {200 - train} of 200 training and {200 - val} of 200 "
        "validation events without every particle reconstructable"
    ]


def test_limit_to_num_jets_counts_vectors_as_spanet_does_global_inputs_add_one(tiny: Path) -> None:
    # SPANet's num_vectors: Jets + Leptons + 1 for the GLOBAL Met = 6, 6, 5, 4, 8, 2
    batch = all_events(tiny, limit_to_num_jets=6, batch_size=2)
    assert batch.masks["Jets"].sum(dim=1).tolist() == [4, 3]  # events 0 and 1
    assert batch.masks["Leptons"].sum(dim=1).tolist() == [1, 2]


def test_limit_to_num_jets_reads_a_global_mask_where_the_file_has_one(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["INPUTS/Met/MASK"] = np.array([True, False, True, True, True, True])
    path = write_h5(tmp_path / "masked_met.h5", arrays)
    # event 1 now counts 3 + 2 + 0 = 5 vectors, event 2 still 4 + 0 + 1 = 5
    batch = all_events(path, limit_to_num_jets=5, batch_size=2)
    assert batch.masks["Jets"].sum(dim=1).tolist() == [3, 4]


def test_split_limit_and_randomization(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "random.h5", random_arrays(200))
    options = Options(
        partial_events=True,
        batch_size=10,
        dataset_limit=0.5,
        train_validation_split=0.8,
        dataset_mode="memory",
    )
    module = SpanetDataModule(TINY_SPEC, options, training_file=path)
    module.setup("fit")
    assert module.rows("train").tolist() == list(range(80))
    assert module.rows("val").tolist() == list(range(80, 100))
    assert module.statistics.num_training_events == module.num_training_events == 80

    shuffled = SpanetDataModule(TINY_SPEC, options.replace(dataset_randomization=3), training_file=path)
    shuffled.setup("fit")
    train, val = shuffled.rows("train"), shuffled.rows("val")
    assert len(train) == 80 and len(val) == 20 and not set(train) & set(val)
    assert train.tolist() == sorted(train.tolist()) and train.max() > 100  # drawn from the whole file
    # SPANet's draw: RandomState(seed).permutation, training = first round(0.5 * 0.8 * 200)
    assert train.tolist() == sorted(np.random.RandomState(3).permutation(200)[:80].tolist())
    again = SpanetDataModule(TINY_SPEC, options.replace(dataset_randomization=3), training_file=path)
    again.setup("fit")
    assert again.rows("train").tolist() == train.tolist()


def test_training_batches_cover_the_split_once_per_epoch_and_reshuffle(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "random.h5", random_arrays(100))
    module = SpanetDataModule(
        TINY_SPEC, Options(partial_events=True, batch_size=16, dataset_mode="memory"), training_file=path
    )
    module.setup("fit")
    loader = module.train_dataloader()
    assert len(loader) == 6  # 95 training events in batches of 16
    first = [b.event_weights for b in loader]
    second = [b.event_weights for b in loader]
    assert sorted(torch.cat(first).tolist()) == sorted(torch.cat(second).tolist())
    assert not torch.equal(torch.cat(first), torch.cat(second))


def test_testing_file_with_given_statistics(tiny: Path, tmp_path: Path) -> None:
    train = SpanetDataModule(
        TINY_SPEC, Options(partial_events=True, batch_size=2, validation_file=str(tiny)), training_file=tiny
    )
    train.setup("fit")
    module = SpanetDataModule(
        TINY_SPEC, Options(partial_events=True, batch_size=4), testing_file=tiny, statistics=train.statistics
    )
    module.setup("test")
    sizes = [b.batch_size for b in module.test_dataloader()]
    assert sizes == [4, 2]
    assert module.statistics is train.statistics


def test_batch_moves_through_lightning_transfer_hook(tiny: Path) -> None:
    batch = all_events(tiny)
    module = SpanetDataModule(TINY_SPEC, Options(partial_events=True))
    moved = module.transfer_batch_to_device(batch, torch.device("cpu"), 0)
    assert isinstance(moved, Batch) and moved.targets["t"].tolist() == batch.targets["t"].tolist()


def test_reference_tth_file(reference_dir: Path) -> None:
    spec = load_event_spec(reference_dir / "semi_leptonic_ttH.yaml")
    path = reference_dir / "example.h5"
    module = SpanetDataModule(
        spec, Options(partial_events=True, batch_size=32, train_validation_split=0.95), training_file=path
    )
    module.setup("fit")
    stats = module.statistics
    assert stats.num_training_events == 950 and stats.max_objects == {"Momenta": 19}
    assert stats.num_classes == {"EVENT/signal": 2}
    assert list(stats.feature_mean) == ["Momenta", "Met"] and len(stats.feature_mean["Met"]) == 3
    with h5py.File(path) as file:
        mask = file["INPUTS/Momenta/MASK"][:]
        log_pt = np.log1p(file["INPUTS/Momenta/pt"][:950][mask[:950]].astype(np.float64))
        ht_b = file["TARGETS/ht/b"][950:982]
    assert stats.feature_mean["Momenta"][1] == pytest.approx(log_pt.mean(), rel=1e-9)
    assert stats.feature_std["Momenta"][1] == pytest.approx(log_pt.std(), rel=1e-9)
    assert stats.feature_std["Momenta"][5:] == [1.0, 1.0, 1.0, 1.0]  # qtag..utag: option none
    batch = next(iter(module.val_dataloader()))
    assert batch.features["Momenta"].shape == (32, 19, 9)
    assert batch.features["Met"].shape == (32, 3)  # Met/sumet is not in the event file: ignored
    assert set(batch.targets) == {"lt", "ht", "h"} and batch.targets["lt"].shape == (
        32,
        1,
    )  # TARGETS/lt/l ignored
    assert batch.targets["ht"][:, 0].tolist() == ht_b.tolist()  # one input: no shift
    assert len(module.val_dataloader()) == 2  # 50 events


# ----------------------------------------------------------------------------- bad data


def test_nan_feature_on_a_real_object_is_an_error_naming_dataset_and_event(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["INPUTS/Jets/eta"][2, 1] = np.nan
    path = write_h5(tmp_path / "nan.h5", arrays)
    with pytest.raises(InputError, match=r"INPUTS/Jets/eta.*finite.*event 2"):
        all_events(path)


def test_drop_invalid_events_drops_them_and_reports_the_count(tmp_path: Path, caplog) -> None:
    arrays = tiny_arrays()
    arrays["INPUTS/Jets/eta"][2, 1] = np.inf
    arrays["INPUTS/Met/met"][5] = np.nan
    path = write_h5(tmp_path / "nan.h5", arrays)
    with caplog.at_level(logging.WARNING):
        batch = all_events(path, drop_invalid_events=True, batch_size=4)
    assert batch.masks["Jets"].sum(dim=1).tolist() == [4, 3, 2, 5]
    assert "dropped 2 validation event(s)" in caplog.text and "first: event 2" in caplog.text


def test_drop_invalid_events_still_refuses_a_missing_dataset_named_like_a_number(tmp_path: Path) -> None:
    """Only NaN/inf problems are dropped, whatever the missing dataset is called ("info")."""
    spec = parse_event_spec(TINY_YAML.replace("phi: none", "info: none"), source="tiny.yaml")
    path = write_h5(tmp_path / "no_info.h5", tiny_arrays())  # has INPUTS/Met/phi, not .../info
    opts = Options(batch_size=6, validation_file=str(path), dataset_mode="memory", drop_invalid_events=True)
    module = SpanetDataModule(spec, opts, training_file=path)
    with pytest.raises(InputError, match=r"INPUTS/Met/info"):
        module.setup("fit")


def test_target_on_a_padded_object_is_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["TARGETS/t/b"][5] = 3  # event 5 has one jet
    path = write_h5(tmp_path / "padded.h5", arrays)
    with pytest.raises(InputError, match=r"TARGETS/t/b.*padded.*first: event 5"):
        all_events(path)


def test_first_dimension_mismatch_names_both_datasets(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["REGRESSIONS/EVENT/mass"] = arrays["REGRESSIONS/EVENT/mass"][:5]
    path = write_h5(tmp_path / "short.h5", arrays)
    with pytest.raises(InputError, match=r"REGRESSIONS/EVENT/mass.*6 events like INPUTS/Jets/MASK.*got 5"):
        all_events(path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    arrays = {k: v[:0] for k, v in tiny_arrays().items()}
    path = write_h5(tmp_path / "empty.h5", arrays)
    with pytest.raises(InputError, match=r"empty\.h5.*(at least one event|0)"):
        all_events(path)


def test_zero_events_after_filtering_is_an_error(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "random.h5", random_arrays(20))  # every event has 4 to 7 objects
    options = Options(partial_events=True, batch_size=2, limit_to_num_jets=3)
    with pytest.raises(
        InputError,
        match=r"at least one training event after filtering, got 0 of 19 "
        r"\(19 without exactly limit_to_num_jets = 3 vectors \(objects, each GLOBAL input counting 1\) "
        r"removed\)",
    ):
        SpanetDataModule(TINY_SPEC, options, training_file=path).setup("fit")


@pytest.mark.parametrize("split", [1.0, 0.95])  # 0.95 of 6 events rounds to 6 for training
def test_validation_split_without_events_is_an_error(tiny: Path, split: float) -> None:
    options = Options(partial_events=True, batch_size=2, train_validation_split=split)
    module = SpanetDataModule(TINY_SPEC, options, training_file=tiny)
    with pytest.raises(InputError) as raised:
        module.setup("fit")
    assert str(raised.value) == (
        "train_validation_split: expected a split that leaves at least one validation event (a lower "
        f"split, or a validation_file), got {split} of 6 event(s): none left for validation"
    )


def test_batch_size_larger_than_the_training_split_is_an_error(tiny: Path) -> None:
    options = Options(partial_events=True, batch_size=8, validation_file=str(tiny))
    with pytest.raises(InputError, match=r"at least batch_size = 8 training events.*got 6 events"):
        SpanetDataModule(TINY_SPEC, options, training_file=tiny).setup("fit")


def test_batch_size_is_per_ddp_process_as_in_spanet(tiny: Path, monkeypatch) -> None:
    module = SpanetDataModule(
        TINY_SPEC, Options(partial_events=True, batch_size=3, validation_file=str(tiny)), training_file=tiny
    )
    monkeypatch.setattr(module, "_distributed", lambda: (0, 2))
    module.setup("fit")
    assert [batch.batch_size for batch in module.train_dataloader()] == [3]  # 6 events, 3 per rank


def test_batch_size_times_processes_above_the_training_split_is_an_error(tiny: Path, monkeypatch) -> None:
    module = SpanetDataModule(
        TINY_SPEC, Options(partial_events=True, batch_size=4, validation_file=str(tiny)), training_file=tiny
    )
    monkeypatch.setattr(module, "_distributed", lambda: (0, 2))
    expected = r"at least batch_size = 4 x 2 processes training events.*got 6 events"
    with pytest.raises(InputError, match=expected):
        module.setup("fit")


def test_each_ddp_rank_reads_an_equal_share(tmp_path: Path, monkeypatch) -> None:
    path = write_h5(tmp_path / "random.h5", random_arrays(101))
    shares = []
    for rank in (0, 1):
        module = SpanetDataModule(
            TINY_SPEC,
            Options(partial_events=True, batch_size=8, train_validation_split=0.9, dataset_mode="streaming"),
            training_file=path,
        )
        monkeypatch.setattr(module, "_distributed", lambda rank=rank: (rank, 2))
        module.setup("fit")
        shares.append(module.rows("train"))
        assert next(iter(module.train_dataloader())).batch_size == 8  # per process, as in SPANet
        assert module.statistics.num_training_events == 91  # statistics use the whole split
    assert len(shares[0]) == len(shares[1]) == 45
    assert shares[0][-1] < shares[1][0]


def test_missing_training_file_option_is_an_error() -> None:
    with pytest.raises(InputError, match="training_file"):
        SpanetDataModule(TINY_SPEC, Options(partial_events=True)).setup("fit")


def test_validation_labels_unseen_in_training_are_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    path = write_h5(tmp_path / "train.h5", arrays)
    arrays["CLASSIFICATIONS/EVENT/signal"][4] = 3
    other = write_h5(tmp_path / "val.h5", arrays)
    module = SpanetDataModule(
        TINY_SPEC, Options(partial_events=True, batch_size=2, validation_file=str(other)), training_file=path
    )
    with pytest.raises(
        InputError, match=r"val\.h5: CLASSIFICATIONS/EVENT/signal.*labels -1 \.\. 1.*3 in event 4"
    ):
        module.setup("fit")


def test_lightning_fit_runs_over_the_datamodule_and_reshuffles_per_epoch(tmp_path: Path) -> None:
    import lightning as L

    path = write_h5(tmp_path / "random.h5", random_arrays(64))

    class Recorder(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.seen: dict[int, list[float]] = {}

        def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
            assert isinstance(batch, Batch)
            self.seen.setdefault(self.current_epoch, []).extend(batch.event_weights.tolist())
            return (self.weight * batch.features["Jets"].sum()).sum()

        def validation_step(self, batch: Batch, batch_idx: int) -> None:
            assert batch.targets["t"].dtype == torch.int64

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    for mode in ("memory", "streaming"):
        options = Options(
            batch_size=16,
            train_validation_split=0.75,
            dataset_mode=mode,
            num_dataloader_workers=0,
            partial_events=True,
        )
        module = SpanetDataModule(TINY_SPEC, options, training_file=path)
        model = Recorder()
        trainer = L.Trainer(
            max_epochs=2,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
        )
        trainer.fit(model, datamodule=module)
        assert len(model.seen[0]) == len(model.seen[1]) == 48
        assert sorted(model.seen[0]) == sorted(model.seen[1]) and model.seen[0] != model.seen[1]


def test_testing_without_statistics_is_an_error(tiny: Path) -> None:
    module = SpanetDataModule(TINY_SPEC, Options(partial_events=True, batch_size=2), testing_file=tiny)
    with pytest.raises(InputError, match=r"statistics: expected statistics from a training run"):
        module.setup("test")


def test_loader_workers_are_capped_at_what_the_mode_can_use_with_one_line(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "random.h5", random_arrays(100))
    # SPANet's examples ask for 16 workers; data held in memory needs none
    asked = Options(partial_events=True, batch_size=10, dataset_mode="memory")
    asked = asked.replace(num_dataloader_workers=16)
    module = SpanetDataModule(TINY_SPEC, asked, training_file=path)
    module.setup("fit")
    assert module.train_dataloader().num_workers == 0
    assert module.notes == [
        "num_dataloader_workers = 16: using 0 "
        "(the data is held in memory, so batches need no loader processes)"
    ]
    streaming = asked.replace(dataset_mode="streaming")
    module = SpanetDataModule(TINY_SPEC, streaming, training_file=path)
    module.setup("fit")
    blocks = module.splits["train"].dataset.num_blocks
    cpus = len(os.sched_getaffinity(0))
    assert module.train_dataloader().num_workers == usable_workers(16, "streaming", blocks, cpus) < 16
    assert len(module.notes) == 1 and module.notes[0].startswith("num_dataloader_workers = 16: using ")
    # SPANet's default (4), not set by the file, is capped without a word
    module = SpanetDataModule(TINY_SPEC, Options(partial_events=True, batch_size=10), training_file=path)
    module.setup("fit")
    assert module.notes == []


def test_importing_the_library_leaves_the_processs_warning_filters_alone():
    """A notebook's warning filters are its own: importing the data module used to add a
    process-wide filter for one of Lightning's messages (training hides it only while it fits)."""
    import subprocess
    import sys

    code = (
        "import importlib, warnings\n"
        "import torch, lightning.pytorch, h5py\n"
        "before = list(warnings.filters)\n"
        "for name in ('dataset.datamodule', 'training.run', 'evaluation.run'):\n"
        "    importlib.import_module(f'spanet_lite.{name}')\n"
        "added = [f for f in warnings.filters if f not in before]\n"
        "raise SystemExit(f'filters added on import: {added}' if added else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
