"""HDF5 layout validation (spanet_lite.dataset.schema) and the `spanet-inspect` command.

The small file built here has two SEQUENTIAL inputs so that both index spaces are exercised:
``Jets`` (4 slots) and ``Leptons`` (2 slots), combined space 0..5 with Leptons at 4..5.
Particle ``t`` has associated products (``b: Jets``, ``l: Leptons``); particle ``w`` has
``q1: Jets`` and the unassociated ``q2``, which indexes the combined space.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.cli.inspect import main
from spanet_lite.config import load_event_spec, parse_event_spec
from spanet_lite.dataset.hdf5_layout import EVENT_WEIGHT_DATASET, target_index_offsets
from spanet_lite.dataset.inspect import structure_lines
from spanet_lite.dataset.reader import read_block, resolve_layout
from spanet_lite.dataset.schema import Problem, ValidationReport, open_h5, validate_file
from spanet_lite.errors import InputError

EVENT_FILE = """\
INPUTS:
  SEQUENTIAL:
    Jets:
      pt: log_normalize
      eta: normalize
    Leptons:
      pt: log_normalize
  GLOBAL:
    Met:
      met: log_normalize
EVENT:
  t:
    - b: Jets
    - l: Leptons
  w:
    - q1: Jets
    - q2
REGRESSIONS:
  EVENT: [mass]
CLASSIFICATIONS:
  EVENT: [signal]
"""

JETS = [3, 4, 2, 4, 3, 4]  # real jets per event (left-aligned in 4 slots)
LEPTONS = [1, 1, 2, 0, 1, 1]  # real leptons per event (2 slots)


def _mask(counts: list[int], width: int) -> np.ndarray:
    return np.arange(width)[None, :] < np.array(counts)[:, None]


def good_datasets() -> dict[str, np.ndarray]:
    """A valid 6-event file: every product matched except t in event 3 and w in event 4."""
    rng = np.random.default_rng(0)
    return {
        "INPUTS/Jets/MASK": _mask(JETS, 4),
        "INPUTS/Jets/pt": rng.uniform(20, 200, (6, 4)).astype(np.float32),
        "INPUTS/Jets/eta": rng.normal(0, 1, (6, 4)).astype(np.float32),
        "INPUTS/Leptons/MASK": _mask(LEPTONS, 2),
        "INPUTS/Leptons/pt": rng.uniform(20, 200, (6, 2)).astype(np.float32),
        "INPUTS/Met/met": rng.uniform(0, 100, 6).astype(np.float32),
        "INPUTS/Met/sumet": rng.uniform(0, 900, 6).astype(np.float32),  # not in the event file
        "TARGETS/t/b": np.array([0, 1, 0, -1, 2, 0]),
        "TARGETS/t/l": np.array([0, 0, 1, -1, 0, 0]),  # Leptons slots = combined 4, 4, 5, -, 4, 4
        "TARGETS/w/q1": np.array([1, 2, 1, 0, -1, 1]),
        "TARGETS/w/q2": np.array([2, 3, 4, 1, -1, 3]),  # combined space: event 2 takes lepton slot 0
        "REGRESSIONS/EVENT/mass": np.array([1, 2, 3, np.nan, 5, 6], dtype=np.float32),
        "CLASSIFICATIONS/EVENT/signal": np.array([0, 1, 1, -1, 2, 0]),
    }


def write_h5(path: Path, datasets: dict[str, np.ndarray | None]) -> Path:
    with h5py.File(path, "w") as file:
        for name, data in datasets.items():
            if data is not None:
                file.create_dataset(name, data=data)
    return path


@pytest.fixture(scope="module")
def spec():
    return parse_event_spec(EVENT_FILE, source="test.yaml")


@pytest.fixture
def build(tmp_path: Path, spec) -> Callable[..., ValidationReport]:
    """build(changes) writes the good file with ``changes`` applied (None removes a dataset)
    and returns its validation report; ``edit`` may modify arrays in place first."""

    def make(changes: dict[str, np.ndarray | None] | None = None,
             edit: Callable[[dict[str, np.ndarray]], None] | None = None, **kwargs) -> ValidationReport:
        datasets: dict[str, np.ndarray | None] = dict(good_datasets())
        if edit is not None:
            edit(datasets)  # type: ignore[arg-type]
        datasets.update(changes or {})
        return validate_file(write_h5(tmp_path / "events.h5", datasets), spec, **kwargs)

    return make


def errors(report: ValidationReport) -> list[tuple[str, str]]:
    return [(p.where, p.message) for p in report.problems if p.level == "error"]


def only_error(report: ValidationReport) -> Problem:
    found = [p for p in report.problems if p.level == "error"]
    assert len(found) == 1, found
    return found[0]


# ----------------------------------------------------------------------------- a valid file


def test_combined_index_space_puts_each_input_after_the_previous_one(spec):
    assert target_index_offsets(spec, {"Jets": 4, "Leptons": 2}) == {"Jets": 0, "Leptons": 4}


def test_good_file_is_valid_and_its_summary_counts_what_is_in_it(build):
    report = build()
    assert report.ok and report.first_error() is None
    assert report.num_events == 6
    assert report.max_objects == {"Jets": 4, "Leptons": 2}
    summary = report.summary
    assert summary["events"] == 6
    assert summary["inputs"]["Jets"] == {"kind": "SEQUENTIAL", "max_objects": 4,
                                         "objects_mean": pytest.approx(20 / 6), "objects_max": 4}
    assert summary["inputs"]["Leptons"]["objects_mean"] == pytest.approx(1.0)
    assert summary["inputs"]["Met"] == {"kind": "GLOBAL", "features": 1}
    assert summary["particles"]["t"] == pytest.approx(
        {"fully_matched": 5 / 6, "partially_matched": 0.0, "not_matched": 1 / 6})
    assert summary["particles"]["w"] == pytest.approx(
        {"fully_matched": 5 / 6, "partially_matched": 0.0, "not_matched": 1 / 6})
    mass = summary["regressions"]["EVENT/mass"]
    assert mass["count"] == 5
    assert mass["nan_fraction"] == pytest.approx(1 / 6)
    assert mass["mean"] == pytest.approx(3.4)
    assert mass["std"] == pytest.approx(statistics.pstdev([1, 2, 3, 5, 6]))
    assert summary["classifications"]["EVENT/signal"] == {"class_counts": {0: 2, 1: 2, 2: 1}, "missing": 1}


def test_the_event_file_may_be_given_by_its_path_as_to_every_api_taking_a_topology(tmp_path, spec):
    """validate_file(path, "events.yaml") was an AttributeError deep inside expected_layout; the
    data module and the dataset operations take a path as well as an EventSpec."""
    data = write_h5(tmp_path / "events.h5", good_datasets())
    (tmp_path / "test.yaml").write_text(EVENT_FILE)
    assert validate_file(data, str(tmp_path / "test.yaml")).problems == validate_file(data, spec).problems
    assert validate_file(data, tmp_path / "test.yaml").ok
    with pytest.raises(InputError, match=r"^spec: expected an event file path or an EventSpec, got nothing$"):
        validate_file(data, None)
    with pytest.raises(InputError, match=r"^path: expected an event file path or an EventSpec, got 3 "):
        load_event_spec(3)


def test_datasets_the_event_file_does_not_use_are_info_only(build):
    report = build()
    assert [(p.level, p.where) for p in report.problems] == [("info", "INPUTS/Met/sumet")]


def test_optional_target_mask_weights_and_event_weight_are_recognised(build):
    report = build({
        "TARGETS/t/MASK": np.array([True, True, True, False, True, False]),  # event 3 has no t
        "TARGETS/t/WEIGHT": np.full(6, 0.5),
        "WEIGHTS/EVENT/weight": np.linspace(0.1, 1.0, 6),
    })
    assert report.ok
    assert [p.where for p in report.problems] == ["INPUTS/Met/sumet"]


def test_partially_matched_particle_is_counted_as_partial(build):
    report = build({"TARGETS/w/q2": np.array([2, 3, -1, 1, -1, 3])})
    assert report.ok
    assert report.summary["particles"]["w"] == pytest.approx(
        {"fully_matched": 4 / 6, "partially_matched": 1 / 6, "not_matched": 1 / 6})


def test_a_link_to_nothing_is_an_error_even_where_the_dataset_is_optional(tmp_path, spec):
    """A dangling link at the event weights (optional: SPANet's files have none) was read as "no
    weights", so a run trained unweighted and a test scored with weight 1 without a word; at a
    needed dataset it was called "nothing". Both now name the link and where it leads."""
    path = write_h5(tmp_path / "events.h5", good_datasets())
    with h5py.File(path, "r+") as file:
        file["WEIGHTS/EVENT/weight"] = h5py.SoftLink("/STASH/weight")
        del file["INPUTS/Jets/eta"]
        file["INPUTS/Jets/eta"] = h5py.ExternalLink(str(tmp_path / "gone.h5"), "/eta")
    found = dict(errors(validate_file(path, spec)))
    assert found["WEIGHTS/EVENT/weight"].endswith("got a soft link to nothing (/STASH/weight)")
    gone = tmp_path / "gone.h5"
    assert found["INPUTS/Jets/eta"].endswith(f"got an external link to nothing (/eta in {gone})")
    assert len(found) == 2


def test_nan_in_padded_slots_is_fine(build):
    def pad_with_nan(datasets):
        datasets["INPUTS/Jets/pt"][0, 3] = np.nan  # event 0 has 3 jets: slot 3 is padding

    assert build(edit=pad_with_nan).ok


def test_integer_features_are_accepted_with_a_note(build):
    report = build({"INPUTS/Jets/eta": np.zeros((6, 4), dtype=np.int32)})
    assert report.ok
    assert Problem("info", "INPUTS/Jets/eta", "stored as int32; read as float32") in report.problems


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 5])
def test_result_does_not_depend_on_the_chunk_size(build, chunk_size):
    def break_some(datasets):
        datasets["INPUTS/Jets/pt"][4, 1] = np.inf
        datasets["INPUTS/Jets/pt"][5, 0] = np.nan
        datasets["TARGETS/w/q1"][5] = 3  # q2 of event 5 is 3 too

    whole = build(edit=break_some)
    chunked = build(edit=break_some, chunk_size=chunk_size)
    assert chunked.problems == whole.problems
    chunked_mass = chunked.summary.pop("regressions")["EVENT/mass"]
    whole_mass = whole.summary.pop("regressions")["EVENT/mass"]
    assert chunked.summary == whole.summary
    assert chunked_mass == pytest.approx(whole_mass, rel=1e-12)  # merged moments: rounding only
    assert ("INPUTS/Jets/pt", "expected finite values for real objects, got NaN/inf in 2 objects of 2 events "
            "(first: event 4)") in errors(chunked)


def test_a_block_of_the_scan_stays_within_its_memory_budget_however_wide_the_file(build, monkeypatch):
    """The check read 65,536 events at a time whatever their width: a file with 2,000,000 slots
    per event took 12 GB to reach its one-line refusal. A block now holds at most
    SCAN_BLOCK_BYTES of its widest dataset (here 4 float32 jet slots, 16 bytes per event), with
    the same findings."""
    from spanet_lite.dataset import schema

    def break_some(datasets):
        datasets["INPUTS/Jets/pt"][5, 0] = np.nan

    whole = build(edit=break_some)
    blocks: list[int] = []
    scan = schema._ContentScan.scan_chunk
    monkeypatch.setattr(schema._ContentScan, "scan_chunk",
                        lambda self, start, stop: blocks.append(stop - start) or scan(self, start, stop))
    monkeypatch.setattr(schema, "SCAN_BLOCK_BYTES", 32)
    small = build(edit=break_some)
    assert max(blocks) == 2 and sum(blocks) == 6
    assert small.problems == whole.problems


def random_datasets(rng: np.random.Generator, num_events: int) -> dict[str, np.ndarray]:
    """A valid file for the test spec with random multiplicities and random distinct matches."""
    jets = rng.integers(2, 5, num_events)
    leptons = rng.integers(1, 3, num_events)
    jet_mask, lepton_mask = _mask(list(jets), 4), _mask(list(leptons), 2)
    jet_order = np.argsort(np.where(jet_mask, rng.random((num_events, 4)), 2.0), axis=1)  # real jets first
    drop = rng.random((num_events, 4)) < 0.2
    datasets = good_datasets()
    datasets = {name: data for name, data in datasets.items() if not name.startswith(("INPUTS", "TARGETS"))}
    datasets = {name: np.resize(data, num_events) for name, data in datasets.items()}
    datasets.update({
        "INPUTS/Jets/MASK": jet_mask,
        "INPUTS/Jets/pt": np.where(jet_mask, rng.uniform(20, 200, (num_events, 4)), np.nan).astype("f4"),
        "INPUTS/Jets/eta": rng.normal(size=(num_events, 4)).astype(np.float32),
        "INPUTS/Leptons/MASK": lepton_mask,
        "INPUTS/Leptons/pt": rng.uniform(20, 200, (num_events, 2)).astype(np.float32),
        "INPUTS/Met/met": rng.uniform(0, 100, num_events).astype(np.float32),
        "TARGETS/t/b": np.where(drop[:, 0], -1, jet_order[:, 0]),
        "TARGETS/t/l": np.where(drop[:, 1], -1, 0),
        "TARGETS/w/q1": np.where(drop[:, 2], -1, jet_order[:, 1]),
        # unassociated: the second lepton when there is one (combined index 5), else no match
        "TARGETS/w/q2": np.where(drop[:, 3] | (leptons < 2), -1, 5),
    })
    return datasets


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), num_events=st.integers(1, 40), chunk_size=st.integers(1, 16))
def test_random_valid_files_are_valid_and_one_bad_index_is_found(spec, seed, num_events, chunk_size):
    rng = np.random.default_rng(seed)
    datasets = random_datasets(rng, num_events)
    with tempfile.TemporaryDirectory() as folder:
        report = validate_file(write_h5(Path(folder) / "good.h5", datasets), spec, chunk_size=chunk_size)
        assert report.ok, report.problems
        present = np.stack([datasets["TARGETS/t/b"], datasets["TARGETS/t/l"]], axis=1) >= 0
        assert report.summary["particles"]["t"]["fully_matched"] == pytest.approx(present.all(1).mean())

        event = int(rng.integers(num_events))
        datasets["TARGETS/t/b"][event] = 3 if datasets["INPUTS/Jets/MASK"][event].sum() < 4 else 7
        report = validate_file(write_h5(Path(folder) / "bad.h5", datasets), spec, chunk_size=chunk_size)
        assert [(p.where, p.code) for p in report.errors] == [
            ("TARGETS/t/b", "index_padded" if datasets["TARGETS/t/b"][event] == 3 else "index_range")]
        value = datasets["TARGETS/t/b"][event]
        assert report.errors[0].message.endswith(f"(first: event {event}, value {value})")


def test_problem_codes_let_programs_filter_findings(build):
    def poison(datasets):
        datasets["INPUTS/Jets/pt"][0, 0] = np.nan

    report = build({"INPUTS/Jets/eta": np.zeros((6, 4), dtype=np.int16), "TARGETS/w/q2": None}, edit=poison)
    assert [(p.level, p.where, p.code) for p in report.problems] == [
        ("error", "TARGETS/w/q2", "missing"),
        ("error", "INPUTS/Jets/pt", "nonfinite"),
        ("info", "INPUTS/Jets/eta", "converted"),
        ("info", "INPUTS/Met/sumet", "unused"),
    ]


# ----------------------------------------------------------------------------- layout problems


def test_missing_feature_dataset(build):
    problem = only_error(build({"INPUTS/Jets/eta": None}))
    assert problem.where == "INPUTS/Jets/eta"
    assert problem.message.startswith("expected feature eta of SEQUENTIAL input Jets")
    assert problem.message.endswith("got nothing")


def test_a_feature_spelled_otherwise_in_the_file_is_named(build):
    """An event file's 'etta' where the file has 'eta': the line said only 'got nothing'."""
    problem = only_error(build(edit=lambda d: d.update({"INPUTS/Jets/etta": d.pop("INPUTS/Jets/eta")})))
    assert problem.where == "INPUTS/Jets/eta"
    assert problem.message.endswith("got nothing (did you mean 'etta'?)")


def test_missing_mask_is_reported_once_and_its_features_are_not_read(build):
    problem = only_error(build({"INPUTS/Leptons/MASK": None}))
    assert problem.where == "INPUTS/Leptons/MASK"
    assert "bool MASK of SEQUENTIAL input Leptons" in problem.message


def test_missing_input_group_is_one_error_not_one_per_feature(build):
    problem = only_error(build({"INPUTS/Met/met": None, "INPUTS/Met/sumet": None}))
    assert problem.where == "INPUTS/Met"
    assert problem.message == "expected a group with the GLOBAL input Met (1 features), got nothing"


def test_the_summary_shows_the_raw_std_of_a_regression_not_the_normalisations_guarded_one(build):
    constant = build({"REGRESSIONS/EVENT/mass": np.array([4, 4, np.nan, 4, 4, 4], dtype=np.float32)})
    assert constant.summary["regressions"]["EVENT/mass"] == {
        "count": 5, "nan_fraction": pytest.approx(1 / 6), "mean": 4.0, "std": 0.0}
    empty = build({"REGRESSIONS/EVENT/mass": np.full(6, np.nan, dtype=np.float32)})
    assert empty.summary["regressions"]["EVENT/mass"] == {
        "count": 0, "nan_fraction": 1.0, "mean": None, "std": None}


def test_missing_regression_and_classification_targets(build):
    report = build({"REGRESSIONS/EVENT/mass": None, "CLASSIFICATIONS/EVENT/signal": None})
    assert [where for where, _ in errors(report)] == [
        "REGRESSIONS/EVENT/mass", "CLASSIFICATIONS/EVENT/signal"]
    assert report.summary["regressions"] == {} and report.summary["classifications"] == {}


def test_group_where_a_dataset_should_be(tmp_path, spec):
    datasets = good_datasets()
    del datasets["TARGETS/t/b"]
    datasets["TARGETS/t/b/index"] = np.zeros(6, dtype=np.int64)
    report = validate_file(write_h5(tmp_path / "f.h5", datasets), spec)
    assert ("TARGETS/t/b", "expected a dataset, got a group") in errors(report)


@pytest.mark.parametrize(
    ("changes", "where", "message"),
    [
        ({"INPUTS/Jets/MASK": _mask(JETS, 4).astype(np.float32)}, "INPUTS/Jets/MASK",
         "expected bool, got float32"),
        ({"TARGETS/t/b": np.array([0, 1, 0, -1, 2, 0], dtype=np.float64)}, "TARGETS/t/b",
         "expected an integer type (object index), got float64"),
        ({"CLASSIFICATIONS/EVENT/signal": np.zeros(6, dtype=np.float32)}, "CLASSIFICATIONS/EVENT/signal",
         "expected an integer type (class label), got float32"),
        ({"INPUTS/Jets/pt": np.array([b"a"] * 24).reshape(6, 4)}, "INPUTS/Jets/pt",
         "expected a float type, got |S1"),
    ],
    ids=["float-mask", "float-target", "float-class", "bytes-feature"],
)
def test_wrong_dtype(build, changes, where, message):
    assert errors(build(changes)) == [(where, message)]


@pytest.mark.parametrize(
    ("changes", "where", "message"),
    [
        ({"INPUTS/Jets/pt": np.ones(6, dtype=np.float32)}, "INPUTS/Jets/pt",
         "expected a 2-D dataset (N_events, max_objects), got shape (6,)"),
        ({"INPUTS/Met/met": np.ones((6, 3), dtype=np.float32)}, "INPUTS/Met/met",
         "expected a 1-D dataset (N_events,): GLOBAL inputs hold one value per event, got shape (6, 3)"),
        ({"TARGETS/w/q1": np.zeros((6, 1), dtype=np.int64)}, "TARGETS/w/q1",
         "expected a 1-D dataset (N_events,), got shape (6, 1)"),
        ({"INPUTS/Met/met": np.ones(5, dtype=np.float32)}, "INPUTS/Met/met",
         "expected 6 events like INPUTS/Jets/MASK, got 5"),
        ({"INPUTS/Jets/eta": np.ones((6, 3), dtype=np.float32)}, "INPUTS/Jets/eta",
         "expected 4 objects per event like INPUTS/Jets/MASK, got 3"),
    ],
    ids=["feature-rank", "global-rank", "target-rank", "event-count", "object-count"],
)
def test_wrong_shape(build, changes, where, message):
    assert errors(build(changes)) == [(where, message)]


def test_file_with_no_events(tmp_path, spec):
    datasets = {name: data[:0] for name, data in good_datasets().items()}
    report = validate_file(write_h5(tmp_path / "empty.h5", datasets), spec)
    assert errors(report) == [("", "expected at least one event, got 0")]


# ----------------------------------------------------------------------------- content problems


def test_index_past_the_end_of_its_own_input(build):
    # l is associated with Leptons (2 slots): 2 would be a Jets slot in the combined space
    problem = only_error(build({"TARGETS/t/l": np.array([0, 0, 1, -1, 2, 0])}))
    assert problem == Problem("error", "TARGETS/t/l", "expected an object index in -1..1 (slots of input "
                              "Leptons), got 1 index out of range (first: event 4, value 2)")


def test_unassociated_index_counts_in_the_combined_space(build):
    problem = only_error(build({"TARGETS/w/q2": np.array([2, 3, 4, 1, -1, 6])}))
    assert problem.message == ("expected an object index in -1..5 (all SEQUENTIAL inputs combined), "
                               "got 1 index out of range (first: event 5, value 6)")


def test_index_below_minus_one(build):
    problem = only_error(build({"TARGETS/t/b": np.array([0, 1, -2, -1, 2, -7])}))
    assert problem.where == "TARGETS/t/b"
    assert problem.message.endswith("got 2 indices out of range (first: event 2, value -2)")


def test_index_of_a_padded_slot(build):
    # event 2 has 2 jets, so Jets slot 3 is padding
    problem = only_error(build({"TARGETS/t/b": np.array([0, 1, 3, -1, 2, 0])}))
    assert problem == Problem("error", "TARGETS/t/b", "expected the index of a real object (MASK True), "
                              "got 1 index of padded (masked-out) slots (first: event 2, value 3)")


def test_unassociated_index_of_a_padded_slot_of_the_second_input(build):
    # event 3 has no lepton: combined index 4 (lepton slot 0) is padding
    problem = only_error(build({"TARGETS/w/q2": np.array([2, 3, 4, 4, -1, 3])}))
    assert problem.where == "TARGETS/w/q2"
    assert "padded (masked-out) slots (first: event 3, value 4)" in problem.message


def test_same_object_for_two_products_of_one_particle(build):
    problem = only_error(build({"TARGETS/w/q1": np.array([1, 3, 1, 0, -1, 3])}))
    assert problem == Problem("error", "TARGETS/w", "expected a different object for each product, got q1 "
                              "and q2 on the same object in 2 events (first: event 1, combined index 3)")


def test_same_object_shared_by_two_particles(build):
    problem = only_error(build({"TARGETS/t/b": np.array([1, 1, 0, -1, 2, 0])}))
    assert problem == Problem("error", "TARGETS/t", "expected no object shared with TARGETS/w, "
                              "got shared objects in 1 event (first: event 0)")


def test_associated_and_unassociated_indices_meet_in_the_combined_space(build):
    # t/l = lepton slot 0 (combined 4) and w/q2 = combined 4 in event 0: the same lepton
    problem = only_error(build({"TARGETS/w/q2": np.array([4, 3, 4, 1, -1, 3])}))
    assert problem.where == "TARGETS/t"
    assert problem.message.endswith("shared objects in 1 event (first: event 0)")


def test_nan_and_inf_in_features_of_real_objects(build):
    def poison(datasets):
        datasets["INPUTS/Jets/pt"][1, 0] = np.nan
        datasets["INPUTS/Jets/pt"][1, 3] = np.inf
        datasets["INPUTS/Jets/pt"][4, 2] = -np.inf

    problem = only_error(build(edit=poison))
    assert problem == Problem("error", "INPUTS/Jets/pt", "expected finite values for real objects, "
                              "got NaN/inf in 3 objects of 2 events (first: event 1)")


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("INPUTS/Met/met", np.nan, "expected finite values, got NaN/inf in 1 event (first: event 2)"),
        ("REGRESSIONS/EVENT/mass", np.inf,
         "expected finite values or NaN (missing), got inf in 1 event (first: event 2)"),
        ("WEIGHTS/EVENT/weight", np.nan, "expected finite weights, got NaN/inf in 1 event (first: event 2)"),
    ],
)
def test_non_finite_per_event_values(build, where, value, message):
    def poison(datasets):
        datasets.setdefault(where, np.ones(6, dtype=np.float32))[2] = value

    assert errors(build(edit=poison)) == [(where, message)]


def test_a_float64_regression_target_beyond_float32_is_refused_like_inf(build):
    """Training reads regression targets as float32, where 1e300 is inf: the check passed it as
    finite, and training took it for a missing value (or, in every event, said "got only NaN")."""
    def poison(datasets):
        values = np.ones(6, dtype=np.float64)
        values[2] = 1e300
        datasets["REGRESSIONS/EVENT/mass"] = values

    message = "expected finite values or NaN (missing), got inf in 1 event (first: event 2)"
    assert errors(build(edit=poison)) == [("REGRESSIONS/EVENT/mass", message)]


def test_class_label_below_minus_one(build):
    problem = only_error(build({"CLASSIFICATIONS/EVENT/signal": np.array([0, 1, -3, -1, 2, 0])}))
    assert problem.message == ("expected class labels >= 0, or -1 for missing, got 1 label below -1 "
                               "(first: event 2, value -3)")


def test_a_class_label_beyond_int32_is_refused_not_read_as_another_class(build):
    """Labels are handled as int32 once the file is checked: 2**32 became class 0, and the class
    count, balancing and the batches (int64) each saw another label."""
    labels = np.array([0, 1, 2**32, -1, 1, 0], dtype=np.int64)
    problem = only_error(build({"CLASSIFICATIONS/EVENT/signal": labels}))
    assert problem.message == (f"expected class labels below 2**31 = {2**31:,}, got 1 label at or above it "
                               f"(first: event 2, value {2**32})")


def test_raise_for_errors_gives_the_first_error_as_input_error(build):
    report = build({"INPUTS/Met/met": None, "INPUTS/Jets/eta": None})
    with pytest.raises(InputError, match=r"events\.h5: INPUTS/Jets/eta: expected feature eta .* got nothing "
                                         r"\(1 more problem"):
        report.raise_for_errors()


# ----------------------------------------------------------------------------- unreadable files


def test_open_h5_names_missing_non_hdf5_and_truncated_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_h5(tmp_path / "absent.h5")
    (tmp_path / "notes.h5").write_text("not an hdf5 file\n")
    with pytest.raises(InputError, match=r"not an HDF5 file \(no HDF5 signature\)"):
        open_h5(tmp_path / "notes.h5")
    with pytest.raises(InputError, match="got a directory"):
        open_h5(tmp_path)
    truncated = _truncated_copy(tmp_path)
    with pytest.raises(InputError, match="got a truncated file"):
        open_h5(truncated)


def test_damaged_structure_found_while_checking_is_one_line_naming_the_file(tmp_path, spec):
    """h5py raises RuntimeError for a soft link that points at itself (and for damaged group
    metadata) only when the path is looked up, after the file opened fine."""
    looped = write_h5(tmp_path / "looped.h5", good_datasets())
    with h5py.File(looped, "r+") as file:
        del file["INPUTS/Jets/pt"]
        file["INPUTS/Jets/pt"] = h5py.SoftLink("/INPUTS/Jets/pt")
    with pytest.raises(InputError) as raised:
        validate_file(looped, spec)
    assert str(raised.value) == (
        f"{looped}: expected a readable HDF5 file, got Special link traversal failed (too many links)"
    )


def test_a_damaged_chunk_is_one_line_naming_the_dataset_and_its_events(tmp_path, spec):
    """A compressed chunk whose bytes changed (a bad disk, a copy cut short) fails only when it
    is read; the line says which dataset and which events, for the validator and the loaders."""
    damaged = _damaged_chunk_copy(tmp_path, "INPUTS/Jets/pt", chunk=1)
    expected = (f"{damaged}: INPUTS/Jets/pt, events 2-3: expected data HDF5 can read, got a damaged "
                "chunk (HDF5: ")
    with pytest.raises(InputError) as raised:
        validate_file(damaged, spec)
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)
    with h5py.File(damaged, "r") as file:
        layout = resolve_layout(file, spec, damaged, EVENT_WEIGHT_DATASET)
        read_block(file, spec, layout, 0, 2)  # the chunks before the damaged one still read
        with pytest.raises(InputError) as raised:
            read_block(file, spec, layout, 0, 6)
    assert str(raised.value).startswith(expected)


def _damaged_chunk_copy(tmp_path: Path, name: str, chunk: int) -> Path:
    """The good file with ``name`` stored gzip-compressed in chunks of two events, and the bytes
    of chunk ``chunk`` overwritten."""
    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as file:
        for key, data in good_datasets().items():
            options = {"chunks": (2, *data.shape[1:]), "compression": "gzip"} if key == name else {}
            file.create_dataset(key, data=data, **options)
    with h5py.File(path, "r") as file:
        info = file[name].id.get_chunk_info(chunk)
    with path.open("r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xff" * info.size)
    return path


def _truncated_copy(tmp_path: Path) -> Path:
    whole = write_h5(tmp_path / "whole.h5", good_datasets())
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    return truncated


# ----------------------------------------------------------------------------- reference file


# The ttH guide's printout of SPANet's example file (its datasets listed in a different order).
GUIDE_TREE = """\
|-CLASSIFICATIONS
|---EVENT
|-----signal :: int64 : (1000,)
|-INPUTS
|---Met
|-----met :: float32 : (1000,)
|-----sumet :: float32 : (1000,)
|-----cos_phi :: float32 : (1000,)
|-----sin_phi :: float32 : (1000,)
|---Momenta
|-----MASK :: bool : (1000, 19)
|-----cos_phi :: float32 : (1000, 19)
|-----sin_phi :: float32 : (1000, 19)
|-----eta :: float32 : (1000, 19)
|-----mass :: float32 : (1000, 19)
|-----pt :: float32 : (1000, 19)
|-----btag :: float32 : (1000, 19)
|-----qtag :: float32 : (1000, 19)
|-----etag :: float32 : (1000, 19)
|-----utag :: float32 : (1000, 19)
|-REGRESSIONS
|---EVENT
|-----log_invariant_mass :: float32 : (1000,)
|-----neutrino_eta :: float32 : (1000,)
|-----neutrino_px :: float32 : (1000,)
|-----neutrino_py :: float32 : (1000,)
|-----neutrino_pz :: float32 : (1000,)
|-TARGETS
|---h
|-----b1 :: int64 : (1000,)
|-----b2 :: int64 : (1000,)
|---ht
|-----b :: int64 : (1000,)
|-----q1 :: int64 : (1000,)
|-----q2 :: int64 : (1000,)
|---lt
|-----b :: int64 : (1000,)
|-----l :: int64 : (1000,)"""


def test_reference_printout_has_the_guides_lines_in_h5py_order(reference_dir):
    with open_h5(reference_dir / "example.h5") as file:
        lines = structure_lines(file, "data/semi_leptonic_ttH/example.h5")
    assert lines[:3] == ["=" * 60, "| Structure for data/semi_leptonic_ttH/example.h5", "=" * 60]
    assert sorted(lines[3:]) == sorted(GUIDE_TREE.splitlines())
    assert lines[3:9] == ["|-CLASSIFICATIONS", "|---EVENT", "|-----signal :: int64 : (1000,)", "|-INPUTS",
                          "|---Met", "|-----cos_phi :: float32 : (1000,)"]
    assert lines.index("|-----MASK :: bool : (1000, 19)") == lines.index("|---Momenta") + 1


def test_reference_file_is_valid_for_its_event_file(reference_dir):
    spec = load_event_spec(reference_dir / "semi_leptonic_ttH.yaml")
    report = validate_file(reference_dir / "example.h5", spec)
    assert report.ok
    assert report.num_events == 1000 and report.max_objects == {"Momenta": 19}
    assert [(p.level, p.where) for p in report.problems] == [
        ("info", "INPUTS/Met/sumet"), ("info", "TARGETS/lt/l")]
    with h5py.File(reference_dir / "example.h5", "r") as file:
        mask = file["INPUTS/Momenta/MASK"][:]
        ht = np.stack([file[f"TARGETS/ht/{q}"][:] for q in ("b", "q1", "q2")], axis=1)
        signal = file["CLASSIFICATIONS/EVENT/signal"][:]
        pz = file["REGRESSIONS/EVENT/neutrino_pz"][:].astype(np.float64)
    summary = report.summary
    assert summary["inputs"]["Momenta"]["objects_mean"] == pytest.approx(mask.sum(1).mean())
    assert summary["inputs"]["Momenta"]["objects_max"] == mask.sum(1).max()
    assert summary["particles"]["ht"]["fully_matched"] == pytest.approx((ht >= 0).all(1).mean())
    assert summary["particles"]["ht"]["not_matched"] == pytest.approx((ht < 0).all(1).mean())
    assert summary["classifications"]["EVENT/signal"]["class_counts"] == {0: int((signal == 0).sum()),
                                                                          1: int((signal == 1).sum())}
    assert summary["regressions"]["EVENT/neutrino_pz"]["std"] == pytest.approx(pz.std(), rel=1e-9)


# ----------------------------------------------------------------------------- the command


def test_cli_prints_the_tree_and_exits_0_without_event_file(generated_tth, capsys):
    assert main([str(generated_tth / "example.h5")]) == 0
    out = capsys.readouterr().out
    assert f"| Structure for {generated_tth / 'example.h5'}\n" in out
    assert "|-----signal :: int64 : (1000,)\n" in out


def test_cli_validates_the_reference_file(reference_dir, capsys):
    event_file = reference_dir / "semi_leptonic_ttH.yaml"
    code = main([str(reference_dir / "example.h5"), "--event-file", str(event_file)])
    out = capsys.readouterr().out
    assert code == 0
    assert "1,000 events" in out
    assert "0: 326, 1: 674" in out
    assert "INPUTS/Met/sumet" in out and "TARGETS/lt/l" in out
    assert "valid: the file matches the event file" in out


@pytest.mark.parametrize("flag", ["-ef", "--event_file"])
def test_cli_takes_spanets_spelling_of_the_event_file_flag(reference_dir, capsys, flag):
    """SPANet writes -ef/--event_file; -ef used to read as -e f (event file 'f', the YAML a stray
    argument)."""
    event_file = reference_dir / "semi_leptonic_ttH.yaml"
    code = main([str(reference_dir / "example.h5"), flag, str(event_file)])
    assert code == 0
    assert "valid: the file matches the event file" in capsys.readouterr().out


def test_cli_json_holds_structure_summary_and_problems(reference_dir, capsys):
    event_file = reference_dir / "semi_leptonic_ttH.yaml"
    code = main([str(reference_dir / "example.h5"), "-e", str(event_file), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["valid"] is True
    assert document["num_events"] == 1000
    assert {"path": "INPUTS/Momenta/MASK", "depth": 3, "kind": "dataset", "dtype": "bool",
            "shape": [1000, 19]} in document["structure"]
    assert document["summary"]["classifications"]["EVENT/signal"]["class_counts"] == {"0": 326, "1": 674}
    assert {"level": "info", "where": "TARGETS/lt/l", "message": "not used by the event file (ignored)"} in (
        document["problems"])


def test_cli_exits_1_and_lists_the_errors_of_a_broken_file(tmp_path, capsys):
    datasets = good_datasets()
    datasets["TARGETS/t/b"] = np.array([0, 1, 3, -1, 2, 0])
    (tmp_path / "event.yaml").write_text(EVENT_FILE)
    path = write_h5(tmp_path / "broken.h5", datasets)
    assert main([str(path), "-e", str(tmp_path / "event.yaml"), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert [p["where"] for p in document["problems"] if p["level"] == "error"] == ["TARGETS/t/b"]


@pytest.mark.parametrize("kind", ["missing", "truncated", "not-hdf5", "bad-event-file", "missing-event-file"])
def test_cli_exits_2_with_one_line_for_unreadable_input(tmp_path, generated_tth, capsys, kind):
    h5 = generated_tth / "example.h5"
    event_file = generated_tth / "semi_leptonic_ttH.yaml"
    if kind == "missing":
        h5 = tmp_path / "absent.h5"
    elif kind == "truncated":
        h5 = _truncated_copy(tmp_path)
    elif kind == "not-hdf5":
        h5 = tmp_path / "notes.h5"
        h5.write_text("hello\n")
    elif kind == "bad-event-file":
        event_file = tmp_path / "event.yaml"
        event_file.write_text("INPUTS: [\n")
    else:
        event_file = tmp_path / "absent.yaml"
    assert main([str(h5), "--event-file", str(event_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("spanet-inspect: error: ")


def test_cli_does_not_import_torch(generated_tth):
    code = ("import sys; from spanet_lite.cli.inspect import main; "
            f"rc = main([{str(generated_tth / 'example.h5')!r}, '-e', "
            f"{str(generated_tth / 'semi_leptonic_ttH.yaml')!r}, '--json']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with h5py.File(generated_tth / "example.h5", "r") as file:
        objects_mean = file["INPUTS/Momenta/MASK"][:].sum(axis=1).mean()
    summary = json.loads(result.stdout)["summary"]
    assert math.isclose(summary["inputs"]["Momenta"]["objects_mean"], objects_mean)


def test_a_global_inputs_mask_is_checked_as_the_reader_uses_it(build, tmp_path, spec):
    """INPUTS/<global>/MASK sets SPANet's num_vectors (limit_to_num_jets, balance_jets and
    spanet-test's table rows), but the validator called it 'not used by the event file
    (ignored)' and never checked it: a (N, 1) MASK was a ValueError traceback in the reader."""
    good = build({"INPUTS/Met/MASK": np.array([1, 0, 1, 1, 1, 1], dtype=bool)})
    assert good.ok and not [p for p in good.problems if p.where == "INPUTS/Met/MASK"]
    two_d = only_error(build({"INPUTS/Met/MASK": np.ones((6, 1), dtype=bool)}))
    assert (two_d.where, two_d.code) == ("INPUTS/Met/MASK", "shape")
    short = only_error(build({"INPUTS/Met/MASK": np.ones(5, dtype=bool)}))
    assert (short.where, short.code) == ("INPUTS/Met/MASK", "events")
    text = only_error(build({"INPUTS/Met/MASK": np.array([b"y"] * 6)}))
    assert (text.where, text.code) == ("INPUTS/Met/MASK", "dtype")


def test_a_dataset_without_a_shape_is_a_shape_error_and_a_line_of_the_tree(build, tmp_path, capsys):
    """A dataset with HDF5's null dataspace (h5py.Empty) has no shape at all: as a feature it was
    a TypeError traceback in spanet-inspect, -test, -predict and -train, and anywhere in the file
    it broke spanet-inspect's tree."""
    problem = only_error(build({"INPUTS/Jets/pt": h5py.Empty("f4")}))
    assert (problem.where, problem.code) == ("INPUTS/Jets/pt", "shape")
    assert problem.message.endswith("got an empty dataset without a shape (HDF5's null dataspace)")
    path = write_h5(tmp_path / "note.h5", {**good_datasets(), "INFO/note": h5py.Empty("f4")})
    assert main([str(path)]) == 0
    assert "|---note :: float32 : no shape\n" in capsys.readouterr().out
    assert main([str(path), "--json"]) == 0
    entry = next(e for e in json.loads(capsys.readouterr().out)["structure"] if e["path"] == "INFO/note")
    assert entry["shape"] is None


@pytest.mark.parametrize("link", ["soft", "hard"])
def test_a_link_back_to_an_enclosing_group_is_shown_once_not_followed_forever(tmp_path, spec, capsys, link):
    """The tree follows links (a linked dataset is listed where the link is), and a link to a
    group that holds it (``INFO/back -> /``) was followed until Python's RecursionError, a
    traceback in spanet-inspect."""
    path = write_h5(tmp_path / "loop.h5", good_datasets())
    with h5py.File(path, "r+") as file:
        file["INFO/back"] = h5py.SoftLink("/") if link == "soft" else file["/"]
    (tmp_path / "event.yaml").write_text(EVENT_FILE)
    assert main([str(path), "-e", str(tmp_path / "event.yaml")]) == 0
    out = capsys.readouterr().out
    assert "|---back :: (link to an enclosing group, not followed)\n" in out
    assert main([str(path), "--json"]) == 0
    structure = json.loads(capsys.readouterr().out)["structure"]
    assert {"path": "INFO/back", "depth": 2, "kind": "loop"} in structure
