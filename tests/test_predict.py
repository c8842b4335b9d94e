"""spanet-predict, spanet-test and the Python API on tiny run directories."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _evaluation_helpers import (
    TTBAR_YAML,
    TWO_INPUTS_YAML,
    make_run_dir,
    write_ttbar_file,
    write_two_input_file,
)

import spanet_lite
from spanet_lite.cli import inspect as inspect_cli
from spanet_lite.cli import predict as predict_cli
from spanet_lite.cli import test as test_cli
from spanet_lite.config import parse_event_spec
from spanet_lite.dataset import schema
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.evaluation.run import load_run


@pytest.fixture(scope="module")
def ttbar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ttbar")
    data = write_ttbar_file(folder / "events.h5", num_events=150)
    run_dir = make_run_dir(folder / "run", TTBAR_YAML, data, training_file="/nonexistent/train.h5")
    return run_dir, data


def test_a_prediction_file_of_the_training_data_is_refused_without_a_warning_first(tmp_path, capsys):
    """Its INPUTS are the training file's, so the overlap check would warn before the refusal:
    one line is what the user needs, the refusal."""
    data = write_ttbar_file(tmp_path / "train.h5", num_events=40)
    run_dir = make_run_dir(tmp_path / "run", TTBAR_YAML, data, training_file=str(data))
    out = tmp_path / "predicted.h5"
    assert predict_cli.main([str(run_dir), str(data), str(out)]) == 0
    capsys.readouterr()
    assert test_cli.main([str(run_dir), "-tf", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"spanet-test: error: {out}: expected a labelled test file")
    assert err.count("\n") == 1


def test_predict_output_is_a_valid_spanet_file_that_spanet_test_refuses_to_score(ttbar, tmp_path, capsys):
    """The output has SPANet's layout (spanet-inspect reads it as a truth file), but its TARGETS
    are predictions: scoring it would compare the network with itself, so spanet-test, Run.evaluate
    and evaluate_file refuse it in one line naming the file."""
    run_dir, data = ttbar
    out = tmp_path / "predicted.h5"
    arguments = [str(run_dir), str(data), str(out), "--threshold", "0", "--batch-size", "64"]
    assert predict_cli.main(arguments) == 0
    assert inspect_cli.main([str(out), "--event-file", str(run_dir / "event_file.yaml")]) == 0
    capsys.readouterr()
    report = tmp_path / "self.json"
    assert test_cli.main([str(run_dir), "-tf", str(out), "--json", str(report)]) == 2
    line = (f"{out}: expected a labelled test file, got a prediction file written by spanet-predict "
            f"(run {run_dir}): its TARGETS are predictions, not the truth; pass the labelled file it "
            "was made from")
    assert capsys.readouterr().err == f"spanet-test: error: {line}\n"  # no training-file warning first
    assert not report.exists()
    with pytest.raises(InputError, match="its TARGETS are predictions"):
        load_run(run_dir).evaluate(out)
    with h5py.File(out) as file, h5py.File(data) as source:
        np.testing.assert_array_equal(file["INPUTS/Jets/pt"][:], source["INPUTS/Jets/pt"][:])
        weights = file["SPANET_LITE/WEIGHTS/EVENT/weight"][:]
        np.testing.assert_array_equal(weights, source["WEIGHTS/EVENT/weight"][:])
        probability = file["TARGETS/t1/assignment_probability"][:]
        assert ((probability > 0) & (probability <= 1)).all()
        assert file["TARGETS/t2/detection_probability"].shape == (150,)


def test_default_threshold_reports_only_detected_particles(ttbar, tmp_path):
    run_dir, data = ttbar
    run = load_run(run_dir)
    predictions = run.predict(data, threshold=0.5)
    assert predictions.reported is not None
    for particle in ("t1", "t2"):
        detected = predictions.detection_probabilities[particle] >= 0.5
        reported = (predictions.reported[particle] >= 0).all(axis=1)
        assert not (reported & ~detected).any()
        # SPANet's best assignment is there for every event, detected or not
        assert (predictions.assignments[particle] >= 0).all()
        assert (predictions.assignment_probabilities[particle] > 0).all()


def test_predict_on_arrays_matches_predict_on_the_file(ttbar):
    run_dir, data = ttbar
    run = spanet_lite.load_run(run_dir)
    from_file = run.predict(data, batch_size=32, threshold=0.0)
    with h5py.File(data) as file:
        columns = [file[f"INPUTS/Jets/{f}"][:] for f in ("mass", "pt", "eta", "phi", "btag")]
        features = {"Jets": np.stack(columns, axis=-1)}
        masks = {"Jets": file["INPUTS/Jets/MASK"][:]}
    from_arrays = run.predict(features, masks, batch_size=1000, threshold=0.0)
    for particle in ("t1", "t2"):
        np.testing.assert_array_equal(from_arrays.assignments[particle], from_file.assignments[particle])
        np.testing.assert_allclose(
            from_arrays.detection_probabilities[particle],
            from_file.detection_probabilities[particle],
            atol=1e-6,
        )


def test_associated_products_are_written_as_indices_inside_their_own_input(tmp_path):
    data = write_two_input_file(tmp_path / "two.h5")
    run = load_run(make_run_dir(tmp_path / "run", TWO_INPUTS_YAML, data))
    out = tmp_path / "out.h5"
    from spanet_lite.evaluation.predict import write_predictions

    write_predictions(run, data, out, threshold=0.0)
    predictions = run.predict(data, threshold=0.0)
    with h5py.File(out) as file:
        lepton = file["SPANET_LITE/TARGETS/lt/l"][:]
        assert ((lepton >= 0) & (lepton < 2)).all()  # counts inside Leptons, not the combined space
        combined = file["TARGETS/lt/l"][:]  # SPANet's: the combined space, Leptons after the Jets
        np.testing.assert_array_equal(combined, predictions.assignments["lt"][:, 1])
        assert (combined >= file["INPUTS/Jets/MASK"].shape[1]).all()
        jets = file["SPANET_LITE/TARGETS/lt/b"][:]
    np.testing.assert_array_equal(jets, predictions.assignments["lt"][:, 0])  # Jets come first: same index


def test_a_sample_without_any_lepton_is_predicted_with_a_warning_but_not_trained_on(tmp_path):
    """A model with a Leptons input applied to, say, an all-hadronic control sample: every event's
    lepton slots are padding. Nothing to learn from (an error for training and spanet-inspect),
    but fair to predict on: the particle that needs a lepton comes out unassigned."""
    run_dir = make_run_dir(tmp_path / "run", TWO_INPUTS_YAML, write_two_input_file(tmp_path / "train.h5"))
    data = write_two_input_file(tmp_path / "hadronic.h5", seed=3)
    with h5py.File(data, "r+") as file:
        file["INPUTS/Leptons/MASK"][...] = False
    out = tmp_path / "out.h5"
    with pytest.warns(SpanetWarning, match=r"hadronic\.h5: INPUTS/Leptons/MASK: no real object \(MASK"):
        assert predict_cli.main([str(run_dir), str(out), "-tf", str(data)]) == 0
    with h5py.File(out) as file:
        assert (file["TARGETS/lt/l"][:] == -1).all()
        assert (file["TARGETS/lt/assignment_probability"][:] == 0).all()
        assert (file["TARGETS/ht/b"][:] >= 0).all()  # the all-jet particle is assigned as ever
    report = schema.validate_file(data, parse_event_spec(TWO_INPUTS_YAML))
    assert [p.level for p in report.problems if p.code == "empty_mask"] == ["error"]


def test_an_input_without_any_slot_is_predicted_as_one_without_any_object(tmp_path):
    """The same control sample written with no lepton slots at all, ``INPUTS/Leptons/*`` of shape
    (N, 0), and a file or arrays with no object slot whatever: spanet-predict and run.predict
    ended in a RuntimeError traceback inside the network (a reshape of 0 elements with -1, a
    float lookup table, a gather from nothing). They are predicted as padding-only inputs are."""
    run_dir = make_run_dir(tmp_path / "run", TWO_INPUTS_YAML, write_two_input_file(tmp_path / "train.h5"))
    padded = write_two_input_file(tmp_path / "padded.h5", seed=3)
    data = tmp_path / "no_slots.h5"
    with h5py.File(padded, "r+") as source, h5py.File(data, "w") as file:
        source["INPUTS/Leptons/MASK"][...] = False

        def copy(name: str, item: object) -> None:
            if isinstance(item, h5py.Dataset):
                file[name] = item[:, :0] if name.startswith("INPUTS/Leptons/") else item[:]

        source.visititems(copy)
    outputs = []
    for name, path in (("padded", padded), ("no_slots", data)):
        out = tmp_path / f"{name}_out.h5"
        with pytest.warns(SpanetWarning, match=r"INPUTS/Leptons/MASK: no real object"):
            assert predict_cli.main([str(run_dir), str(out), "-tf", str(path)]) == 0
        with h5py.File(out) as file:
            outputs.append({p: file[f"TARGETS/{p}"][:] for p in ("lt/b", "lt/l", "ht/b", "ht/q1", "ht/q2")})
    for key, values in outputs[0].items():
        np.testing.assert_array_equal(outputs[1][key], values)  # the Jets slots come first: same indices
    run = load_run(run_dir)
    empty = np.zeros((3, 0, 2), np.float32)
    nothing = run.predict({"Jets": empty, "Leptons": empty},
                          {"Jets": np.zeros((3, 0), bool), "Leptons": np.zeros((3, 0), bool)})
    assert (nothing.assignments["ht"] == -1).all() and (nothing.assignment_probabilities["ht"] == 0).all()


def test_predict_refuses_to_overwrite_its_input(ttbar, tmp_path, capsys):
    run_dir, data = ttbar
    copy = tmp_path / "input.h5"
    shutil.copyfile(data, copy)
    before = copy.read_bytes()
    assert predict_cli.main([str(run_dir), str(copy), str(tmp_path / "." / "input.h5")]) == 2
    assert "different from the command's inputs" in capsys.readouterr().err
    assert copy.read_bytes() == before


def test_the_event_file_given_with_ef_is_an_input_too(ttbar, tmp_path, capsys):
    run_dir, data = ttbar
    event_file = shutil.copyfile(run_dir / "event_file.yaml", tmp_path / "event.yaml")
    before = event_file.read_bytes()
    for argv in (
        [str(run_dir), str(data), str(event_file), "-ef", str(event_file), "--overwrite"],
        [str(run_dir), "-tf", str(data), "-ef", str(event_file), "--json", str(event_file), "--overwrite"],
    ):
        command = predict_cli if "--json" not in argv else test_cli
        assert command.main(argv) == 2
        assert "expected an output different from the command's inputs" in capsys.readouterr().err
        assert event_file.read_bytes() == before


def test_predict_on_a_file_without_the_inputs_fails_in_one_line_and_writes_nothing(ttbar, tmp_path, capsys):
    run_dir, _ = ttbar
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as file:
        file["INPUTS/Jets/MASK"] = np.ones((3, 4), dtype=bool)
    out = tmp_path / "out.h5"
    assert predict_cli.main([str(run_dir), str(bad), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "INPUTS/Jets/mass" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary file left behind


def test_predict_checks_feature_values_as_training_does_and_needs_no_targets(ttbar, tmp_path, capsys):
    """The same schema check as training, inputs only: a NaN on a real jet is refused in one
    line, while a file holding nothing but INPUTS is fine."""
    run_dir, data = ttbar
    inputs_only, with_nan = tmp_path / "inputs.h5", tmp_path / "nan.h5"
    with h5py.File(data) as source, h5py.File(inputs_only, "w") as a, h5py.File(with_nan, "w") as b:
        source.copy(source["INPUTS"], a, name="INPUTS")
        source.copy(source["INPUTS"], b, name="INPUTS")
        first_real = int(np.argmax(source["INPUTS/Jets/MASK"][0]))
        b["INPUTS/Jets/pt"][0, first_real] = np.nan
    assert predict_cli.main([str(run_dir), str(inputs_only), str(tmp_path / "ok.h5")]) == 0
    capsys.readouterr()
    out = tmp_path / "out.h5"
    assert predict_cli.main([str(run_dir), str(with_nan), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "INPUTS/Jets/pt" in err and "event 0" in err
    assert not out.exists()


def test_predict_checks_the_weights_it_copies_as_data_but_not_the_rules_of_the_loss(ttbar, tmp_path, capsys):
    """Predict copies the event weights into SPANET_LITE/WEIGHTS unread: a weight stored as
    strings, or one of another length than the events, came out as it was, beside predictions it
    did not belong to. The weights are now checked as a dataset, as training checks them (type,
    shape, events, finite), in one line; the rules on their sum are the loss's, so zero or
    negative weights are copied as they are."""
    run_dir, data = ttbar
    bad = {
        "strings": (np.array([b"1.0"] * 150), "expected a float type, got |S3"),
        "short": (np.ones(149, np.float32), "expected 150 events like INPUTS/Jets/MASK, got 149"),
        "two columns": (np.ones((150, 2), np.float32),
                        "expected a 1-D dataset (N_events,), got shape (150, 2)"),
        "nan": (np.where(np.arange(150) == 7, np.nan, 1.0), "expected finite weights, got NaN/inf in 1 event "
                                                           "(first: event 7)"),
    }
    for what, (weights, message) in bad.items():
        path, out = tmp_path / f"{what}.h5", tmp_path / f"{what}_out.h5"
        shutil.copy(data, path)
        with h5py.File(path, "r+") as file:
            del file["WEIGHTS/EVENT/weight"]
            file["WEIGHTS/EVENT/weight"] = weights
        assert predict_cli.main([str(run_dir), str(path), str(out)]) == 2, what
        assert capsys.readouterr().err == f"spanet-predict: error: {path}: WEIGHTS/EVENT/weight: {message}\n"
        assert not out.exists()
    signs = np.where(np.arange(150) % 2 == 0, -1.0, 0.0)  # training refuses these: a sum below zero
    path, out = tmp_path / "signs.h5", tmp_path / "signs_out.h5"
    shutil.copy(data, path)
    with h5py.File(path, "r+") as file:
        file["WEIGHTS/EVENT/weight"][:] = signs
    assert predict_cli.main([str(run_dir), str(path), str(out)]) == 0
    assert capsys.readouterr().err.split() == ["150", "events", "predicted", "into", str(out)]  # no word
    # about the loss either
    with h5py.File(out) as file:
        np.testing.assert_array_equal(file["SPANET_LITE/WEIGHTS/EVENT/weight"][()], signs)


def test_a_dataset_where_an_input_or_particle_group_belongs_is_named_as_such(tmp_path, capsys):
    """A dataset standing where INPUTS/<input> should be was reported as that input's MASK "got
    nothing", and a dataset named TARGETS as each particle's group "got nothing": the user went
    looking for missing data rather than a misplaced dataset."""
    spec = parse_event_spec(TTBAR_YAML)
    path = write_ttbar_file(tmp_path / "events.h5", num_events=20)
    with h5py.File(path, "r+") as file:
        del file["INPUTS/Jets"], file["TARGETS"]
        file["INPUTS/Jets"] = np.zeros(20)
        file["TARGETS"] = np.zeros(20)
    errors = [(p.where, p.message) for p in schema.validate_file(path, spec).errors]
    assert errors == [
        ("INPUTS/Jets",
         "expected a group with the SEQUENTIAL input Jets (5 features and a MASK), got a dataset"),
        ("TARGETS/t1", "expected a group with the targets of particle t1 (q1, q2, b), got nothing "
                       "(TARGETS is a dataset)"),
        ("TARGETS/t2", "expected a group with the targets of particle t2 (q1, q2, b), got nothing "
                       "(TARGETS is a dataset)"),
    ]
    for weights in ("WEIGHTS", "WEIGHTS/EVENT"):  # the default weights are optional: this was "no weights"
        blocked = write_ttbar_file(tmp_path / "weights.h5", num_events=20)
        with h5py.File(blocked, "r+") as file:
            del file[weights]
            file[weights] = np.ones(20)
        assert [(p.where, p.message) for p in schema.validate_file(blocked, spec).errors] == [
            ("WEIGHTS/EVENT/weight", 'expected a float weight per event, named by the option '
             f'event_weight_dataset ("" for none), got nothing ({weights} is a dataset)')]
    with h5py.File(path, "r+") as file:
        del file["TARGETS"]
        file["TARGETS"] = h5py.SoftLink("/LABELS")
    assert [p.message for p in schema.validate_file(path, spec).errors][1].endswith(
        "got nothing")  # a dangling link above a group is still nothing below it


def test_a_link_to_nothing_above_the_optional_weights_is_an_error_not_no_weights(ttbar, tmp_path, capsys):
    """A soft or external link at WEIGHTS (or WEIGHTS/EVENT) that leads nowhere hid the optional
    weights below it: the check said nothing, and spanet-test scored every event with weight 1,
    in memory and from the file alike (found next to the dataset at WEIGHTS, 083c668). It is
    named now, as a dangling link at the weights themselves is."""
    run_dir, data = ttbar
    spec = parse_event_spec(TTBAR_YAML)
    gone = tmp_path / "gone.h5"
    links = [("WEIGHTS", h5py.SoftLink("/STASH"), "a soft link to nothing (/STASH)"),
             ("WEIGHTS/EVENT", h5py.SoftLink("/STASH/EVENT"), "a soft link to nothing (/STASH/EVENT)"),
             ("WEIGHTS", h5py.ExternalLink(str(gone), "/W"), f"an external link to nothing (/W in {gone})")]
    for place, link, named in links:
        path = tmp_path / "linked.h5"
        shutil.copy(data, path)
        with h5py.File(path, "r+") as file:
            del file[place]
            file[place] = link
        assert [(p.where, p.message) for p in schema.validate_file(path, spec).errors] == [
            ("WEIGHTS/EVENT/weight", 'expected a float weight per event, named by the option '
             f'event_weight_dataset ("" for none), got nothing ({place} is {named})')]
        with h5py.File(path) as file, schema.in_memory(file, spec) as copy:
            assert copy is file, place  # left to the check, which names it
        assert test_cli.main([str(run_dir), "-tf", str(path)]) == 2
        assert "WEIGHTS/EVENT/weight: expected a float weight" in capsys.readouterr().err


def test_a_named_datatype_where_a_group_or_dataset_belongs_is_not_called_a_dataset(tmp_path):
    """A named datatype (``file["TARGETS/t1"] = np.dtype("i8")``) where a particle's group belongs
    was reported "got a dataset", and one where a feature belongs "got a group": both false, and
    the user looks for the wrong thing (found giving _missing_groups every kind of HDF5 object)."""
    spec = parse_event_spec(TTBAR_YAML)
    path = write_ttbar_file(tmp_path / "events.h5", num_events=20)
    with h5py.File(path, "r+") as file:
        del file["TARGETS/t1"], file["INPUTS/Jets/pt"], file["TARGETS/t2"]
        file["TARGETS/t1"] = np.dtype("i8")
        file["INPUTS/Jets/pt"] = np.dtype("f4")
        file["TARGETS/t2"] = np.dtype("i8")
    errors = [(p.where, p.message) for p in schema.validate_file(path, spec).errors]
    assert errors == [
        ("TARGETS/t1", "expected a group with the targets of particle t1 (q1, q2, b), got a named datatype"),
        ("TARGETS/t2", "expected a group with the targets of particle t2 (q1, q2, b), got a named datatype"),
        ("INPUTS/Jets/pt", "expected a dataset, got a named datatype"),
    ]
    with h5py.File(path, "r+") as file:
        del file["TARGETS"]
        file["TARGETS"] = np.dtype("i8")
    assert schema.validate_file(path, spec).errors[0].message.endswith(
        "got nothing (TARGETS is a named datatype)")


def _datasets(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path) as file:
        found: dict[str, np.ndarray] = {}
        file.visititems(lambda name, node: found.__setitem__(name, node[()])
                        if isinstance(node, h5py.Dataset) else None)
        return found


def test_predict_reads_a_compressed_file_once_and_writes_what_reading_it_twice_wrote(
    ttbar, tmp_path, monkeypatch, capsys
):
    """Predict checked a file's INPUTS (a full read) and then read them again to predict: a
    gzip file was decompressed twice, most of predict's host time (the part a GPU cannot
    shorten). A file whose INPUTS fit IN_MEMORY_BYTES is now decompressed once into
    memory; the prediction file is the same as from the file on disk, and so are the refusals."""
    run_dir, data = ttbar
    packed, nan, damaged = tmp_path / "packed.h5", tmp_path / "nan.h5", tmp_path / "damaged.h5"
    for path in (packed, nan, damaged):
        with h5py.File(data) as source, h5py.File(path, "w") as copy:
            for name, node in source["INPUTS/Jets"].items():
                copy.create_dataset(f"INPUTS/Jets/{name}", data=node[()], compression="gzip", chunks=(32, 10))
    with h5py.File(nan, "r+") as file:
        file["INPUTS/Jets/eta"][140, 0] = np.inf
    with h5py.File(damaged, "r+") as file:
        chunk = file["INPUTS/Jets/phi"].id.get_chunk_info(2)
    with damaged.open("r+b") as raw:
        raw.seek(chunk.byte_offset)
        raw.write(b"\xff" * chunk.size)
    copied: list[bool] = []
    copy_datasets = schema._copy_datasets

    def watched(*arguments):
        copy = copy_datasets(*arguments)
        copied.append(copy is not None)
        return copy

    monkeypatch.setattr(schema, "_copy_datasets", watched)
    outputs, errors = [], []
    for budget in (schema.IN_MEMORY_BYTES, 0):  # in memory, then from the file as before
        monkeypatch.setattr(schema, "IN_MEMORY_BYTES", budget)
        out = tmp_path / f"out_{budget}.h5"
        assert predict_cli.main([str(run_dir), str(packed), str(out), "--batch-size", "64"]) == 0
        outputs.append(_datasets(out))
        capsys.readouterr()
        for bad in (nan, damaged):
            assert predict_cli.main([str(run_dir), str(bad), str(tmp_path / "no.h5")]) == 2
            errors.append(capsys.readouterr().err)
    assert outputs[0].keys() == outputs[1].keys()
    for name, values in outputs[0].items():
        assert np.array_equal(values, outputs[1][name]), name
    assert errors[:2] == errors[2:] and all(e.count("\n") == 1 for e in errors)
    assert f"{nan}: INPUTS/Jets/eta: expected finite values" in errors[0]
    assert f"{damaged}: INPUTS/Jets/phi, events 64-95: expected data HDF5 can read" in errors[1]
    assert not (tmp_path / "no.h5").exists()
    assert copied == [True, True, False, False, False, False]  # in memory, unless damaged or told not to


def test_spanet_test_reads_a_compressed_file_once_and_scores_it_as_reading_it_twice_did(
    ttbar, tmp_path, monkeypatch, capsys
):
    """spanet-test, like predict, checked the whole file and then read it again to score it: a
    gzip file was decompressed twice. It is now read into memory once when it fits (INPUTS,
    TARGETS and weights); the numbers are those read from the file, and a prediction file is
    still refused before anything is read."""
    run_dir, data = ttbar
    packed = tmp_path / "packed.h5"
    with h5py.File(data) as source, h5py.File(packed, "w") as copy:
        def pack(name: str, node: object) -> None:
            if isinstance(node, h5py.Dataset):
                copy.create_dataset(name, data=node[()], compression="gzip")
        source.visititems(pack)
    copied: list[bool] = []
    copy_datasets = schema._copy_datasets

    def watched(*arguments):
        copy = copy_datasets(*arguments)
        copied.append(copy is not None and "TARGETS/t1/b" in copy)
        return copy

    monkeypatch.setattr(schema, "_copy_datasets", watched)
    reports = []
    for budget in (schema.IN_MEMORY_BYTES, 0):
        monkeypatch.setattr(schema, "IN_MEMORY_BYTES", budget)
        report = tmp_path / f"metrics_{budget}.json"
        assert test_cli.main([str(run_dir), "-tf", str(packed), "--json", str(report)]) == 0
        reports.append(json.loads(report.read_text()))
    assert copied == [True, False]  # in memory, targets included; then from the file as before
    assert reports[0]["num_events"] == 150 and reports[0] == reports[1]
    predicted = tmp_path / "predicted.h5"
    assert predict_cli.main([str(run_dir), str(data), str(predicted)]) == 0
    capsys.readouterr()
    copied.clear()
    assert test_cli.main([str(run_dir), "-tf", str(predicted)]) == 2
    assert "a prediction file written by spanet-predict" in capsys.readouterr().err and copied == []


def test_two_in_memory_copies_of_one_file_can_be_open_at_once(tmp_path):
    """Every copy had the name ``<file>#in-memory``, and HDF5 will not create a file under a name
    it holds open: ``run.predict`` on one file in two threads (or spanet-test's check beside
    predict's) failed with "unable to truncate a file which is already open", a traceback. Found
    running run.predict from two threads; here the two copies are nested, as the threads'
    overlap."""
    spec = parse_event_spec(TTBAR_YAML)
    path = write_ttbar_file(tmp_path / "events.h5", num_events=20)
    with (
        h5py.File(path) as first,
        h5py.File(path) as second,
        schema.in_memory(first, spec, inputs_only=True) as a,
        schema.in_memory(second, spec) as b,
    ):
        assert a is not first and b is not second and a.filename != b.filename
        np.testing.assert_array_equal(a["INPUTS/Jets/pt"][()], b["INPUTS/Jets/pt"][()])


def test_inputs_are_copied_to_memory_only_when_they_are_plain_numeric_datasets_that_fit(tmp_path):
    """Anything else is left to the check on the file itself, which names it as it always did."""
    spec = parse_event_spec(TTBAR_YAML)
    path = write_ttbar_file(tmp_path / "events.h5", num_events=20)
    with h5py.File(path) as file, schema.in_memory(file, spec, inputs_only=True) as copy:
        assert copy is not file and copy.driver == "core"
        assert np.array_equal(copy["INPUTS/Jets/pt"][()], file["INPUTS/Jets/pt"][()])
        assert "TARGETS" not in copy  # what predict reads: the INPUTS and the weights it copies out
        assert np.array_equal(copy["WEIGHTS/EVENT/weight"][()], file["WEIGHTS/EVENT/weight"][()])
    with h5py.File(path) as file, schema.in_memory(file, spec, event_weight_dataset="") as copy:
        assert sorted(copy) == ["INPUTS", "TARGETS"]  # what spanet-test reads, here without weights
        assert np.array_equal(copy["TARGETS/t1/b"][()], file["TARGETS/t1/b"][()])
    with h5py.File(path) as file, schema.in_memory(file, spec, inputs_only=True, budget=100) as copy:
        assert copy is file  # too large for the budget
    damaged = {
        "missing": lambda f: f.__delitem__("INPUTS/Jets/eta"),
        "a group": lambda f: (f.__delitem__("INPUTS/Jets/eta"), f.create_group("INPUTS/Jets/eta")),
        "strings": lambda f: (f.__delitem__("INPUTS/Jets/eta"),
                              f.create_dataset("INPUTS/Jets/eta", data=np.array([b"x"] * 20))),
        "weights linked to nothing": lambda f: (
            f.__delitem__("WEIGHTS/EVENT/weight"),
            f.__setitem__("WEIGHTS/EVENT/weight", h5py.SoftLink("/gone")),
        ),
        # the optional weights skipped as absent: the copy read as unweighted, where the file's
        # check says "got nothing (WEIGHTS is a dataset)" (spanet-test scored with weight 1, exit 0)
        "WEIGHTS a dataset": lambda f: (f.__delitem__("WEIGHTS"), f.__setitem__("WEIGHTS", np.ones(20))),
        "WEIGHTS/EVENT a dataset": lambda f: (
            f.__delitem__("WEIGHTS/EVENT"), f.__setitem__("WEIGHTS/EVENT", np.ones(20))),
    }
    for what, damage in damaged.items():
        with h5py.File(path, "r+") as file:
            damage(file)
        with h5py.File(path) as file, schema.in_memory(file, spec, inputs_only=True) as copy:
            assert copy is file, what
        path = write_ttbar_file(tmp_path / "events.h5", num_events=20)


def test_predict_names_an_input_dataset_without_a_shape_instead_of_a_traceback(ttbar, tmp_path, capsys):
    """An INPUTS dataset with HDF5's null dataspace (h5py.Empty) has no size: the in-memory copy
    multiplied its None size and spanet-predict died with a TypeError traceback. It is now left to
    the check on the file, which names it in one line, exit 2."""
    run_dir, data = ttbar
    empty = tmp_path / "empty.h5"
    shutil.copy(data, empty)
    with h5py.File(empty, "r+") as file:
        del file["INPUTS/Jets/eta"]
        file.create_dataset("INPUTS/Jets/eta", data=h5py.Empty("f4"))
    assert predict_cli.main([str(run_dir), str(empty), str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert err == (f"spanet-predict: error: {empty}: INPUTS/Jets/eta: expected a 2-D dataset "
                   "(N_events, max_objects), got an empty dataset without a shape (HDF5's null dataspace)\n")
    assert not (tmp_path / "out.h5").exists()


def test_predict_refuses_a_float64_feature_beyond_float32_as_it_refuses_inf(ttbar, tmp_path, capsys):
    """The network reads features as float32, where a float64 1e300 is inf: the check passed it
    as finite and spanet-predict wrote a NaN detection probability for the event, with numpy's
    two-line 'overflow encountered in cast' warning on stderr. A real object's value is now
    refused like an inf (one line, exit 2); a padded slot may still hold it, without a warning."""
    run_dir, data = ttbar
    real, padded = tmp_path / "real.h5", tmp_path / "padded.h5"
    for path in (real, padded):
        shutil.copy(data, path)
        with h5py.File(path, "r+") as file:
            mask = file["INPUTS/Jets/MASK"][()]
            values = file["INPUTS/Jets/eta"][()].astype(np.float64)
            values[~mask if path == padded else (0, 0)] = 1e300
            del file["INPUTS/Jets/eta"]
            file["INPUTS/Jets/eta"] = values
    assert mask[0, 0]
    assert predict_cli.main([str(run_dir), str(real), str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"spanet-predict: error: {real}: INPUTS/Jets/eta: expected finite values")
    assert err.count("\n") == 1 and not (tmp_path / "out.h5").exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert predict_cli.main([str(run_dir), str(padded), str(tmp_path / "out.h5")]) == 0
    assert not [w for w in caught if "overflow" in str(w.message)]
    with h5py.File(tmp_path / "out.h5") as file:
        assert np.isfinite(file["TARGETS/t1/detection_probability"][()]).all()


def test_predict_copies_inputs_reached_through_links_as_data(ttbar, tmp_path, capsys):
    """INPUTS were copied link for link: a feature that was a soft link to /STASH/eta became a
    dangling link in OUT.h5 (its target is outside INPUTS, so it was not copied) and an external
    one kept pointing at the other file; the prediction file lost the feature (predicting it again
    said 'got nothing'). The links are now resolved into data; a link loop under INPUTS is one line."""
    run_dir, data = ttbar
    linked, loop = tmp_path / "linked.h5", tmp_path / "loop.h5"
    shutil.copy(data, linked)
    with h5py.File(linked, "r+") as file, h5py.File(tmp_path / "phi.h5", "w") as other:
        other["phi"] = file["INPUTS/Jets/phi"][()]
        file.move("INPUTS/Jets/eta", "STASH/eta")
        file["INPUTS/Jets/eta"] = h5py.SoftLink("/STASH/eta")
        del file["INPUTS/Jets/phi"]
        file["INPUTS/Jets/phi"] = h5py.ExternalLink(str(tmp_path / "phi.h5"), "/phi")
    out = tmp_path / "out.h5"
    assert predict_cli.main([str(run_dir), str(linked), str(out)]) == 0
    with h5py.File(out) as file, h5py.File(data) as original:
        for name in ("eta", "phi"):
            assert isinstance(file["INPUTS/Jets"].get(name, getlink=True), h5py.HardLink), name
            assert np.array_equal(file[f"INPUTS/Jets/{name}"][()], original[f"INPUTS/Jets/{name}"][()])
    assert predict_cli.main([str(run_dir), str(out), str(tmp_path / "again.h5")]) == 0
    shutil.copy(data, loop)
    with h5py.File(loop, "r+") as file:
        file["INPUTS/Jets/extra"] = h5py.SoftLink("/INPUTS/Jets/extra")
    capsys.readouterr()
    assert predict_cli.main([str(run_dir), str(loop), str(tmp_path / "no.h5")]) == 2
    assert capsys.readouterr().err == (f"spanet-predict: error: {loop}: INPUTS: expected a readable HDF5 "
                                       "file, got Special link traversal failed (too many links)\n")
    assert not (tmp_path / "no.h5").exists()


def virtual_copy(data: Path, folder: Path) -> Path:
    """``data`` split into two part files and joined again as HDF5 virtual datasets in
    ``folder/joined.h5`` (how files are often concatenated without copying), the parts named
    relative to it, as h5py writes them when given bare names."""
    folder.mkdir()
    with h5py.File(data) as source:
        names: list[str] = []
        source.visititems(lambda name, node: names.append(name) if isinstance(node, h5py.Dataset) else None)
        n = len(source[names[0]])
        halves = (("part1.h5", slice(0, n // 2)), ("part2.h5", slice(n // 2, n)))
        for part, rows in halves:
            with h5py.File(folder / part, "w") as file:
                for name in names:
                    file[name] = source[name][rows]
        cwd = Path.cwd()
        os.chdir(folder)  # bare part names, relative to joined.h5
        try:
            with h5py.File("joined.h5", "w") as joined:
                for name in names:
                    layout = h5py.VirtualLayout(shape=source[name].shape, dtype=source[name].dtype)
                    for part, rows in halves:
                        shape = (rows.stop - rows.start, *source[name].shape[1:])
                        layout[rows] = h5py.VirtualSource(part, name, shape=shape)
                    joined.create_virtual_dataset(name, layout, fillvalue=-7)
        finally:
            os.chdir(cwd)
    return folder / "joined.h5"


def test_predict_copies_virtual_inputs_as_data(ttbar, tmp_path):
    """An input joined from part files as HDF5 virtual datasets was copied as its mapping: OUT.h5's
    INPUTS named the parts relative to the input's folder, so read from its own folder (or once the
    parts moved) every feature was the fill value, without a word. SPANet's predict copies the
    numbers; so does this one now, the event weights included."""
    run_dir, data = ttbar
    joined = virtual_copy(data, tmp_path / "parts")
    out = tmp_path / "out" / "predicted.h5"
    assert predict_cli.main([str(run_dir), str(joined), str(out)]) == 0
    shutil.rmtree(tmp_path / "parts")
    with h5py.File(out) as file, h5py.File(data) as original:
        copied = {"INPUTS/Jets/pt": "INPUTS/Jets/pt", "INPUTS/Jets/MASK": "INPUTS/Jets/MASK",
                  "SPANET_LITE/WEIGHTS/EVENT/weight": "WEIGHTS/EVENT/weight"}
        for name, source in copied.items():
            assert not file[name].is_virtual, name
            np.testing.assert_array_equal(file[name][()], original[source][()], err_msg=name)


def test_predict_never_overwrites_a_part_file_of_virtual_inputs(ttbar, tmp_path, capsys):
    """The part files an input's virtual datasets read are inputs as much as an external link's
    file: OUT.h5 naming one with --overwrite replaced the user's data with predictions."""
    run_dir, data = ttbar
    joined = virtual_copy(data, tmp_path / "parts")
    part = tmp_path / "parts" / "part1.h5"
    before = part.read_bytes()
    assert predict_cli.main([str(run_dir), str(joined), str(part), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err == (f"spanet-predict: error: {part}: output: expected an output different from the "
                   f"command's inputs, got the input {part}\n")
    assert part.read_bytes() == before


def test_predict_never_overwrites_a_file_the_inputs_link_to(ttbar, tmp_path, capsys):
    """A dataset under INPUTS (or the weights) reached through an external link is read from
    another file, but only IN.h5 itself was guarded: OUT.h5 naming that file with --overwrite
    replaced it, and the input lost its feature. It is now refused like IN.h5, in one line."""
    run_dir, data = ttbar
    linked, target = tmp_path / "linked.h5", tmp_path / "phi.h5"
    shutil.copy(data, linked)
    with h5py.File(linked, "r+") as file, h5py.File(target, "w") as other:
        other["phi"] = file["INPUTS/Jets/phi"][()]
        del file["INPUTS/Jets/phi"]
        file["INPUTS/Jets/phi"] = h5py.ExternalLink(str(target), "/phi")
    before = target.read_bytes()
    assert predict_cli.main([str(run_dir), str(linked), str(target), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # named as the command spells it, as the input itself would be
    assert err.startswith(f"spanet-predict: error: {target}: output: expected an output different "
                          f"from the command's inputs, got the input {target}")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_spanet_test_prints_tables_and_writes_json_without_the_training_file(ttbar, tmp_path, capsys):
    run_dir, data = ttbar
    report = tmp_path / "metrics.json"
    assert test_cli.main([str(run_dir), "-tf", str(data), "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "Purity by number of jets" in printed and "==6" in printed and ">=8" in printed
    metrics = json.loads(report.read_text())
    assert 0.0 <= metrics["event_purity"] <= 1.0
    with h5py.File(data) as file:
        total = float(file["WEIGHTS/EVENT/weight"][:].sum())
    assert metrics["sum_of_weights"] == pytest.approx(total, rel=1e-6)
    rows = metrics["assignment_tables"]["by_jets"]
    assert sum(rows[r]["proportion"] for r in ("==6", "==7", ">=8")) == pytest.approx(1.0)


def test_evaluate_api_returns_the_same_numbers_as_the_cli(ttbar, tmp_path):
    run_dir, data = ttbar
    metrics = spanet_lite.load_run(run_dir).evaluate(data)
    report = tmp_path / "m.json"
    test_cli.main([str(run_dir), "-tf", str(data), "--json", str(report)])
    assert json.loads(report.read_text())["event_purity"] == pytest.approx(metrics["event_purity"])


def test_load_run_prefers_best_checkpoint_and_reports_missing_pieces(ttbar, tmp_path):
    run_dir, _ = ttbar
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert load_run(copy).checkpoint.name == "last.ckpt"
    state = torch.load(copy / "checkpoints" / "last.ckpt", weights_only=False)
    state["state_dict"] = {
        k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in state["state_dict"].items()
    }
    torch.save(state, copy / "checkpoints" / "best.ckpt")
    run = load_run(copy)
    assert run.checkpoint.name == "best.ckpt"
    assert all((p == 0).all() for p in run.network.parameters())
    (copy / "statistics.json").unlink()
    with pytest.raises(InputError, match=r"statistics\.json"):
        load_run(copy)
    with pytest.raises(InputError, match="no such directory"):
        load_run(tmp_path / "missing")
    # a fast_dev_run's RunResult.run_dir is None: a TypeError traceback from Path(None) before
    with pytest.raises(InputError, match=r"^run_dir: expected a run directory path, got nothing \(a fast"):
        load_run(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^checkpoint: expected a checkpoint path, got 5 \(a number\)$"):
        load_run(copy, checkpoint=5)  # type: ignore[arg-type]


def test_spanet_test_without_a_test_file_is_a_one_line_error(ttbar, capsys):
    run_dir, _ = ttbar
    assert test_cli.main([str(run_dir)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("spanet-test: error: -tf/--test_file: expected a labelled HDF5 file")


def test_fp16_rounds_the_weights_to_float16_on_the_cpu_too_as_spanet_does(ttbar, tmp_path):
    from spanet_lite.evaluation.trained import round_to_float16

    run_dir, data = ttbar
    plain, half = tmp_path / "plain.h5", tmp_path / "half.h5"
    assert predict_cli.main([str(run_dir), str(data), str(plain)]) == 0
    assert predict_cli.main([str(run_dir), str(data), str(half), "-fp16"]) == 0
    run = load_run(run_dir)
    round_to_float16(run.network)
    for tensor in (*run.network.parameters(), *run.network.buffers()):
        if tensor.is_floating_point():
            assert torch.equal(tensor, tensor.half().float())
    expected = run.predict(data).assignment_probabilities["t1"]
    key = "TARGETS/t1/assignment_probability"
    with h5py.File(plain) as p, h5py.File(half) as h:
        rounded, unrounded = h[key][:], p[key][:]
    np.testing.assert_allclose(rounded, expected, rtol=1e-5)
    assert np.abs(rounded / unrounded - 1).max() > 1e-4  # float16 keeps ~3 significant digits


def test_a_spanet_run_directory_is_named_as_such_in_one_line(tmp_path, capsys):
    spanet_run = tmp_path / "spanet_output" / "version_0"
    (spanet_run / "checkpoints").mkdir(parents=True)
    (spanet_run / "event.yaml").write_text("INPUTS: {}\n")
    (spanet_run / "options.json").write_text("{}\n")
    (spanet_run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert test_cli.main([str(spanet_run)]) == 2
    line = capsys.readouterr().err.strip()
    assert line == (
        f"spanet-test: error: {spanet_run}: expected a run directory written by spanet-train (SPANet's runs "
        "are not read here), got a SPANet run directory (event.yaml, no event_file.yaml)"
    )


def _damage(run: Path, what: str) -> None:
    if what == "statistics":
        (run / "statistics.json").write_text('{"x": 1}\n')
    elif what == "options":
        (run / "options.json").write_text("[1]\n")
    elif what == "event file":
        text = (run / "event_file.yaml").read_text()
        (run / "event_file.yaml").write_text(text + "CLASSIFICATIONS:\n  EVENT: [signal]\n")
    elif what == "edited":
        options = json.loads((run / "options.json").read_text())
        (run / "options.json").write_text(json.dumps({**options, "hidden_dim": 0}))
    elif what == "width":
        options = json.loads((run / "options.json").read_text())
        (run / "options.json").write_text(json.dumps({**options, "hidden_dim": 2 * options["hidden_dim"]}))


@pytest.mark.parametrize(("what", "message"), [
    ("statistics", "statistics.json: expected a file written by spanet-train, got DatasetStatistics."),
    ("options", "options.json: expected a JSON object written by spanet-train, got list"),
    ("event file", ": expected event_file.yaml, options.json and statistics.json of one run, got "),
    ("edited", "options.json: hidden_dim: expected a width of at least 1, got 0 (a number)"),
    ("width", "best.ckpt: state_dict: expected weights matching the run's event file and options, got size "
              "mismatch for "),
])
def test_a_run_directory_with_a_damaged_file_is_one_line(ttbar, tmp_path, capsys, what, message):
    run_dir, data = ttbar
    copy = shutil.copytree(run_dir, tmp_path / "run")
    shutil.copyfile(copy / "checkpoints" / "last.ckpt", copy / "checkpoints" / "best.ckpt")
    _damage(copy, what)
    assert test_cli.main([str(copy), "-tf", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


@pytest.mark.parametrize(
    ("folder", "got"),
    [
        ("runs", "a folder of runs: pass one of them (version_0, version_1, version_10)"),
        ("empty", "a folder without event_file.yaml, options.json or checkpoints/"),
    ],
)
def test_a_folder_that_is_not_a_run_is_named_as_such_by_test_and_predict(
    ttbar, tmp_path, capsys, folder, got
):
    """The folder above version_N (or any other) is not a run: said so, rather than
    'event_file.yaml: no such file'."""
    run_dir, data = ttbar
    given = tmp_path / "logs" / "ttbar"
    given.mkdir(parents=True)
    if folder == "runs":
        for version in ("version_10", "version_0", "version_1"):
            shutil.copytree(run_dir, given / version, ignore=shutil.ignore_patterns("*.ckpt"))
    expected = f"{given}: expected a run directory written by spanet-train, got {got}"
    assert test_cli.main([str(given), "-tf", str(data)]) == 2
    assert capsys.readouterr().err.strip() == f"spanet-test: error: {expected}"
    assert predict_cli.main([str(given), str(data), str(tmp_path / "out.h5")]) == 2
    assert capsys.readouterr().err.strip() == f"spanet-predict: error: {expected}"
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("given", ["data", "checkpoint"])
def test_a_run_dir_that_is_a_file_is_named_a_file_by_test_predict_and_export(
    ttbar, tmp_path, capsys, given
):
    """``spanet-predict IN.h5 IN.h5 OUT.h5`` (the run left out) once said "no such directory" of
    a file that exists; a file of a run names the run's folder."""
    from spanet_lite.cli import export as export_cli

    run_dir, data = ttbar
    if given == "data":
        path, got = data, "a file"
    else:
        path = run_dir / "checkpoints" / "last.ckpt"
        got = f"a file of the run directory {run_dir.absolute()}: pass the folder"
    expected = f"{path}: expected a run directory written by spanet-train, got {got}"
    assert predict_cli.main([str(path), str(data), str(tmp_path / "out.h5")]) == 2
    assert capsys.readouterr().err.strip() == f"spanet-predict: error: {expected}"
    assert test_cli.main([str(path), "-tf", str(data)]) == 2
    assert capsys.readouterr().err.strip() == f"spanet-test: error: {expected}"
    assert export_cli.main([str(path), str(tmp_path / "model.onnx")]) == 2
    assert capsys.readouterr().err.strip() == f"spanet-export: error: {expected}"
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_lost_only_its_event_file_names_that_file(ttbar, tmp_path, capsys):
    run_dir, data = ttbar
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "event_file.yaml").unlink()
    assert test_cli.main([str(copy), "-tf", str(data)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"spanet-test: error: {copy / 'event_file.yaml'}: expected the event file copied by spanet-train, "
        "got no such file"
    )


def test_an_event_file_given_with_ef_that_is_not_text_is_one_line(ttbar, capsys):
    run_dir, data = ttbar
    assert test_cli.main([str(run_dir), "-tf", str(data), "-ef", str(data)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"{data}: expected a UTF-8 text event file (YAML), got binary data"
    )


def _flip_a_weight_byte(checkpoint: Path) -> str:
    """Flip one byte inside the largest tensor record of a checkpoint (a zip archive); its name."""
    import struct
    import zipfile

    with zipfile.ZipFile(checkpoint) as archive:
        record = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(checkpoint.read_bytes())
    header = record.header_offset  # a local file header: 30 bytes, then the name and the extra field
    name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
    data[header + 30 + name_length + extra_length + record.file_size // 2] ^= 0x10
    checkpoint.write_bytes(bytes(data))
    return record.filename.split("/", 1)[1]


def test_a_checkpoint_with_a_flipped_byte_is_one_line_not_other_weights(ttbar, tmp_path, capsys):
    """torch.load would load it: the zip archive's own checksums catch it."""
    run_dir, data = ttbar
    copy = shutil.copytree(run_dir, tmp_path / "run")
    checkpoint = copy / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["state_dict"]  # undamaged, it loads
    record = _flip_a_weight_byte(checkpoint)
    assert torch.load(checkpoint, weights_only=True)["state_dict"]  # and damaged, torch loads it too
    assert test_cli.main([str(copy), "-tf", str(data), "-ckpt", str(checkpoint)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"spanet-test: error: {checkpoint}: expected a readable torch checkpoint, got a damaged file "
        f"(its record {record} fails its stored checksum)"
    )


def test_a_checkpoint_cut_short_is_one_line_saying_so(ttbar, tmp_path, capsys):
    run_dir, data = ttbar
    checkpoint = tmp_path / "cut.ckpt"
    whole = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    checkpoint.write_bytes(whole[: len(whole) // 2])  # a copy that did not finish
    assert test_cli.main([str(run_dir), "-tf", str(data), "-ckpt", str(checkpoint)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"spanet-test: error: {checkpoint}: expected a readable torch checkpoint, got a truncated file "
        "(a zip archive without its end)"
    )


def test_an_empty_checkpoint_is_called_empty(ttbar, tmp_path, capsys):
    """A copy to a full disk leaves an empty file: torch's loader said only 'got EOFError'."""
    run_dir, data = ttbar
    checkpoint = tmp_path / "empty.ckpt"
    checkpoint.touch()
    output = tmp_path / "out.h5"
    assert predict_cli.main([str(run_dir), str(data), str(output), "-ckpt", str(checkpoint)]) == 2
    assert capsys.readouterr().err == (
        f"spanet-predict: error: {checkpoint}: expected a readable torch checkpoint, got an empty file\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.ckpt"]


class _Planted:
    """Unpickling this creates a file: what a hostile checkpoint could do with any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_holding_python_objects_is_refused_without_running_them(ttbar, tmp_path, capsys):
    run_dir, data = ttbar
    marker = tmp_path / "ran"
    planted = tmp_path / "planted.ckpt"
    torch.save({"state_dict": {}, "payload": _Planted(marker)}, planted)
    assert test_cli.main([str(run_dir), "-tf", str(data), "-ckpt", str(planted)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"{planted}: expected a readable torch checkpoint of tensors and plain values, got other Python "
        "objects, which are not loaded (they could run code)"
    )
    assert not marker.exists()


@pytest.mark.parametrize("threads", ["0", "100000"])
def test_threads_beyond_the_machine_are_one_line_and_write_nothing(ttbar, tmp_path, capsys, threads):
    """100,000 OpenMP threads crashed the process and left a partial output behind."""
    run_dir, data = ttbar
    assert predict_cli.main([str(run_dir), str(data), str(tmp_path / "out.h5"), "--threads", threads]) == 2
    assert capsys.readouterr().err.strip() == (
        f"spanet-predict: error: --threads: expected from 1 to {os.cpu_count()}, the CPUs of this machine, "
        f"got {threads}"
    )
    assert list(tmp_path.iterdir()) == []


def _set_first_weight(checkpoint: Path, value: float, out: Path) -> str:
    """Copy ``checkpoint`` to ``out`` with its first network tensor set to ``value``; its name."""
    state = torch.load(checkpoint, weights_only=True)
    weights = state["state_dict"]
    name = next(k for k, v in weights.items() if k.startswith("network.") and v.is_floating_point())
    weights[name] = torch.full_like(weights[name], value)
    torch.save(state, out)
    return name


def test_a_checkpoint_with_nan_weights_is_one_line(ttbar, tmp_path, capsys):
    """A diverged run's weights would make every prediction NaN, silently."""
    run_dir, data = ttbar
    diverged = tmp_path / "diverged.ckpt"
    name = _set_first_weight(run_dir / "checkpoints" / "last.ckpt", float("nan"), diverged)
    assert predict_cli.main([str(run_dir), str(data), str(tmp_path / "out.h5"), "-ckpt", str(diverged)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"spanet-predict: error: {diverged}: state_dict {name}: expected finite weights, got NaN or infinity"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diverged.ckpt"]


def test_a_file_that_is_no_checkpoint_is_named_as_such_not_as_a_risk(ttbar, capsys):
    run_dir, data = ttbar
    assert test_cli.main([str(run_dir), "-tf", str(data), "-ckpt", str(data)]) == 2
    assert capsys.readouterr().err == (
        f"spanet-test: error: {data}: expected a readable torch checkpoint, got a file that is not one\n"
    )


def test_fp16_on_weights_beyond_float16s_range_is_one_line(ttbar, tmp_path, capsys):
    """A feature mean of 10^5 (raw MeV, say) would become infinite and every prediction NaN."""
    run_dir, data = ttbar
    copy = shutil.copytree(run_dir, tmp_path / "run")
    name = _set_first_weight(copy / "checkpoints" / "last.ckpt", 1.0e5, copy / "checkpoints" / "last.ckpt")
    assert predict_cli.main([str(copy), str(data), str(tmp_path / "out.h5"), "-fp16"]) == 2
    assert capsys.readouterr().err == (
        f"spanet-predict: error: -fp16: expected values float16 can hold in {name[len('network.'):]}, "
        "got one beyond 65,504\n"
    )
    assert not (tmp_path / "out.h5").exists()
    from spanet_lite.evaluation.trained import round_to_float16

    run = load_run(copy)  # from Python the line names the argument, not the command's flag
    with pytest.raises(InputError) as raised:
        round_to_float16(run.network)
    assert str(raised.value) == (
        f"network: expected values float16 can hold in {name[len('network.'):]}, got one beyond 65,504"
    )


def test_load_run_leaves_torchs_random_numbers_as_they_were(ttbar):
    """Building the network drew its throw-away initial weights from torch's global generator, so
    a notebook's torch.manual_seed(0) gave other random numbers after a load_run than before."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load_run(ttbar[0])
    assert torch.equal(torch.rand(3), expected)
