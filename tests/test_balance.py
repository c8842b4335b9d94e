"""Balancing weights (SPANet's effective-number formulas) worked out by hand on the six tiny events.

Patterns of fully reconstructable particles (bit t=1, lt=2, h=4), see _dataset_helpers:
event 0: t+lt = 3, event 1: 0 (t's MASK is False), event 2: h = 4, event 3: 0, event 4: 7,
event 5: 0. SPANet's vector counts (Jets + Leptons + 1 for the GLOBAL Met): 6, 6, 5, 4, 8, 2.
Labels: 1, 0, 1, -1, 0, 1.

With n events, beta = 1 - 1/n and a class of n_c events weighs (1 - beta) / (1 - beta^n_c):
for n = 6 that is 1 (n_c = 1), 6/11 (n_c = 2), 216/671 (n_c = 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _dataset_helpers import TINY_SPEC, tiny_arrays, write_h5
from hypothesis import given
from hypothesis import strategies as st

from spanet_lite.config import parse_event_spec
from spanet_lite.config.options import Options
from spanet_lite.dataset.balance import count_balance, effective_number_weights, fit_balance, pattern_codes
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.datamodule import SpanetDataModule


def training_batch(tmp_path: Path, **options) -> Batch:
    """All six events as one training batch, in file order (balancing applies to training only)."""
    path = write_h5(tmp_path / "tiny.h5", tiny_arrays())
    module = SpanetDataModule(
        TINY_SPEC,
        Options(
            partial_events=True, batch_size=6, validation_file=str(path), dataset_mode="memory", **options
        ),
        training_file=path,
    )
    module.setup("fit")
    module.splits["train"].dataset.shuffle = False
    (batch,) = list(module.train_dataloader())
    return batch


def test_no_balancing_gives_ones(tmp_path: Path) -> None:
    batch = training_batch(tmp_path)
    assert batch.assignment_weights.tolist() == [1.0] * 6
    assert batch.classification_weights["EVENT/signal"].tolist() == [1, 1, 1, 0, 1, 1]


def test_balance_particles_uses_spanets_effective_number_with_one_added_per_class(tmp_path: Path) -> None:
    # no EVENT symmetry: 8 classes; counts + 1: pattern 0 -> 4, patterns 3, 4, 7 -> 2, four empty -> 1
    batch = training_batch(tmp_path, balance_particles=True)
    total = 216 / 671 + 3 * 6 / 11 + 4 * 1
    none, one = 8 * (216 / 671) / total, 8 * (6 / 11) / total  # 0.4322, 0.7324
    assert batch.assignment_weights.tolist() == pytest.approx([one, none, one, none, one, none], rel=1e-6)


def test_balance_particles_has_no_effect_without_partial_events_as_in_spanet(tmp_path: Path) -> None:
    tables = fit_balance(
        TINY_SPEC,
        Options(partial_events=False, balance_particles=True),
        target_masks={"t": np.ones(4, bool), "lt": np.zeros(4, bool), "h": np.ones(4, bool)},
        num_objects=np.full(4, 5),
        classifications={},
    )
    assert tables.pattern_codes is None and tables.pattern_weights is None


def test_balance_jets_uses_spanets_effective_number_over_min_to_max(tmp_path: Path) -> None:
    # counts 6 (twice), 5, 4, 8, 2 (once each), 3 and 7 absent (weight 0); w = 7 w_j / (4 + 6/11)
    batch = training_batch(tmp_path, balance_jets=True)
    assert batch.assignment_weights.tolist() == pytest.approx([0.84, 0.84, 1.54, 1.54, 1.54, 1.54], rel=1e-6)


def test_particle_and_jet_balancing_multiply(tmp_path: Path) -> None:
    particles = training_batch(tmp_path, balance_particles=True).assignment_weights
    jets = training_batch(tmp_path, balance_jets=True).assignment_weights
    both = training_batch(tmp_path, balance_particles=True, balance_jets=True).assignment_weights
    assert both.tolist() == pytest.approx((particles * jets).tolist())


def test_balance_classifications_uses_spanets_effective_number_on_labelled_events(tmp_path: Path) -> None:
    # 5 labelled events (beta = 4/5): class 0 twice -> 5/9, class 1 three times -> 25/61;
    # normalised to 2 w / (5/9 + 25/61); label -1 -> 0
    batch = training_batch(tmp_path, balance_classifications=True)
    zero, one = 2 * (5 / 9) / (530 / 549), 2 * (25 / 61) / (530 / 549)  # 1.1509, 0.8491
    assert batch.classification_weights["EVENT/signal"].tolist() == pytest.approx(
        [one, zero, one, 0, zero, one], rel=1e-6
    )


def test_validation_batches_are_not_balanced(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "tiny.h5", tiny_arrays())
    module = SpanetDataModule(
        TINY_SPEC,
        Options(
            batch_size=6,
            validation_file=str(path),
            balance_particles=True,
            balance_classifications=True,
            partial_events=True,
        ),
        training_file=path,
    )
    module.setup("fit")
    (batch,) = list(module.val_dataloader())
    assert batch.assignment_weights.tolist() == [1.0] * 6
    assert batch.classification_weights["EVENT/signal"].tolist() == [1, 1, 1, 0, 1, 1]


def test_effective_number_weights_by_hand() -> None:
    # n = 10, beta = 0.9: n_c = 1 -> 1, n_c = 10 -> 0.1 / (1 - 0.9^10) = 0.153534, n_c = 0 -> 0
    weights = effective_number_weights(np.array([1, 10, 0]), 10)
    assert weights.tolist() == pytest.approx([1.0, 0.153534, 0.0], rel=1e-5)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=50))
def test_count_balance_never_weighs_a_rarer_value_less(values: list[int]) -> None:
    array = np.array(values)
    table = count_balance(array, 3)
    counts = np.bincount(array)
    present = np.flatnonzero(counts)
    order = present[np.argsort(counts[present], kind="stable")]
    assert np.all(np.diff(table[order]) <= 1e-12)
    assert table.sum() == pytest.approx(3.0)


def test_patterns_exchanged_by_the_event_symmetry_count_as_one() -> None:
    spec = parse_event_spec(
        "INPUTS: {SEQUENTIAL: {Jets: {pt: none}}}\n"
        "EVENT: {t1: [b1, q1], t2: [b2, q2], w: [x]}\n"
        "PERMUTATIONS: {EVENT: [[t1, t2]]}\n"
    )
    # t1 only, t2 only, both, neither, t1 + w
    t1 = np.array([True, False, True, False, True])
    t2 = np.array([False, True, True, False, False])
    w = np.array([False, False, False, False, True])
    codes = pattern_codes({"t1": t1, "t2": t2, "w": w}, spec)
    assert codes[0] == codes[1] != codes[2]
    tables = fit_balance(
        spec,
        Options(partial_events=True, balance_particles=True),
        target_masks={"t1": t1, "t2": t2, "w": w},
        num_objects=np.zeros(5, dtype=np.int64),
        classifications={},
    )
    # 6 classes (orbits of the 8 patterns): {t1 | t2} 2 events + 1 = 3, {both}, {none}, {t1+w | t2+w}
    # 1 + 1 = 2 each, {w} and {all} 0 + 1; n = 5, beta = 4/5: w(3) = 25/61, w(2) = 5/9, w(1) = 1
    assert len(tables.pattern_codes) == 6
    total = 25 / 61 + 3 * 5 / 9 + 2
    one_top, other = 6 * (25 / 61) / total, 6 * (5 / 9) / total  # 0.6032, 0.8177
    weights = dict(zip(tables.pattern_codes.tolist(), tables.pattern_weights.tolist(), strict=True))
    assert [weights[c] for c in codes.tolist()] == pytest.approx([one_top, one_top, other, other, other])
