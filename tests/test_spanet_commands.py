"""SPANet's command lines run unchanged and mean what they mean in SPANet: flags, the predict
file, the test tables, starting from another run's weights."""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.metadata
import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _evaluation_helpers import TTBAR, TTBAR_YAML, make_run_dir, write_ttbar_file
from _model_helpers import ttbar_yaml
from _train_helpers import network_weights, write_options

from spanet_lite.assignment.spanet_tables import spanet_tables
from spanet_lite.cli import predict as predict_cli
from spanet_lite.cli import test as test_cli
from spanet_lite.cli import train as train_cli
from spanet_lite.errors import InputError
from spanet_lite.evaluation.metrics import classification_metrics
from spanet_lite.training.run import train
from spanet_lite.training.weights import load_initial_weights, read_initial_weights

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- flags
def declared_scripts() -> dict[str, str]:
    """pyproject.toml's [project.scripts]: read with tomllib (Python 3.11+); on Python 3.10, which
    pyproject allows, the installed distribution's console_scripts, which pip wrote from it."""
    try:
        import tomllib
    except ModuleNotFoundError:
        entry_points = importlib.metadata.distribution("spanet-lite").entry_points
        return {e.name: e.value for e in entry_points if e.group == "console_scripts"}
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def console_script_parsers():
    for name, target in sorted(declared_scripts().items()):
        module = importlib.import_module(target.split(":")[0])
        yield name, module.build_parser()


def test_no_console_script_accepts_abbreviated_flags():
    parsers = list(console_script_parsers())
    assert {"spanet-train", "spanet-test", "spanet-predict", "spanet-export"} <= {n for n, _ in parsers}
    for name, parser in parsers:
        assert parser.allow_abbrev is False, name


def _subparsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


def test_no_console_script_reads_a_prefix_of_a_single_dash_flag_as_that_flag(capsys):
    """allow_abbrev=False turns off only the long prefixes (--epoch): argparse still read -c X as
    -cf X, -o X as -of X and spanet-test's -te as -tex, which the docs say is never accepted."""
    checked = 0
    for _name, top in console_script_parsers():
        for parser in _subparsers(top):
            flags = {flag for action in parser._actions for flag in action.option_strings}
            for flag in flags:
                if flag.startswith("--") or len(flag) < 3:
                    continue
                for prefix in (flag[:n] for n in range(2, len(flag))):
                    if prefix in flags:
                        continue
                    with pytest.raises(SystemExit):
                        parser.parse_args([prefix, "x"])
                    checked += 1
    capsys.readouterr()
    assert checked > 20
    # a one-letter flag with its value attached is still read, as SPANet reads it
    assert train_cli.build_parser().parse_args(["-e5", "-p10"]).epochs == 5


def test_a_cut_single_dash_flag_is_refused_on_an_argparse_that_no_longer_lists_longer_flags(
    monkeypatch, capsys,
):
    """Python 3.12.7+ and 3.13 (CPython gh-104860) leave the longer flags out of
    _get_option_tuples when allow_abbrev is False: -fp1 (a cut -fp16) was then read as -f -p 1
    (full events, 1 % of the training file) without a word."""
    stock = argparse.ArgumentParser._get_option_tuples

    def newer_argparse(self, option_string):
        found = stock(self, option_string)
        if self.allow_abbrev or option_string[1] in self.prefix_chars:
            return found
        return [match for match in found if match[1] == option_string[:2]]

    monkeypatch.setattr(argparse.ArgumentParser, "_get_option_tuples", newer_argparse)
    parser = train_cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["-fp1"])
    assert "-fp16" in capsys.readouterr().err
    assert parser.parse_args(["-e5", "-p10", "-f"]).limit_dataset == 10


def test_spanets_short_train_flags_keep_spanets_meaning():
    args = train_cli.build_parser().parse_args(
        [
            "-of",
            "o.json",
            "-e",
            "1",
            "-t",
            "00:01:00:00",
            "-g",
            "0",
            "-b",
            "64",
            "-p",
            "30",
            "-r",
            "5",
            "-cf",
            "a.ckpt",
            "-sf",
            "b.ckpt",
            "-fsf",
            "-fp16",
            "-v",
            "-l",
            "logs",
            "-n",
            "name",
            "-ef",
            "e.yaml",
            "-tf",
            "t.h5",
            "-vf",
            "v.h5",
        ]
    )
    assert (args.epochs, args.time_limit, args.gpus, args.batch_size) == (1, "00:01:00:00", 0, 64)
    assert args.event_file == "e.yaml"  # -e is --epochs, never a prefix of -ef
    assert (args.limit_dataset, args.random_seed, args.checkpoint, args.state_dict) == (
        30,
        5,
        "a.ckpt",
        "b.ckpt",
    )
    assert args.freeze_state_dict and args.fp16 and args.verbose
    assert (args.log_dir, args.name, args.training_file, args.validation_file) == (
        "logs",
        "name",
        "t.h5",
        "v.h5",
    )
    assert train_cli._option_values(args) == {
        "dataset_limit": 0.3,
        "dataset_randomization": 5,
        "verbose_output": True,
        "num_gpu": 0,  # SPANet: options.num_gpu = gpus
    }


def test_without_v_verbose_output_is_false_and_without_g_num_gpu_is_the_files():
    # SPANet's train.py: options.verbose_output = verbose, whatever the options file says
    args = train_cli.build_parser().parse_args(["-of", "o.json"])
    assert train_cli._option_values(args) == {"verbose_output": False}


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        (
            train_cli,
            [
                "-of",
                "options_files/full_hadronic_ttbar/example.json",
                "--time_limit",
                "00:00:01:00",
                "--gpus",
                "0",
            ],
        ),
        (test_cli, ["./spanet_output/version_0", "-tf", "data/full_hadronic_ttbar/example.h5", "--gpu"]),
        (predict_cli, ["./spanet_output/version_0", "./out.h5", "-tf", "data/example.h5", "--gpu"]),
    ],
    ids=["train", "test", "predict"],
)
def test_command_lines_from_spanets_readme_parse(module, argv):
    module.build_parser().parse_args(argv)


@pytest.mark.parametrize(("flags", "device", "named"), [
    ([], "cpu", "--device"), (["-g"], "cuda", "-g/--gpu"), (["--gpu"], "cuda", "-g/--gpu"),
    (["--device", "cuda:1"], "cuda:1", "--device"),
])
def test_g_puts_spanet_test_and_predict_on_the_gpu(monkeypatch, capsys, flags, device, named):
    """SPANet's -g/--gpu: the network is loaded onto CUDA (the load is stopped right there), and a
    machine without one is told about the flag the user typed."""
    seen = []

    def check_device(text, where="--device"):
        seen.append((text, where))

    def load_run(run_dir, checkpoint=None, device=None):
        seen.append(device)
        raise InputError(None, "load_run", "nothing (stopped by the test)")

    # Imported first, so that evaluation.trained binds the real check_device, not this test's.
    importlib.import_module("spanet_lite.evaluation.run")
    monkeypatch.setattr("spanet_lite.devices.check_device", check_device)
    monkeypatch.setattr("spanet_lite.evaluation.run.load_run", load_run)
    assert test_cli.main(["run", "-tf", "test.h5", *flags]) == 2
    assert predict_cli.main(["run", "out.h5", "-tf", "test.h5", *flags]) == 2
    assert seen == [(device, named), device] * 2
    assert capsys.readouterr().err.count("stopped by the test") == 2


def test_r_keeps_spanets_meaning_zero_or_below_leaves_the_file_and_beyond_numpy_is_named():
    for value in ("0", "-2"):
        args = train_cli.build_parser().parse_args(["-of", "o.json", "-r", value])
        assert "dataset_randomization" not in train_cli._option_values(args)
    args = train_cli.build_parser().parse_args(["-of", "o.json", "-r", str(2**32)])
    with pytest.raises(InputError, match=r"^-r/--random_seed: expected a seed in \[0, 2\*\*32\), "
                                         r"got 4294967296$"):
        train_cli._option_values(args)


def test_abbreviations_and_bad_percentages_are_refused(capsys):
    assert train_cli.main(["-of", "o.json", "--epoch", "1"]) == 2
    assert "unrecognized arguments: --epoch" in capsys.readouterr().err
    assert train_cli.main(["-of", "o.json", "-p", "0.5e3"]) == 2
    assert "-p/--limit_dataset" in capsys.readouterr().err


# ------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def spanet_style_run(tmp_path_factory, generated_tth):
    folder = tmp_path_factory.mktemp("spanet_cli")
    options = write_options(folder, generated_tth, dataset_limit=1.0, epochs=5)
    argv = [
        "-of",
        str(options),
        "-e",
        "1",
        "-g",
        "0",
        "-p",
        "30",
        "-r",
        "5",
        "-b",
        "64",
        "-t",
        "00:00:30:00",
        "-l",
        str(folder / "logs"),
        "-n",
        "spanet_output",
    ]
    assert train_cli.main(argv) == 0
    return folder, folder / "logs" / "spanet_output" / "version_0"


@pytest.mark.slow
def test_a_spanet_command_line_trains_one_epoch(spanet_style_run):
    _, run = spanet_style_run
    with (run / "metrics.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 1  # -e 1: one epoch
    options = json.loads((run / "options.json").read_text())
    assert (
        options["epochs"] == 1 and options["dataset_limit"] == 0.3 and options["dataset_randomization"] == 5
    )
    assert options["batch_size"] == 64
    assert options["num_gpu"] == 0 and options["verbose_output"] is False  # -g 0, no -v


@pytest.mark.slow
def test_state_dict_with_freeze_starts_from_those_weights_and_keeps_them(
    spanet_style_run, generated_tth, capsys
):
    folder, source_run = spanet_style_run
    source = network_weights(source_run / "checkpoints" / "last.ckpt")
    # Two classification layers: the classification head no longer matches, so it trains.
    (folder / "tune").mkdir()
    options = write_options(folder / "tune", generated_tth, epochs=1, num_classification_layers=2)
    argv = [
        "-of",
        str(options),
        "-sf",
        str(source_run / "checkpoints" / "last.ckpt"),
        "-fsf",
        "-l",
        str(folder / "logs"),
        "-n",
        "tuned",
    ]
    assert train_cli.main(argv) == 0
    assert "loaded parameters frozen" in capsys.readouterr().out
    tuned = network_weights(folder / "logs" / "tuned" / "version_0" / "checkpoints" / "last.ckpt")
    kept = [k for k, v in source.items() if k in tuned and tuned[k].shape == v.shape]
    assert len(kept) > 10 and set(tuned) - set(kept)  # most of the network loaded, a part new
    for key in kept:
        torch.testing.assert_close(tuned[key], source[key], rtol=0, atol=0, msg=key)
    # --resume for a second epoch keeps them frozen: the checkpoint records which they are.
    run = folder / "logs" / "tuned" / "version_0"
    assert train_cli.main(["--resume", str(run), "--epochs", "2", "-q"]) == 0
    resumed = network_weights(run / "checkpoints" / "last.ckpt")
    for key in kept:
        torch.testing.assert_close(resumed[key], source[key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(resumed[k], tuned[k]) for k in set(tuned) - set(kept))  # the rest trains


@pytest.mark.slow
def test_freezing_every_parameter_names_the_keyword_from_python_and_the_flag_from_the_command(
    spanet_style_run, capsys
):
    """Found only once the network is built: train() names freeze_state_dict, spanet-train -fsf."""
    folder, source_run = spanet_style_run
    options, weights = folder / "options.json", source_run / "checkpoints" / "last.ckpt"
    refusal = (f"{weights}: {{}}: expected a network with parameters left to train, got every parameter "
               "would be loaded and frozen")
    with pytest.raises(InputError) as raised:
        train(options, state_dict=weights, freeze_state_dict=True, log_dir=folder / "frozen", quiet=True)
    assert str(raised.value) == refusal.format("freeze_state_dict")
    capsys.readouterr()
    argv = ["-of", str(options), "-sf", str(weights), "-fsf", "-l", str(folder / "frozen"), "-q"]
    assert train_cli.main(argv) == 2
    assert capsys.readouterr().err == f"spanet-train: error: {refusal.format('-fsf/--freeze_state_dict')}\n"
    assert not (folder / "frozen").exists()


@pytest.mark.parametrize("given", ["run directory", "damaged checkpoint"])
def test_a_bad_state_dict_is_one_line_before_anything_is_printed_or_loaded(
    spanet_style_run, generated_tth, tmp_path, capsys, given
):
    """-sf is read first: a bad checkpoint is the run's only output, not a line after the options table."""
    _, source_run = spanet_style_run
    options = write_options(tmp_path, generated_tth, epochs=1)
    if given == "run directory":
        path = source_run
        got = f"got a directory: a run's weights are in {source_run / 'checkpoints'}/, e.g. best.ckpt"
    else:
        path = tmp_path / "damaged.ckpt"
        data = bytearray((source_run / "checkpoints" / "last.ckpt").read_bytes())
        data[len(data) // 2] ^= 0x01  # inside a tensor record: the archive's directory is at the end
        path.write_bytes(bytes(data))
        got = "got a damaged file (its record data/"
    capsys.readouterr()
    assert train_cli.main(["-of", str(options), "-sf", str(path), "-l", str(tmp_path / "logs")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and got in err
    assert not (tmp_path / "logs").exists()


def test_read_initial_weights_of_a_run_folder_says_where_its_weights_are(tmp_path):
    """From Python as from -sf: a run's folder is the usual slip (the API used to say only
    'got IsADirectoryError')."""
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(InputError) as caught:
        read_initial_weights(tmp_path / "run")
    run = tmp_path / "run"
    assert str(caught.value) == (f"{run}: expected a readable torch checkpoint, got a directory: "
                                 f"a run's weights are in {run / 'checkpoints'}/, e.g. best.ckpt")


def test_a_checkpoint_path_that_exists_but_is_no_file_is_not_called_missing(tmp_path):
    """checkpoint_path_problem called every path that is neither a folder nor a regular file
    'no such file': -sf /dev/null read 'expected an existing checkpoint, got no such file'."""
    import os

    fifo = tmp_path / "pipe.ckpt"
    os.mkfifo(fifo)
    for path in (Path(os.devnull), fifo):
        with pytest.raises(InputError) as caught:
            read_initial_weights(path)
        assert str(caught.value) == f"{path}: expected a readable torch checkpoint, got not a regular file"
    with pytest.raises(InputError, match="expected an existing checkpoint, got no such file"):
        read_initial_weights(tmp_path / "none.ckpt")


def test_load_initial_weights_copies_matching_tensors_and_freezes_only_those(tmp_path):
    torch.manual_seed(0)
    old = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    torch.save({"state_dict": old.state_dict()}, tmp_path / "old.ckpt")
    new = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 5))  # second layer reshaped
    report = load_initial_weights(new, read_initial_weights(tmp_path / "old.ckpt", freeze=True))
    assert sorted(report.loaded) == ["0.bias", "0.weight"]
    assert sorted(report.missing) == sorted(report.unused) == ["1.bias", "1.weight"]
    torch.testing.assert_close(new[0].weight, old[0].weight)
    assert not new[0].weight.requires_grad and new[1].weight.requires_grad
    with pytest.raises(InputError, match="none match"):
        load_initial_weights(torch.nn.Linear(3, 4), read_initial_weights(tmp_path / "old.ckpt"))
    with pytest.raises(InputError, match="frozen"):  # nothing left to train
        load_initial_weights(old, read_initial_weights(tmp_path / "old.ckpt", freeze=True))


# -------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def tth_run(tmp_path_factory, generated_tth):
    folder = tmp_path_factory.mktemp("tth")
    event_yaml = (generated_tth / "semi_leptonic_ttH.yaml").read_text()
    return make_run_dir(folder / "run", event_yaml, generated_tth / "example.h5", seed=2)


def test_predict_writes_exactly_spanets_datasets(tth_run, generated_tth, tmp_path):
    out = tmp_path / "out.h5"
    data = generated_tth / "example.h5"
    assert predict_cli.main([str(tth_run), str(out), "-tf", str(data), "-bs", "256", "-v"]) == 0
    with h5py.File(data) as source:
        inputs = set()
        source["INPUTS"].visititems(
            lambda n, o: inputs.add(f"INPUTS/{n}") if isinstance(o, h5py.Dataset) else None
        )
        n = source["INPUTS/Momenta/MASK"].shape[0]
    with h5py.File(out) as file:
        names: dict[str, h5py.Dataset] = {}
        file.visititems(lambda n, o: names.__setitem__(n, o) if isinstance(o, h5py.Dataset) else None)
        spanet = {k for k in names if not k.startswith("SPANET_LITE/")}
        particles = {"lt": ["b"], "ht": ["b", "q1", "q2"], "h": ["b1", "b2"]}
        expected = set(inputs)
        for p, products in particles.items():
            expected |= {f"TARGETS/{p}/{q}" for q in products}
            expected |= {f"TARGETS/{p}/{k}_probability" for k in ("assignment", "detection", "marginal")}
            expected |= {f"EMBEDDINGS/{p}/{q}" for q in ["PARTICLE", *products]}
        regressions = ["neutrino_eta", "neutrino_px", "neutrino_py", "neutrino_pz", "log_invariant_mass"]
        expected |= {f"REGRESSIONS/EVENT/{r}" for r in regressions}
        expected |= {"CLASSIFICATIONS/EVENT/signal", "EMBEDDINGS/EVENT"}
        assert spanet == expected
        for p, products in particles.items():
            for q in products:
                assert names[f"TARGETS/{p}/{q}"].dtype == np.int64 and names[f"TARGETS/{p}/{q}"].shape == (n,)
            values = {
                k: names[f"TARGETS/{p}/{k}_probability"][:] for k in ("assignment", "detection", "marginal")
            }
            for value in values.values():
                assert value.dtype == np.float32 and value.shape == (n,)
                assert ((value >= 0) & (value <= 1)).all()
            np.testing.assert_allclose(
                values["marginal"], values["assignment"] * values["detection"], rtol=1e-6
            )
            assert (names[f"TARGETS/{p}/{products[0]}"][:] >= 0).all()  # best assignment, never gated
        signal = names["CLASSIFICATIONS/EVENT/signal"]
        assert signal.dtype == np.float32 and signal.shape == (n, 2)
        np.testing.assert_allclose(signal[:].sum(1), 1.0, rtol=1e-5)
        assert names["REGRESSIONS/EVENT/neutrino_px"].dtype == np.float32
        assert names["EMBEDDINGS/EVENT"].shape == (n, 16)
        gated = names["SPANET_LITE/TARGETS/ht/q1"][:]
        detected = names["TARGETS/ht/detection_probability"][:] >= 0.5
        assert not ((gated >= 0) & ~detected).any()  # spanet_lite's report is detection-gated
        np.testing.assert_array_equal(
            names["SPANET_LITE/CLASSIFICATIONS/EVENT/signal"][:], signal[:].argmax(1)
        )


def test_assignment_probability_counts_every_ordering_of_a_symmetric_pair(tth_run, generated_tth):
    """SPANet's assignment_probability is the probability of the assignment, not of one of its
    orderings: the h (b1 <-> b2) tuple's probability times the group order 2."""
    import spanet_lite
    from spanet_lite.evaluation.inference import chosen_probability

    run = spanet_lite.load_run(tth_run)
    with h5py.File(generated_tth / "example.h5") as file:
        from spanet_lite.dataset.reader import read_inputs

        inputs = read_inputs(file, run.spec, 0, 32)
        features, masks = inputs.features, inputs.masks
    predicted = run.predict(features, masks)
    with torch.no_grad():
        f = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in features.items()}
        m = {k: torch.as_tensor(v, dtype=torch.bool) for k, v in masks.items()}
        outputs = run.network(f, m)
    ordered = chosen_probability(outputs.assignments["h"], torch.as_tensor(predicted.assignments["h"]))
    np.testing.assert_allclose(predicted.assignment_probabilities["h"], 2 * ordered.numpy(), rtol=1e-5)


# --------------------------------------------------------------------------- tables
def test_spanet_tables_on_a_known_example():
    targets = {
        "t1": np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2]]),
        "t2": np.array([[3, 4, 5], [3, 4, 5], [-1, -1, -1], [3, 4, 5]]),
    }
    masks = {"t1": np.array([1, 1, 1, 1], bool), "t2": np.array([1, 1, 0, 1], bool)}
    predictions = {
        "t1": np.array([[1, 0, 2], [3, 4, 5], [0, 1, 3], [0, 1, 2]]),  # q1 <-> q2; tops swapped; wrong; right
        "t2": np.array([[3, 4, 5], [0, 1, 2], [4, 5, 6], [3, 4, 6]]),  # right; swapped; -; wrong
    }
    tables = spanet_tables(predictions, targets, masks, TTBAR, np.array([6, 6, 7, 9]), lines=1)
    assert list(tables) == ["*t", "0t", "1t", "2t"]
    columns = ["Jet Limit", "Event Proportion", "Jet Proportion", "Event Purity", "T Purity"]
    assert all(list(row) == columns for rows in tables.values() for row in rows)
    full = {name: rows[-1] for name, rows in tables.items()}
    assert [r["Jet Limit"] for r in tables["*t"]] == ["== 6", ">= 7", "Full"]
    assert full["*t"]["Event Proportion"] == 1.0 and full["*t"]["Event Purity"] == 0.5
    assert full["*t"]["T Purity"] == pytest.approx(5 / 7)
    assert full["0t"]["Event Proportion"] == 0.0 and math.isnan(full["0t"]["Event Purity"])
    assert (full["1t"]["Event Proportion"], full["1t"]["Event Purity"], full["1t"]["T Purity"]) == (
        0.25,
        0.0,
        0.0,
    )
    assert full["2t"]["Event Purity"] == pytest.approx(2 / 3) and full["2t"]["T Purity"] == pytest.approx(
        5 / 6
    )
    six, seven_plus = tables["*t"][0], tables["*t"][1]
    assert (six["Jet Proportion"], six["Event Purity"], six["T Purity"]) == (0.5, 1.0, 1.0)
    assert (seven_plus["Event Purity"], seven_plus["T Purity"]) == (0.0, pytest.approx(1 / 3))
    assert tables["2t"][1]["Event Proportion"] == 0.5


def test_spanet_tables_count_a_global_input_by_its_mask_as_spanet_does(tmp_path):
    # SPANet's table rows are its dataset's num_vectors: real objects of every input, a GLOBAL
    # input adding its MASK where the file has one (GlobalInput.load), not always one.
    import spanet_lite
    from spanet_lite.evaluation.evaluate import evaluate_file

    data = write_ttbar_file(tmp_path / "events.h5", num_events=60, width=8)
    with h5py.File(data, "a") as file:
        n = file["INPUTS/Jets/MASK"].shape[0]
        file["INPUTS/Met/met"] = np.linspace(10, 100, n).astype(np.float32)
        file["INPUTS/Met/MASK"] = np.arange(n) % 3 != 0  # Met missing in a third of the events
        vectors = file["INPUTS/Jets/MASK"][:].sum(1) + file["INPUTS/Met/MASK"][:]
    event_yaml = ttbar_yaml("{pt: log_normalize}", global_inputs="Met: {met: log_normalize}")
    run = spanet_lite.load_run(make_run_dir(tmp_path / "run", event_yaml, data))
    tables = evaluate_file(run, data, lines=2, masses=[], progress=False).metrics["spanet_tables"]
    smallest = int(vectors.min())
    assert smallest == 6  # six jets without Met: SPANet's first row is '== 6', not '== 7'
    rows = tables["*t"]
    assert [r["Jet Limit"] for r in rows] == ["== 6", "== 7", ">= 8", "Full"]
    for row, in_row in zip(rows, (vectors == 6, vectors == 7, vectors >= 8), strict=False):
        assert row["Jet Proportion"] == pytest.approx(in_row.mean())


def test_spanet_test_keeps_only_the_events_limit_to_num_jets_keeps_as_spanet_does(tmp_path):
    # SPANet's test dataset is built with vector_limit=limit_to_num_jets (JetReconstructionBase.
    # create_datasets), so its tables and numbers cover only the events with exactly that count.
    import spanet_lite
    from spanet_lite.errors import SpanetWarning
    from spanet_lite.evaluation.evaluate import evaluate_file

    data = write_ttbar_file(tmp_path / "events.h5", num_events=60, width=8)
    with h5py.File(data, "r") as file:
        vectors = file["INPUTS/Jets/MASK"][:].sum(1)
    run = spanet_lite.load_run(make_run_dir(tmp_path / "run", TTBAR_YAML, data, limit_to_num_jets=7))
    with pytest.warns(SpanetWarning, match=f"{(vectors != 7).sum()} of 60 events left out"):
        metrics = evaluate_file(run, data, lines=1, masses=[], progress=False).metrics
    assert metrics["num_events"] == (vectors == 7).sum() < 60
    rows = metrics["spanet_tables"]["*t"]
    assert [r["Jet Limit"] for r in rows] == ["== 7", ">= 8", "Full"]
    assert rows[0]["Jet Proportion"] == 1.0 and rows[1]["Jet Proportion"] == 0.0


def test_multi_class_targets_get_one_vs_rest_auc_and_a_confusion_matrix():
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.05, 0.45]])
    labels = np.array([0, 1, 2, 1])
    result = classification_metrics(probabilities, labels)
    assert result["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]  # rows: true class
    assert result["per_class"]["0"]["roc_auc"] == 1.0 and result["per_class"]["2"]["roc_auc"] == 1.0
    assert result["per_class"]["1"]["roc_auc"] == pytest.approx(0.5)  # 0.05 ranks below both others
    assert result["roc_auc"] == pytest.approx(2.5 / 3)
    assert math.isnan(result["rejection@50"])  # no class is "the signal"


def test_spanet_test_takes_spanets_flags_and_writes_the_tables_to_json(
    tth_run, generated_tth, tmp_path, capsys
):
    report = tmp_path / "report.json"
    argv = [
        str(tth_run),
        "-tf",
        str(generated_tth / "example.h5"),
        "-bs",
        "500",
        "-l",
        "1",
        "--json",
        str(report),
    ]
    assert test_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Event Type: *lt*ht*h" in out and "Event Proportion" in out and "Lt Purity" in out
    tables = json.loads(report.read_text())["spanet_tables"]
    assert [row["Jet Limit"] for row in tables["*lt*ht*h"]][-1] == "Full"
    assert len(tables["*lt*ht*h"]) == 3  # -l 1: '== m', '>= m+1', Full
    assert test_cli.main([*argv[:-2], "-tex"]) == 0
    latex = capsys.readouterr().out
    assert "\\begin{tabular}" in latex and "Event Purity" in latex


def test_an_event_file_with_another_topology_is_refused_in_one_line(tth_run, generated_tth, tmp_path, capsys):
    data = str(generated_tth / "example.h5")
    same = ["-ef", str(generated_tth / "semi_leptonic_ttH.yaml")]
    assert predict_cli.main([str(tth_run), str(tmp_path / "a.h5"), "-tf", data, *same]) == 0
    capsys.readouterr()
    other = ["-ef", str(REPO / "event_files" / "full_hadronic_ttbar.yaml")]
    assert predict_cli.main([str(tth_run), str(tmp_path / "b.h5"), "-tf", data, *other]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "topology the run was trained on" in err[0]
    assert not (tmp_path / "b.h5").exists()


def test_spanets_profiler_flag_is_refused_rather_than_ignored(capsys):
    assert train_cli.main(["-of", "o.json", "--profile"]) == 2
    assert "--profile" in capsys.readouterr().err


def test_the_masses_of_an_event_file_given_with_ef_feed_the_chi_square_baseline(tmp_path):
    """-ef (SPANet: replace the event file) with the run's topology and a SPANET_LITE masses
    section was accepted, and its masses silently ignored for the run's copy's (here none: the
    baseline was skipped). They are used now; an -ef without them leaves the run's copy's."""
    data = write_ttbar_file(tmp_path / "test.h5", 60)
    run = make_run_dir(tmp_path / "run", TTBAR_YAML, data)
    with_masses = tmp_path / "masses.yaml"
    with_masses.write_text(TTBAR_YAML + "SPANET_LITE:\n  MASSES:\n    t1: {all: 172.5 +- 20}\n"
                           "    t2: {all: 172.5 +- 20}\n", encoding="utf-8")
    plain = tmp_path / "plain.yaml"
    plain.write_text(TTBAR_YAML, encoding="utf-8")
    notes = []
    for event_file in (with_masses, plain):
        report = tmp_path / f"{event_file.stem}.json"
        assert test_cli.main([str(run), "-tf", str(data), "-ef", str(event_file), "--json", str(report)]) == 0
        chi = json.loads(report.read_text())["baseline"]["chi_square"]
        notes.append((chi["used"], chi["note"]))
    given = "chi-square baseline: m(t1: q1 q2 b) = 172.5 +- 20; m(t2: q1 q2 b) = 172.5 +- 20"
    assert notes[0] == (True, given)
    assert notes[1] == (False, "chi-square baseline skipped: no masses given")
