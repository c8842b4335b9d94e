"""Balancing weights against values worked out by hand on the six tiny events.

Patterns of fully reconstructable particles (bit t=1, lt=2, h=4), see _dataset_helpers:
event 0: t+lt = 3, event 1: 0 (t's MASK is False), event 2: h = 4, event 3: 0, event 4: 7,
event 5: 0. Objects per event (Jets + Leptons): 5, 5, 4, 3, 7, 1. Labels: 1, 0, 1, -1, 0, 1.
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
from spanet_lite.dataset.balance import fit_balance, inverse_frequency, pattern_codes
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


def test_balance_particles_weights_each_pattern_equally(tmp_path: Path) -> None:
    # pattern 0 has 3 events, patterns 3, 4, 7 one each: P = 4 patterns, w = 6 / (4 n_c)
    batch = training_batch(tmp_path, balance_particles=True)
    expected = [1.5, 0.5, 1.5, 0.5, 1.5, 0.5]
    assert batch.assignment_weights.tolist() == pytest.approx(expected)
    assert batch.assignment_weights.mean().item() == pytest.approx(1.0)


def test_balance_jets_weights_each_object_count_equally(tmp_path: Path) -> None:
    # counts 5 (twice), 4, 3, 7, 1: J = 5, w = 6 / (5 n_j)
    batch = training_batch(tmp_path, balance_jets=True)
    assert batch.assignment_weights.tolist() == pytest.approx([0.6, 0.6, 1.2, 1.2, 1.2, 1.2])


def test_particle_and_jet_balancing_multiply(tmp_path: Path) -> None:
    batch = training_batch(tmp_path, balance_particles=True, balance_jets=True)
    expected = np.array([1.5, 0.5, 1.5, 0.5, 1.5, 0.5]) * np.array([0.6, 0.6, 1.2, 1.2, 1.2, 1.2])
    assert batch.assignment_weights.tolist() == pytest.approx(expected.tolist())


def test_balance_classifications_ignores_missing_labels(tmp_path: Path) -> None:
    # 5 labelled events: class 1 three times, class 0 twice; C = 2, w = 5 / (2 m_l); -1 -> 0
    batch = training_batch(tmp_path, balance_classifications=True)
    assert batch.classification_weights["EVENT/signal"].tolist() == pytest.approx(
        [5 / 6, 1.25, 5 / 6, 0, 1.25, 5 / 6]
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


@given(st.lists(st.integers(0, 5), min_size=1, max_size=50))
def test_inverse_frequency_has_mean_one_and_equal_mass_per_value(values: list[int]) -> None:
    array = np.array(values)
    distinct, weights = inverse_frequency(array)
    per_event = weights[np.searchsorted(distinct, array)]
    assert per_event.mean() == pytest.approx(1.0)
    mass = [per_event[array == v].sum() for v in distinct]
    assert mass == pytest.approx([mass[0]] * len(distinct))


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
    # patterns: {one top} x2, {both}, {none}, {t1 + w}: P = 4, w = 5 / (4 n_c)
    weights = dict(zip(tables.pattern_codes.tolist(), tables.pattern_weights.tolist(), strict=True))
    assert [weights[c] for c in codes.tolist()] == pytest.approx([0.625, 0.625, 1.25, 1.25, 1.25])
