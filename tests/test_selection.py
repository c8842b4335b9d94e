"""Which events a run reads and how it serves them (dataset/selection.py), with small numbers."""

from __future__ import annotations

import numpy as np
import pytest

from spanet_lite.config import parse_event_spec
from spanet_lite.dataset.selection import (
    bytes_per_event,
    choose_mode,
    equal_share,
    filter_rows,
    full_event_rows,
    rank_share,
    split_rows,
    usable_workers,
)

GiB = 1 << 30


def test_the_split_takes_the_first_events_in_file_order_without_randomization() -> None:
    train, val = split_rows(10, dataset_limit=1.0, train_validation_split=0.7,
                            randomization_seed=0, has_validation_file=False)
    assert train.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert val.tolist() == [7, 8, 9]


def test_dataset_limit_cuts_before_the_split() -> None:
    # limit 0.5 of 10 keeps 5 events: round(0.5 * 0.8 * 10) = 4 train, 1 validation
    train, val = split_rows(10, dataset_limit=0.5, train_validation_split=0.8,
                            randomization_seed=0, has_validation_file=False)
    assert train.tolist() == [0, 1, 2, 3]
    assert val.tolist() == [4]


def test_a_validation_file_leaves_every_kept_event_to_training() -> None:
    train, val = split_rows(10, dataset_limit=0.3, train_validation_split=0.5,
                            randomization_seed=0, has_validation_file=True)
    assert train.tolist() == [0, 1, 2]
    assert val.size == 0


def test_randomization_draws_spanets_events_and_returns_them_sorted() -> None:
    train, val = split_rows(8, dataset_limit=1.0, train_validation_split=0.5,
                            randomization_seed=3, has_validation_file=False)
    order = np.random.RandomState(3).permutation(8)
    assert train.tolist() == sorted(order[:4].tolist())
    assert val.tolist() == sorted(order[4:].tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(8))


def test_limit_to_num_jets_keeps_exact_counts_and_drop_invalid_names_the_first_bad_row() -> None:
    rows = np.array([1, 2, 3, 5])
    num_vectors = np.array([6, 6, 7, 6, 6, 6])
    finite = np.array([True, True, True, True, True, False])
    kept = filter_rows(rows, num_vectors, finite, limit_to_num_jets=6)
    assert kept.rows.tolist() == [1, 3]
    assert (kept.wrong_count, kept.invalid, kept.first_invalid) == (1, 1, 5)


def test_without_filters_every_row_stays() -> None:
    rows = np.array([0, 4])
    kept = filter_rows(rows, np.array([1, 2, 3, 4, 5]), None, limit_to_num_jets=0)
    assert kept.rows.tolist() == [0, 4]
    assert (kept.wrong_count, kept.invalid, kept.first_invalid) == (0, 0, None)


def test_an_invalid_event_already_cut_by_its_count_is_counted_once() -> None:
    rows = np.array([0, 1])
    kept = filter_rows(rows, np.array([5, 6]), np.array([False, True]), limit_to_num_jets=6)
    assert kept.rows.tolist() == [1]
    assert (kept.wrong_count, kept.invalid) == (1, 0)


def test_full_events_need_every_particle_reconstructable() -> None:
    masks = {"t1": np.array([True, True, False, True]), "t2": np.array([True, False, True, True])}
    assert full_event_rows(np.array([0, 1, 2, 3]), masks, ["t1", "t2"]).tolist() == [0, 3]
    assert full_event_rows(np.array([1, 2]), masks, []).tolist() == [1, 2]


def test_training_shares_are_equal_and_validation_shares_drop_nothing() -> None:
    rows = np.arange(7)
    assert [equal_share(rows, r, 3).tolist() for r in range(3)] == [[0, 1], [2, 3], [4, 5]]
    assert [rank_share(rows, r, 3).tolist() for r in range(3)] == [[0, 1, 2], [3, 4], [5, 6]]


def test_auto_mode_prefers_the_device_then_memory_below_half_of_what_is_free() -> None:
    assert choose_mode("auto", GiB, fits_on_device=True, available_memory=4 * GiB) == "device"
    assert choose_mode("auto", GiB, fits_on_device=False, available_memory=4 * GiB) == "memory"
    assert choose_mode("auto", 2 * GiB, fits_on_device=False, available_memory=4 * GiB) == "streaming"
    assert choose_mode("streaming", 1, fits_on_device=True, available_memory=4 * GiB) == "streaming"


@pytest.mark.parametrize(("asked", "mode", "blocks", "cpus", "used"), [
    (16, "memory", 50, 8, 0),       # batches are slices of arrays already in memory
    (16, "streaming", 50, 8, 8),    # no more than the cores
    (16, "streaming", 3, 8, 3),     # no more than the blocks
    (2, "streaming", 50, 8, 2),     # never more than asked
])
def test_loader_workers(asked: int, mode: str, blocks: int, cpus: int, used: int) -> None:
    assert usable_workers(asked, mode, blocks, cpus) == used


def test_bytes_per_event_counts_every_array_of_a_small_spec() -> None:
    spec = parse_event_spec(
        "INPUTS:\n"
        "  SEQUENTIAL:\n"
        "    Jets: {pt: log_normalize, eta: normalize}\n"
        "  GLOBAL:\n"
        "    Met: {met: normalize}\n"
        "EVENT:\n"
        "  t: [b: Jets, q: Jets]\n"
    )
    # 17 (row, weights, assignment mask) + 5 jets x (2 floats + mask) + 1 global float
    # + particle t: 2 int64 indices, mask, weight
    assert bytes_per_event(spec, {"Jets": 5}) == 17 + 5 * 9 + 4 + (16 + 1 + 4)
