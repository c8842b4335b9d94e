"""DatasetStatistics from the training split: real entries only, log domain, zero variance, targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _dataset_helpers import TINY_SPEC, random_arrays, tiny_arrays, write_h5
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.config.options import Options
from spanet_lite.dataset.datamodule import SpanetDataModule
from spanet_lite.dataset.normalization import signed_log, single_class_note
from spanet_lite.dataset.statistics import DatasetStatistics, RunningMoments
from spanet_lite.errors import InputError


def statistics(path: Path, **options) -> DatasetStatistics:
    opts = Options(**{"partial_events": True, "batch_size": 2, "validation_file": str(path), **options})
    module = SpanetDataModule(TINY_SPEC, opts, training_file=path)
    module.setup("fit")
    assert module.statistics is not None
    return module.statistics


def test_feature_statistics_use_real_entries_after_the_log(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    stats = statistics(write_h5(tmp_path / "tiny.h5", arrays))
    mask = arrays["INPUTS/Jets/MASK"]
    log_pt = np.log1p(arrays["INPUTS/Jets/pt"][mask].astype(np.float64))  # 19 real jets, padded NaN skipped
    eta = arrays["INPUTS/Jets/eta"][mask].astype(np.float64)
    assert stats.feature_mean["Jets"] == pytest.approx([log_pt.mean(), eta.mean(), 0.0])
    assert stats.feature_std["Jets"] == pytest.approx([log_pt.std(), eta.std(), 1.0])  # btag: none
    # Leptons pt is "log" without normalize: mean 0, std 1
    assert stats.feature_mean["Leptons"][0] == 0.0 and stats.feature_std["Leptons"][0] == 1.0
    met = arrays["INPUTS/Met/met"].astype(np.float64)
    assert stats.feature_mean["Met"] == pytest.approx([met.mean(), 0.0])
    assert stats.max_objects == {"Jets": 5, "Leptons": 2} and stats.num_training_events == 6


def test_normalize_features_false_keeps_mean_zero_std_one(tmp_path: Path) -> None:
    stats = statistics(write_h5(tmp_path / "tiny.h5", tiny_arrays()), normalize_features=False)
    assert stats.feature_mean["Jets"] == [0.0, 0.0, 0.0] and stats.feature_std["Met"] == [1.0, 1.0]


def test_only_the_training_split_counts(tmp_path: Path) -> None:
    arrays = random_arrays(40)
    path = write_h5(tmp_path / "random.h5", arrays)
    module = SpanetDataModule(
        TINY_SPEC, Options(partial_events=True, batch_size=4, train_validation_split=0.75), training_file=path
    )
    module.setup("fit")
    met = arrays["INPUTS/Met/met"][:30].astype(np.float64)
    assert module.statistics.feature_mean["Met"][0] == pytest.approx(met.mean())


def test_zero_variance_feature_gets_std_one(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["INPUTS/Jets/eta"] = np.where(arrays["INPUTS/Jets/MASK"], 2.5, np.nan).astype(np.float32)
    stats = statistics(write_h5(tmp_path / "flat.h5", arrays))
    assert stats.feature_mean["Jets"][1] == pytest.approx(2.5) and stats.feature_std["Jets"][1] == 1.0


def test_log_of_values_at_or_below_minus_one_is_an_error_naming_the_feature(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["INPUTS/Jets/pt"][3, 1] = -2.0
    arrays["INPUTS/Jets/pt"][4, 0] = -1.0  # log(0) = -inf: also refused
    with pytest.raises(
        InputError,
        match=r"INPUTS/Jets/pt: expected values above -1 for the log option \(x -> log\(x \+ 1\)\), "
        r"got 2 values at or below -1 \(first: event 3, value -2\.0\)",
    ):
        statistics(write_h5(tmp_path / "neg.h5", arrays))


def test_log_domain_ignores_padded_slots(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["INPUTS/Jets/pt"][5, 3] = -50.0  # event 5 has one jet: slot 3 is padding
    stats = statistics(write_h5(tmp_path / "pad.h5", arrays))
    assert np.isfinite(stats.feature_mean["Jets"][0])


def test_regression_statistics_per_type_skip_nan(tmp_path: Path) -> None:
    stats = statistics(write_h5(tmp_path / "tiny.h5", tiny_arrays()))
    mass = np.array([100, 120, 90, 110, 95.0])  # event 3 is NaN
    assert stats.regression_center["EVENT/mass"] == pytest.approx(mass.mean())
    assert stats.regression_scale["EVENT/mass"] == pytest.approx(mass.std())
    # laplacian: median of 1, 2, 3, 4, 10, 6 is 3.5; mean |y - 3.5| = (2.5+1.5+.5+.5+6.5+2.5)/6
    assert stats.regression_center["EVENT/energy"] == pytest.approx(3.5)
    assert stats.regression_scale["EVENT/energy"] == pytest.approx(14 / 6)
    momentum = signed_log(np.array([-5, 0, 5, 50, 500, 1.0]))
    assert stats.regression_center["EVENT/momentum"] == pytest.approx(momentum.mean())
    assert stats.regression_scale["EVENT/momentum"] == pytest.approx(momentum.std())


def test_regression_with_only_nan_is_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["REGRESSIONS/EVENT/mass"][:] = np.nan
    with pytest.raises(InputError, match=r"REGRESSIONS/EVENT/mass: expected at least one non-NaN value"):
        statistics(write_h5(tmp_path / "nan.h5", arrays))


def test_num_classes_is_inferred_and_minus_one_ignored(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["CLASSIFICATIONS/EVENT/signal"] = np.array([0, 3, -1, 3, 0, -1])
    assert statistics(write_h5(tmp_path / "c.h5", arrays)).num_classes == {"EVENT/signal": 4}


def test_a_single_class_counts_as_spanet_counts_it_and_is_said_once(tmp_path: Path) -> None:
    """SPANet's own example with partial_events: false keeps only signal events for training."""
    arrays = tiny_arrays()
    arrays["CLASSIFICATIONS/EVENT/signal"] = np.array([1, 1, -1, 1, 1, -1])
    assert statistics(write_h5(tmp_path / "one.h5", arrays)).num_classes == {"EVENT/signal": 2}
    assert single_class_note(arrays["CLASSIFICATIONS/EVENT/signal"], "EVENT/signal") == (
        "CLASSIFICATIONS/EVENT/signal: every labelled training event is class 1; the head has 2 classes "
        "(the highest label + 1, as in SPANet) and can learn only that one"
    )
    assert single_class_note(np.array([0, 1, -1]), "EVENT/signal") is None


def test_no_label_at_all_is_an_error(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["CLASSIFICATIONS/EVENT/signal"] = np.full(6, -1)
    with pytest.raises(
        InputError,
        match=r"CLASSIFICATIONS/EVENT/signal: expected at least one labelled event \(label >= 0\) in the "
        r"training split, got no labels",
    ):
        statistics(write_h5(tmp_path / "none.h5", arrays))


def test_statistics_round_trip_through_json(tmp_path: Path) -> None:
    stats = statistics(write_h5(tmp_path / "tiny.h5", tiny_arrays()))
    stats.save(tmp_path / "statistics.json")
    assert DatasetStatistics.load(tmp_path / "statistics.json") == stats


def test_saving_statistics_follows_the_output_rule_and_loading_names_the_file(tmp_path: Path) -> None:
    """A notebook that saves twice, or over a run's statistics, must not change what a trained
    network is normalised with; a file that is not ours is one line."""
    stats = statistics(write_h5(tmp_path / "tiny.h5", tiny_arrays()))
    path = tmp_path / "statistics.json"
    stats.save(path)
    with pytest.raises(InputError, match=r"statistics\.json: statistics file: expected a path that does not "
                                         r"exist yet \(pass --overwrite, from Python overwrite=True"):
        stats.save(path)
    stats.save(path, overwrite=True)
    # The training file is no output of the statistics: overwrite=True replaced it with JSON.
    data = tmp_path / "tiny.h5"
    before = data.read_bytes()
    wanted = r"tiny\.h5: statistics file: expected a file ending in \.json, got \.h5$"
    with pytest.raises(InputError, match=wanted):
        stats.save(data, overwrite=True)
    assert data.read_bytes() == before
    (tmp_path / "notes.json").write_text('{"mean": 1}')
    with pytest.raises(InputError, match=r"notes\.json: expected a statistics file written by spanet_lite"):
        DatasetStatistics.load(tmp_path / "notes.json")
    with pytest.raises(InputError, match=r"absent\.json: expected an existing statistics file"):
        DatasetStatistics.load(tmp_path / "absent.json")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(0, 1000))
def test_running_moments_match_one_pass_numpy(sizes: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [rng.normal(1e4, 3.0, (n, 2)) for n in sizes]
    moments = RunningMoments(2)
    for part in parts:
        moments.update(part)
    everything = np.concatenate(parts)
    assert moments.mean == pytest.approx(everything.mean(axis=0), rel=1e-12)
    expected = everything.std(axis=0)
    assert moments.std == pytest.approx(np.where(expected > 0, expected, 1.0), rel=1e-6)


@settings(max_examples=8, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(0, 2**31 - 1))
def test_padded_slots_never_change_statistics_or_batches(garbage: float, seed: int) -> None:
    import tempfile

    import torch

    reference = tiny_arrays()
    arrays = tiny_arrays()
    rng = np.random.default_rng(seed)
    for name in ("INPUTS/Jets/pt", "INPUTS/Jets/eta", "INPUTS/Leptons/pt"):
        padded = ~arrays[name.rsplit("/", 1)[0] + "/MASK"]
        noise = rng.choice([garbage, -5.0, 1e30], size=arrays[name].shape).astype(np.float32)
        arrays[name] = np.where(padded, noise, arrays[name])
    with tempfile.TemporaryDirectory() as folder:
        results = []
        for name, data in (("a.h5", reference), ("b.h5", arrays)):
            path = write_h5(Path(folder) / name, data)
            module = SpanetDataModule(
                TINY_SPEC,
                Options(partial_events=True, batch_size=6, validation_file=str(path)),
                training_file=path,
            )
            module.setup("fit")
            results.append((module.statistics, next(iter(module.val_dataloader()))))
    assert results[0][0] == results[1][0]
    for key in ("Jets", "Leptons"):
        assert torch.equal(results[0][1].features[key], results[1][1].features[key])
