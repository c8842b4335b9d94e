"""spanet-test warns in one line when the test file is the run's training file: the same path, or
the same events under another name (a copy, the same generator seed, a prediction file of it)."""

from __future__ import annotations

import shutil
import warnings

import h5py
import numpy as np
import pytest
from _evaluation_helpers import TTBAR_YAML, make_run_dir, write_ttbar_file

from spanet_lite.cli import test as test_cli
from spanet_lite.errors import SpanetWarning
from spanet_lite.evaluation.overlap import first_events, same_events, training_file_overlap
from spanet_lite.evaluation.run import load_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overlap")
    training = write_ttbar_file(folder / "train.h5", num_events=60, seed=1)
    run_dir = make_run_dir(folder / "run", TTBAR_YAML, training, training_file=str(training))
    return run_dir, training


def test_the_training_file_itself_is_named_in_one_warning(trained, tmp_path):
    run_dir, training = trained
    with pytest.warns(SpanetWarning) as record:
        assert test_cli.main([str(run_dir), "-tf", str(training), "--json", str(tmp_path / "m.json")]) == 0
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(f"{training}: is the run's training file; these scores are on training events")
    assert "\n" not in message


def test_a_copy_holds_the_same_events(trained, tmp_path):
    run_dir, training = trained
    copy = shutil.copyfile(training, tmp_path / "test.h5")
    assert training_file_overlap(training, copy) == "same events"
    with pytest.warns(SpanetWarning, match="holds the same events as the run's training file"):
        load_run(run_dir).evaluate(copy)


def test_a_broken_copy_of_the_training_file_gets_its_refusal_alone(trained, tmp_path, capsys):
    """The overlap warning came first, then the refusal: two lines for a file that is never
    scored. The warning now follows the file's check, so a refused file gets one line."""
    run_dir, training = trained
    broken = shutil.copyfile(training, tmp_path / "test.h5")
    with h5py.File(broken, "r+") as file:
        pt = file["INPUTS/Jets/pt"][()]
        del file["INPUTS/Jets/pt"]
        file["INPUTS/Jets/pt"] = pt[:-1]  # one event short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert test_cli.main([str(run_dir), "-tf", str(broken)]) == 2
    assert caught == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"spanet-test: error: {broken}: INPUTS/Jets/pt")


def test_independent_events_give_no_warning(trained, tmp_path):
    """pyproject turns every SpanetWarning into an error, so evaluating here proves there is none."""
    run_dir, training = trained
    other = write_ttbar_file(tmp_path / "test.h5", num_events=60, seed=2)
    assert training_file_overlap(training, other) is None
    assert not same_events(first_events(other), first_events(training))
    assert 0.0 <= load_run(run_dir).evaluate(other)["event_purity"] <= 1.0


def test_a_test_file_with_text_where_numbers_belong_is_not_the_training_file(trained, tmp_path):
    """The overlap check runs before the test file is validated: it must not fail on it (the
    validation then names the bad dataset)."""
    _, training = trained
    odd = shutil.copyfile(training, tmp_path / "text.h5")
    with h5py.File(odd, "r+") as file:
        shape = file["INPUTS/Jets/pt"].shape
        del file["INPUTS/Jets/pt"]
        file["INPUTS/Jets/pt"] = np.full(shape, b"abc")
    assert training_file_overlap(training, odd) is None


def test_masks_stored_as_integers_are_the_same_events_as_boolean_masks(trained, tmp_path):
    _, training = trained
    copy = shutil.copyfile(training, tmp_path / "uint8_masks.h5")
    with h5py.File(copy, "r+") as file:
        mask = file["INPUTS/Jets/MASK"][...]
        del file["INPUTS/Jets/MASK"]
        file["INPUTS/Jets/MASK"] = mask.astype(np.uint8)
    assert training_file_overlap(training, copy) == "same events"


def test_the_same_events_regenerated_with_last_bit_differences_are_still_the_same(trained, tmp_path):
    """The same generator seed on another machine can differ in a float's last bits."""
    _, training = trained
    nudged = shutil.copyfile(training, tmp_path / "regenerated.h5")
    with h5py.File(nudged, "r+") as file:
        pt = file["INPUTS/Jets/pt"]
        pt[...] = np.nextafter(pt[...], np.float32(np.inf))
    assert training_file_overlap(training, nudged) == "same events"
    with h5py.File(nudged, "r+") as file:
        file["INPUTS/Jets/pt"][0] = file["INPUTS/Jets/pt"][0] + 5.0  # one different event: not the same
    assert training_file_overlap(training, nudged) is None


def test_a_run_without_a_reachable_training_file_compares_nothing(tmp_path):
    other = write_ttbar_file(tmp_path / "test.h5", num_events=20)
    assert training_file_overlap("/nonexistent/train.h5", other) is None
    assert training_file_overlap("", other) is None
