"""The Python API checks what the command line checks: a notebook caller is protected too.

A threshold outside [0, 1], an unknown decoding mode or a batch size below 1 is one
InputError line naming the keyword (``threshold``, ``mode``, ``batch_size``); the CLI names
its flag (``--threshold``) with the same words. The output rule (never replace an existing
file without ``overwrite=True``, never an input or a run's checkpoint) holds for
``write_predictions``, ``evaluate_file`` and ``export_onnx`` themselves, their lines naming the
keyword (``json_file``), the command's naming its flag (``--json``) or, for a positional, its
role (``output``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _evaluation_helpers import TTBAR_YAML, make_run_dir, write_ttbar_file

from spanet_lite.assignment.decoding import decode
from spanet_lite.cli import export as export_cli
from spanet_lite.cli import predict as predict_cli
from spanet_lite.cli import test as test_cli
from spanet_lite.config.event_file import parse_event_spec
from spanet_lite.config.masses import MassConstraint
from spanet_lite.config.options_validation import check_batch_size
from spanet_lite.errors import InputError
from spanet_lite.evaluation.evaluate import MAX_LINES, check_lines, evaluate_file, json_ready
from spanet_lite.evaluation.export import export_onnx
from spanet_lite.evaluation.predict import write_predictions
from spanet_lite.evaluation.run import Run, load_run


@pytest.fixture(scope="module")
def ttbar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ttbar_api")
    data = write_ttbar_file(folder / "events.h5", num_events=40)
    return make_run_dir(folder / "run", TTBAR_YAML, data), data


@pytest.fixture(scope="module")
def run(ttbar: tuple[Path, Path]) -> Run:
    return load_run(ttbar[0])


REFUSED_EXISTING = ("expected a path that does not exist yet (pass --overwrite, from Python overwrite=True, "
                    "to replace it), got an existing file")
"""The output rule's line for an existing file, after the path and the name."""

BAD_SETTINGS = [
    ({"threshold": 7.5}, "threshold: expected a probability in [0, 1], got 7.5"),
    ({"threshold": float("nan")}, "threshold: expected a probability in [0, 1], got nan"),
    ({"batch_size": 0}, "batch_size: expected a batch size of at least 1, got 0"),
    ({"batch_size": 2.5}, "batch_size: expected an integer, got 2.5 (a number)"),
    ({"mode": "gredy"}, "mode: expected one of greedy, exact, got 'gredy' (did you mean 'greedy'?)"),
]


@pytest.mark.parametrize(
    ("settings", "line"), BAD_SETTINGS, ids=["threshold", "nan", "batch_size", "fraction", "mode"]
)
def test_every_prediction_and_evaluation_entry_point_refuses_bad_settings_in_one_line(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, settings: dict, line: str
) -> None:
    _, data = ttbar
    out = tmp_path / "out.h5"
    calls = {
        "run.predict(file)": lambda: run.predict(data, **settings),
        "run.predict(arrays)": lambda: run.predict(
            {"Jets": np.zeros((3, 8, 5), np.float32)}, {"Jets": np.ones((3, 8), bool)}, **settings
        ),
        "run.evaluate": lambda: run.evaluate(data, **settings),
        "evaluate_file": lambda: evaluate_file(run, data, **settings),
        "write_predictions": lambda: write_predictions(run, data, out, **settings),
    }
    for name, call in calls.items():
        with pytest.raises(InputError) as error:
            call()
        assert str(error.value) == line, name
    assert not out.exists()


def test_decode_refuses_a_mode_it_does_not_know_instead_of_decoding_exactly() -> None:
    spec = parse_event_spec(TTBAR_YAML)
    assignments = {p: torch.zeros(1, 6, 6, 6) for p in spec.particle_names}
    with pytest.raises(InputError, match=r"^mode: expected one of greedy, exact, got 'optimal'$"):
        decode(assignments, spec, mode="optimal")


@pytest.mark.parametrize(("flag", "named", "keyword", "value", "expected"), [
    ("--threshold", "--threshold", "threshold", 7.5, "a probability in [0, 1], got 7.5"),
    ("-bs", "-bs/--batch_size", "batch_size", 0, "a batch size of at least 1, got 0"),
    ("--batch-size", "-bs/--batch_size", "batch_size", 0, "a batch size of at least 1, got 0"),
])
def test_the_cli_and_the_api_say_the_same_words_the_cli_naming_its_flag_and_exiting_2(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    flag: str, named: str, keyword: str, value: float, expected: str,
) -> None:
    """A flag SPANet has is named as SPANet spells it (-bs/--batch_size), whichever alias was typed."""
    run_dir, data = ttbar
    out = tmp_path / "out.h5"
    with pytest.raises(InputError, match=f"^{re.escape(keyword)}: expected {re.escape(expected)}$"):
        write_predictions(run, data, out, **{keyword: value})
    assert predict_cli.main([str(run_dir), str(data), str(out), flag, str(value)]) == 2
    assert capsys.readouterr().err == f"spanet-predict: error: {named}: expected {expected}\n"
    assert test_cli.main([str(run_dir), "-tf", str(data), flag, str(value)]) == 2
    assert capsys.readouterr().err == f"spanet-test: error: {named}: expected {expected}\n"
    assert not out.exists()


def test_evaluate_file_takes_the_threshold_and_mode_without_touching_the_run_options(
    ttbar: tuple[Path, Path], run: Run
) -> None:
    _, data = ttbar
    before = (run.options.detection_threshold, run.options.decoding)
    metrics = evaluate_file(run, data, threshold=0.25, mode="exact").metrics
    assert metrics["decoding"] == "exact"
    assert metrics["with_detection"]["threshold"] == 0.25
    assert (run.options.detection_threshold, run.options.decoding) == before


def test_write_predictions_replaces_an_existing_file_only_with_overwrite(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path
) -> None:
    _, data = ttbar
    mine = tmp_path / "mine.h5"
    mine.write_bytes(b"not predictions")
    with pytest.raises(InputError, match=r"mine\.h5: output_path: .*pass --overwrite.*got an existing file"):
        write_predictions(run, data, mine)
    assert mine.read_bytes() == b"not predictions"
    assert write_predictions(run, data, mine, overwrite=True) == 40
    assert mine.read_bytes() != b"not predictions"


def test_write_predictions_never_writes_over_its_input_or_the_run_checkpoint(
    ttbar: tuple[Path, Path], run: Run
) -> None:
    run_dir, data = ttbar
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    kept = {path: path.read_bytes() for path in (data, checkpoint)}
    for target in kept:
        with pytest.raises(InputError, match=f"got the input {target}$"):
            write_predictions(run, data, target, overwrite=True)
    assert {path: path.read_bytes() for path in kept} == kept


def test_write_predictions_names_output_path_and_spanet_predict_its_output(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, data = ttbar
    monkeypatch.chdir(tmp_path)
    Path("OUT.h5").write_bytes(b"mine")
    with pytest.raises(InputError) as error:
        write_predictions(run, data, "OUT.h5")
    assert str(error.value) == f"OUT.h5: output_path: {REFUSED_EXISTING}"
    assert predict_cli.main([str(run_dir), str(data), "OUT.h5"]) == 2
    assert capsys.readouterr().err == f"spanet-predict: error: OUT.h5: output: {REFUSED_EXISTING}\n"
    assert Path("OUT.h5").read_bytes() == b"mine"


def test_evaluate_file_names_its_keywords_and_spanet_test_its_flags(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, data = ttbar
    numbers, plots = tmp_path / "numbers.json", tmp_path / "plots"
    numbers.write_text("{}")
    plots.write_text("a file")
    refused = [  # (keyword, its flag, the path, what the line says after the name)
        ("json_file", "--json", numbers, REFUSED_EXISTING),
        ("plots", "--plots", plots, "expected a folder for the files, got an existing file"),
    ]
    for keyword, flag, path, rest in refused:
        with pytest.raises(InputError) as error:
            evaluate_file(run, data, **{keyword: path})
        assert str(error.value) == f"{path}: {keyword}: {rest}"
        assert test_cli.main([str(run_dir), "-tf", str(data), flag, str(path)]) == 2
        assert capsys.readouterr().err == f"spanet-test: error: {path}: {flag}: {rest}\n"
    assert numbers.read_text() == "{}" and plots.read_text() == "a file"


def test_evaluate_file_writes_json_and_plots_by_the_output_rule(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path
) -> None:
    _, data = ttbar
    numbers = tmp_path / "numbers.json"
    numbers.write_text("{}")
    with pytest.raises(InputError) as error:
        evaluate_file(run, data, json_file=numbers)
    assert str(error.value) == f"{numbers}: json_file: {REFUSED_EXISTING}"
    assert numbers.read_text() == "{}"
    with pytest.raises(InputError, match=f"got the input {data}$"):
        evaluate_file(run, data, json_file=data, overwrite=True)
    evaluation = evaluate_file(run, data, json_file=numbers, plots=tmp_path / "plots", overwrite=True)
    written = json.loads(numbers.read_text())
    assert written["event_purity"] == pytest.approx(evaluation.metrics["event_purity"])
    assert evaluation.plots and all(p.parent == tmp_path / "plots" and p.is_file() for p in evaluation.plots)


def test_export_onnx_replaces_an_existing_model_or_decoder_only_with_overwrite(
    run: Run, tmp_path: Path
) -> None:
    model, decoder = tmp_path / "model.onnx", tmp_path / "onnx_decoder.py"
    model.write_bytes(b"mine")
    with pytest.raises(InputError) as error:
        export_onnx(run, model)
    assert str(error.value) == f"{model}: path: {REFUSED_EXISTING}"
    assert model.read_bytes() == b"mine"
    decoder.write_text("# mine\n")
    with pytest.raises(InputError) as error:
        export_onnx(run, tmp_path / "other.onnx", copy_decoder=True)
    assert str(error.value) == f"{decoder}: copy_decoder: {REFUSED_EXISTING}"
    assert decoder.read_text() == "# mine\n" and not (tmp_path / "other.onnx").exists()


def test_spanet_export_names_its_output_by_role_even_for_a_file_called_model_onnx(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """The positional's metavar is ``model.onnx``; naming the refusal by it read
    ``model.onnx: model.onnx: ...`` for the file most people write."""
    run_dir, _ = ttbar
    monkeypatch.chdir(tmp_path)
    Path("model.onnx").write_bytes(b"mine")
    assert export_cli.main([str(run_dir), "model.onnx"]) == 2
    assert capsys.readouterr().err == f"spanet-export: error: model.onnx: output: {REFUSED_EXISTING}\n"
    Path("onnx_decoder.py").write_text("# mine\n")
    assert export_cli.main([str(run_dir), "other.onnx", "--copy-decoder"]) == 2
    line = f"onnx_decoder.py: --copy-decoder: {REFUSED_EXISTING}"
    assert capsys.readouterr().err == f"spanet-export: error: {line}\n"
    with pytest.raises(InputError) as error:
        export_onnx(run, "model.onnx")
    assert str(error.value) == f"model.onnx: path: {REFUSED_EXISTING}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "onnx_decoder.py"]


def test_export_onnx_names_its_opset_keyword_and_spanet_export_its_flag(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = ttbar
    with pytest.raises(InputError) as error:
        export_onnx(run, tmp_path / "model.onnx", opset=13)
    assert str(error.value) == "opset: expected an ONNX opset from 14 to 20, got 13"
    assert export_cli.main([str(run_dir), str(tmp_path / "model.onnx"), "--opset", "13"]) == 2
    line = "--opset: expected an ONNX opset from 14 to 20, got 13"
    assert capsys.readouterr().err == f"spanet-export: error: {line}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call", ["write_predictions", "evaluate_file", "export_onnx"])
def test_a_run_folder_where_a_loaded_run_is_expected_says_to_load_it(
    ttbar: tuple[Path, Path], tmp_path: Path, call: str
) -> None:
    """The functions behind the commands take ``load_run``'s result: the folder name a command
    line takes is one line saying so, not ``'str' object has no attribute 'settings'``."""
    run_dir, data = ttbar
    calls = {
        "write_predictions": lambda: write_predictions(str(run_dir), data, tmp_path / "out.h5"),
        "evaluate_file": lambda: evaluate_file(str(run_dir), data),
        "export_onnx": lambda: export_onnx(str(run_dir), tmp_path / "model.onnx"),
    }
    with pytest.raises(InputError) as error:
        calls[call]()
    assert str(error.value) == (
        f"run: expected a loaded run (spanet_lite.load_run(RUN_DIR)), got a str ({str(run_dir)!r})"
    )
    assert not list(tmp_path.iterdir())


TOPS = [MassConstraint(top, ("q1", "q2", "b"), 173.0, 15.0) for top in ("t1", "t2")]


def test_run_evaluate_passes_evaluate_files_keywords_through_and_no_masses_skips_the_baseline(
    ttbar: tuple[Path, Path], run: Run
) -> None:
    """``masses=[]`` skips the chi-square baseline (most of the time of a small evaluation);
    ``masses=`` and ``lines=`` mean what they mean for ``evaluate_file`` and ``spanet-test``."""
    _, data = ttbar
    metrics = run.evaluate(data, masses=TOPS, lines=3)
    same = evaluate_file(run, data, masses=TOPS, lines=3).metrics
    assert json_ready(metrics) == json_ready(same)  # nan as None, so that equal means equal
    assert metrics["baseline"]["chi_square"]["used"] is True
    skipped = run.evaluate(data, masses=[])["baseline"]["chi_square"]
    assert skipped == {"used": False, "note": "chi-square baseline skipped: no masses given"}


def test_reprs_say_what_is_held_in_one_short_line(ttbar: tuple[Path, Path], run: Run) -> None:
    """A notebook cell ending in ``run`` or ``predictions`` shows a line, not 50 KB of arrays."""
    run_dir, data = ttbar
    assert repr(run) == (f"Run({str(run_dir)!r}, checkpoint last.ckpt; inputs Jets (10 x 5); "
                         "particles t1, t2; on cpu)")
    predictions = run.predict(data, threshold=0.5)
    assert repr(predictions) == ("Predictions(40 events; assignments: t1, t2 (40, 3); "
                                 "reported: t1, t2 (40, 3))")
    evaluation = evaluate_file(run, data, masses=TOPS)
    purity = evaluation.metrics["event_purity"]
    chi = evaluation.metrics["baseline"]["chi_square"]["event_purity"]
    assert repr(evaluation) == (f"Evaluation(40 events of events.h5; event_purity {purity:.4g}; "
                                f"chi-square event_purity {chi:.4g}; .metrics for every number)")


def test_a_repr_gives_each_key_its_own_shape_when_they_differ() -> None:
    from spanet_lite.evaluation.inference import Predictions

    predictions = Predictions(
        assignments={"lt": np.zeros((5, 1)), "ht": np.zeros((5, 3)), "h": np.zeros((5, 2))},
        detection_probabilities={"lt": np.zeros(5), "ht": np.zeros(5), "h": np.zeros(5)},
        regressions={"EVENT/neutrino_pz": np.zeros(5)},
    )
    assert repr(predictions) == ("Predictions(5 events; assignments: lt (5, 1), ht (5, 3), h (5, 2); "
                                 "regressions: EVENT/neutrino_pz (5,))")


BAD_TABLE_KEYWORDS = [
    ({"lines": -1}, "lines: expected a number of rows from 0 to 100, got -1"),
    ({"lines": 10**9}, "lines: expected a number of rows from 0 to 100, got 1000000000"),
    ({"lines": 1.5}, "lines: expected an integer, got 1.5 (a number)"),
    ({"lines": True}, "lines: expected an integer, got true (a boolean)"),
    ({"masses": ["t1"]}, "masses: expected a list of MassConstraint (spanet_lite.config.masses), e.g. from "
                         "load_masses_file, got 't1' at index 0"),
    ({"masses": "t1"}, "masses: expected a list of MassConstraint (spanet_lite.config.masses), e.g. from "
                       "load_masses_file, got 't1'"),
    ({"masses": [MassConstraint("W", ("q1", "q2"), 80.4, 10.0)]},
     "masses: expected constraints on particles and products of the event file: t1 (q1 q2 b), "
     "t2 (q1 q2 b), got m(W: q1 q2) = 80.4 +- 10"),
    ({"masses": [MassConstraint("t1", ("q1", "q1"), 80.4, 10.0)]},
     "masses: expected constraints on particles and products of the event file: t1 (q1 q2 b), "
     "t2 (q1 q2 b), got m(t1: q1 q1) = 80.4 +- 10"),
    ({"masses": [*TOPS, MassConstraint("t1", ("q1", "q2"), 80.4, -10.0)]},
     "masses: expected 'mass +- width' with a positive width, e.g. 172.5 +- 20, "
     "got m(t1: q1 q2) = 80.4 +- -10 at index 2"),
    ({"masses": [MassConstraint("t1", ("q1", "q2"), float("nan"), 10.0)]},
     "masses: expected 'mass +- width' with a positive width, e.g. 172.5 +- 20, "
     "got m(t1: q1 q2) = nan +- 10 at index 0"),
    ({"masses": [MassConstraint("t1", ("q1", "q2"), "80.4", 10.0)]},  # type: ignore[arg-type]
     "masses: expected 'mass +- width' with a positive width, e.g. 172.5 +- 20, "
     "got m(t1: q1 q2) = '80.4' +- 10 at index 0"),
]


@pytest.mark.parametrize(("keywords", "line"), BAD_TABLE_KEYWORDS,
                         ids=["negative", "huge", "float", "bool", "names", "string", "unknown-particle",
                              "repeated-product", "negative-width", "nan-mass", "string-mass"])
def test_evaluate_refuses_bad_lines_and_masses_in_one_line_before_any_work(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, keywords: dict, line: str
) -> None:
    """``lines=-1`` was taken silently, ``lines=1.5`` a TypeError, ``lines=10**9`` built rows past memory
    and ``masses=["t1"]`` an AttributeError from deep inside; checked before the file is read or
    an output written."""
    _, data = ttbar
    numbers = tmp_path / "numbers.json"
    for name, call in {
        "evaluate_file": lambda: evaluate_file(run, data, json_file=numbers, **keywords),
        "run.evaluate": lambda: run.evaluate(data, **keywords),
    }.items():
        with pytest.raises(InputError) as error:
            call()
        assert str(error.value) == line, name
    assert not numbers.exists()


def test_a_mass_constraint_from_python_obeys_a_masses_files_rule_in_the_same_words(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One rule for the numbers (``masses.valid_value``): a width of 0 is refused from a
    ``--masses`` file, naming the file and line, and from ``masses=``, naming the keyword."""
    run_dir, data = ttbar
    expected = "expected 'mass +- width' with a positive width, e.g. 172.5 +- 20"
    masses = tmp_path / "masses.yaml"
    masses.write_text("t1: {all: 173 +- 0}\n")
    assert test_cli.main([str(run_dir), "-tf", str(data), "--masses", str(masses)]) == 2
    line = f"spanet-test: error: {masses}: t1.all (line 1): {expected}, got '173 +- 0'\n"
    assert capsys.readouterr().err == line
    with pytest.raises(InputError) as error:
        run.evaluate(data, masses=[MassConstraint("t1", ("q1", "q2", "b"), 173.0, 0.0)])
    assert str(error.value) == f"masses: {expected}, got m(t1: q1 q2 b) = 173 +- 0 at index 0"


def test_lines_the_api_and_the_cli_say_the_same_words_the_cli_naming_its_flag(
    ttbar: tuple[Path, Path], run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    """One rule, check_lines: the API names its keyword, spanet-test its flag (exit 2)."""
    run_dir, data = ttbar
    expected = "expected a number of rows from 0 to 100, got -1"
    with pytest.raises(InputError, match=f"^lines: {expected}$"):
        evaluate_file(run, data, lines=-1)
    assert test_cli.main([str(run_dir), "-tf", str(data), "--lines", "-1"]) == 2
    assert capsys.readouterr().err == f"spanet-test: error: -l/--lines: {expected}\n"


def test_batch_size_follows_the_integer_rule_of_every_option_so_a_whole_float_counts(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path
) -> None:
    """``batch_size=16.0`` (SPANet's ``16.0``, a notebook's ``1e3``) is 16 events per pass, as
    for every integer setting; the predictions do not depend on how the events were batched."""
    _, data = ttbar
    whole = run.predict(data, batch_size=16)
    for size in (16.0, np.int64(16), 7.0):
        again = run.predict(data, batch_size=size)
        for name, indices in whole.assignments.items():
            np.testing.assert_array_equal(again.assignments[name], indices)
    assert check_batch_size(16.0, "batch_size") == 16 and type(check_batch_size(16.0, "batch_size")) is int
    assert write_predictions(run, data, tmp_path / "out.h5", batch_size=7.0) == 40


def test_lines_follows_the_integer_rule_of_every_option_so_a_whole_float_counts(
    ttbar: tuple[Path, Path], run: Run
) -> None:
    """SPANet writes integers as ``6.0``; ``lines=2.0`` means what ``lines=2`` means, as for
    every other integer setting (``as_integer``), and so does a numpy integer."""
    _, data = ttbar
    tables = json_ready(run.evaluate(data, masses=[], lines=2)["spanet_tables"])
    assert [row["Jet Limit"][:2] for row in tables["*t"]] == ["==", "==", ">=", "Fu"]
    assert json_ready(run.evaluate(data, masses=[], lines=2.0)["spanet_tables"]) == tables
    assert json_ready(run.evaluate(data, masses=[], lines=np.int64(2))["spanet_tables"]) == tables


def test_check_lines_returns_the_int_the_tables_use() -> None:
    assert check_lines(3.0) == 3 and type(check_lines(3.0)) is int
    assert check_lines(0) == 0 and check_lines(MAX_LINES) == MAX_LINES
    with pytest.raises(InputError, match=r"^-l/--lines: expected a number of rows from 0 to 100, got 101$"):
        check_lines(MAX_LINES + 1, "-l/--lines")


def test_a_missing_onnx_package_names_the_export_not_the_command(
    ttbar: tuple[Path, Path], run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = ttbar
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    line = "ONNX export: expected the onnx package (pip install 'spanet-lite[onnx]'), got not installed"
    with pytest.raises(InputError) as error:
        export_onnx(run, tmp_path / "model.onnx")
    assert str(error.value) == line
    assert export_cli.main([str(run_dir), str(tmp_path / "model.onnx")]) == 2
    assert capsys.readouterr().err == f"spanet-export: error: {line}\n"
    assert list(tmp_path.iterdir()) == []
