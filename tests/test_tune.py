"""`spanet-tune`: a search space that fails early, pruning of a hopeless trial, a study that resumes.

The study runs on 600 events of the bundled hh_4b example with a 16-wide network for three
epochs (seconds per trial). Three enqueued learning rates make the outcome predictable: two
that learn, then 1e-7, which cannot, and which the median pruner stops after its warm-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import needs

from spanet_lite.config.options import Options
from spanet_lite.errors import InputError
from spanet_lite.tuning.space import DEFAULT_SPACE, Parameter, check_space, load_space, parse_space


def test_a_space_file_reads_choices_ranges_and_log_scales():
    space = parse_space({"hidden_dim": [16, 32], "num_encoder_layers": {"low": 1, "high": 4},
                         "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}, "space.yaml")
    assert space == (Parameter("hidden_dim", choices=(16, 32)),
                     Parameter("num_encoder_layers", low=1, high=4, integer=True),
                     Parameter("learning_rate", low=1e-4, high=1e-2, log=True))
    assert {p.name for p in DEFAULT_SPACE} == {"hidden_dim", "num_encoder_layers", "learning_rate",
                                                "batch_size", "dropout"}


def test_a_float_option_ranges_over_floats_whatever_its_ends_look_like():
    """focal_gamma {low: 0, high: 2} drew only 0, 1 and 2 (suggest_int), as the ends were written
    as integers: the option's type decides, as in an options file."""
    space = parse_space({"focal_gamma": {"low": 0, "high": 2},
                         "learning_rate_warmup_epochs": {"low": 0, "high": 3, "step": 1}}, "space.yaml")
    assert [p.integer for p in space] == [False, False]


def test_choices_are_read_as_an_options_file_reads_them():
    """The space had a type rule of its own: SPANet's spellings an options file takes (GELU, "None",
    0/1 for a boolean, 32.0 for an integer) were refused in it."""
    space = parse_space({"linear_activation": ["GELU", "ReLU"], "combine_pair_loss": ["None", "mean"],
                         "partial_events": [0, 1], "hidden_dim": [32.0, 64]}, "space.yaml")
    assert [p.choices for p in space] == [("gelu", "relu"), ("min", "mean"), (False, True), (32, 64)]
    assert type(space[3].choices[0]) is int
    check_space(space, Options(), "space.yaml")


@pytest.mark.parametrize(("document", "message"), [
    ({"learnig_rate": [0.1]},
     "learnig_rate: expected an options-file key to search (did you mean 'learning_rate'?)"),
    ({"epochs": [1, 2]}, "unknown or unsearchable"),
    ({"dropout": {"low": 0.3, "high": 0.1}}, "expected numbers low < high"),
    ({"learning_rate": {"low": 0, "high": 1, "log": True}}, "low > 0 on a log scale"),
    ({"num_encoder_layers": {"low": 1, "high": 4.5}}, "the option is a whole number"),
    ({"hidden_dim": ["wide"]}, "choices of the option's type (int)"),
    ({"dropout": {"low": 0.0, "high": 0.3, "step": 0.7}}, "a step of at most high - low = 0.3"),
    ({"dropout": {"low": 0.0, "high": 0.3, "log": "no"}}, "dropout.log: expected true or false"),
    ({"hidden_dim": {"low": 8, "high": 16, "step": True}}, "a positive step (and no log scale), got True"),
    ({"partial_events": {"low": 0, "high": 1}},
     "partial_events: expected a list of choices (the option is bool, no number to draw from a range)"),
])
def test_a_bad_space_is_one_line_naming_the_key(document, message):
    with pytest.raises(InputError, match=r"space\.yaml") as error:
        parse_space(document, "space.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("text", "message"), [
    ("dropout: [0.1]\ndropout: [0.2]\n",
     "space.yaml: dropout (line 2): expected each key once in a mapping (first written at line 1), got "
     "'dropout' again"),
    ("hidden_dim: [" + "1" * 5000 + "]\n",
     "space.yaml: hidden_dim[0] (line 1): expected a value Python can read, got an integer of 5,000 digits"),
], ids=["key-twice", "integer-too-long"])
def test_a_space_file_is_read_by_the_rules_of_every_yaml_file(tmp_path, text, message):
    """load_space read with yaml.safe_load, not the YAML loader of the event and masses files: a
    key written twice kept its last value unseen, and an integer of 5,000 digits was a ValueError
    traceback."""
    (tmp_path / "space.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_space(tmp_path / "space.yaml")
    assert str(error.value).startswith(f"{tmp_path / message}")


def test_a_space_file_reads_1e_minus_4_as_a_number(tmp_path):
    """PyYAML reads 1e-4 (no dot) as text, YAML 1.1's rule: ``learning_rate: {low: 1e-4, ...}``
    was refused as 'expected numbers low < high, got low '1e-4''; it is the number it is in an
    options file (JSON) and in Python."""
    (tmp_path / "space.yaml").write_text("learning_rate: {low: 1e-4, high: 1E-2, log: true}\n"
                                         "l2_penalty: [1e-5, 0]\n", encoding="utf-8")
    assert load_space(tmp_path / "space.yaml") == (
        Parameter("learning_rate", low=1e-4, high=1e-2, log=True),
        Parameter("l2_penalty", choices=(1e-5, 0.0)),
    )


def test_values_the_options_refuse_fail_before_any_trial():
    space = parse_space({"dropout": {"low": 0.0, "high": 1.5}}, "space.yaml")
    with pytest.raises(InputError, match=r"space\.yaml: dropout"):
        check_space(space, Options(), "space.yaml")


# ----------------------------------------------------------------------------- studies

try:
    import optuna
except ImportError:  # the [tune] extra; CI installs it, so there the tests must run
    optuna = None
needs_optuna = needs("optuna", extra="tune")


def _options(directory: Path, repo_root: Path) -> Path:
    values = {
        "event_info_file": str(repo_root / "event_files" / "hh_4b.yaml"),
        "training_file": str(repo_root / "data" / "hh_4b" / "example.h5"),
        "hidden_dim": 16, "num_attention_heads": 2, "num_embedding_layers": 1, "num_encoder_layers": 1,
        "num_branch_embedding_layers": 1, "num_branch_encoder_layers": 1, "num_detector_layers": 1,
        "dataset_limit": 0.06, "train_validation_split": 0.75, "batch_size": 64, "epochs": 3,
        "learning_rate": 0.003, "learning_rate_warmup_epochs": 0.5, "seed": 3,
    }
    path = directory / "hh.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    return path


@needs_optuna
@pytest.mark.slow
def test_a_hopeless_trial_is_pruned_and_a_rerun_continues_the_study(tmp_path, repo_root):
    from spanet_lite.tuning.search import TuneConfig, tune

    space = (Parameter("learning_rate", choices=(0.01, 0.003, 1e-7)),)
    config = TuneConfig(options_file=_options(tmp_path, repo_root), trials=3, directory=tmp_path / "study",
                        space=space, startup_trials=2, warmup_epochs=1, seed=0)
    result = tune(config, enqueue=[{"learning_rate": lr} for lr in (0.01, 0.003, 1e-7)])

    states = {row.params["learning_rate"]: row.state for row in result.rows}
    assert states == {0.01: "complete", 0.003: "complete", 1e-7: "pruned"}
    pruned = next(row for row in result.rows if row.state == "pruned")
    assert pruned.epochs == 2  # stopped after the warm-up epoch and one compared epoch, not 3
    for row in result.rows:  # every trial is an ordinary run directory
        assert (Path(row.run_dir) / "checkpoints" / "last.ckpt").is_file()
        assert (Path(row.run_dir) / "metrics.csv").is_file()
    assert result.best is not None and result.best.value == max(r.value for r in result.rows)
    best = json.loads((tmp_path / "study" / "best_options.json").read_text())
    assert best["learning_rate"] == result.best.params["learning_rate"]
    assert best["hidden_dim"] == 16 and Path(best["training_file"]).is_absolute()

    # Same study (same SQLite file and name), bigger target: only the missing trial runs.
    again = tune(TuneConfig(**{**config.__dict__, "trials": 4}))
    assert sorted(row.number for row in again.rows) == [0, 1, 2, 3]
    assert sum(row.state in ("complete", "pruned") for row in again.rows) == 4
    assert len(list((tmp_path / "study").glob("trial_*"))) == 4


@needs_optuna
def test_the_command_refuses_a_bad_space_file_in_one_line(tmp_path, repo_root, capsys):
    from spanet_lite.cli.tune import main

    (tmp_path / "space.yaml").write_text("dropout: {low: 0.1}\n", encoding="utf-8")
    code = main([str(_options(tmp_path, repo_root)), "--trials", "2", "--space", str(tmp_path / "space.yaml"),
                 "--dir", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "space.yaml: dropout: expected numbers low < high" in err[0]
    assert not (tmp_path / "study").exists()


@needs_optuna
def test_the_command_says_nothing_about_a_study_whose_space_the_options_refuse(tmp_path, repo_root, capsys):
    from spanet_lite.cli.tune import main

    (tmp_path / "space.yaml").write_text("dropout: {low: 0.0, high: 1.5}\n", encoding="utf-8")
    code = main([str(_options(tmp_path, repo_root)), "--trials", "2", "--space", str(tmp_path / "space.yaml"),
                 "--dir", str(tmp_path / "study")])
    captured = capsys.readouterr()
    assert code == 2 and "space.yaml: dropout" in captured.err and len(captured.err.splitlines()) == 1
    assert captured.out == ""  # no "study ... trials" line for a study that never starts
    assert not (tmp_path / "study").exists()


@needs_optuna
def test_a_study_whose_every_trial_is_refused_fails_with_the_first_reason(tmp_path, repo_root, capsys):
    """The options' batch is larger than the training split: no sampled value can help."""
    from spanet_lite.cli.tune import main

    options = _options(tmp_path, repo_root)
    values = json.loads(options.read_text())
    options.write_text(json.dumps({**values, "batch_size": 1_000_000}))
    (tmp_path / "space.yaml").write_text("dropout: [0.0, 0.1]\n", encoding="utf-8")
    code = main([str(options), "--trials", "2", "--space", str(tmp_path / "space.yaml"),
                 "--dir", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("spanet-tune: error: every trial was refused; the first: ")
    assert "batch_size" in err[-1]


# (TuneConfig's value, the line check_config raises; the same flag, the line spanet-tune prints).
# "taken" is a file where the study's folder should be.
BAD_CONFIGS = [
    ({"trials": 0}, "trials: expected a number of trials >= 1, got 0",
     ["--trials", "0"], "--trials: expected a number of trials >= 1, got 0"),
    ({"jobs": 0}, "jobs: expected a number of worker processes >= 1, got 0",
     ["--jobs", "0"], "--jobs: expected a number of worker processes >= 1, got 0"),
    ({"epochs": 0}, "epochs: expected a number of epochs >= 1, got 0",
     ["--epochs", "0"], "--epochs: expected a number of epochs >= 1, got 0"),
    ({"warmup_epochs": -1}, "warmup_epochs: expected a number of epochs >= 0, got -1",
     ["--warmup-epochs", "-1"], "--warmup-epochs: expected a number of epochs >= 0, got -1"),
    ({"startup_trials": -1}, "startup_trials: expected a number of trials >= 0, got -1",
     ["--startup-trials", "-1"], "--startup-trials: expected a number of trials >= 0, got -1"),
    ({"seed": 2**32}, "seed: expected a seed in [0, 2**32), got 4294967296",
     ["--seed", str(2**32)], "--seed: expected a seed in [0, 2**32), got 4294967296"),
    ({"directory": "taken"}, "taken: directory: expected a folder for the study, got a file",
     ["--dir", "taken"], "taken: --dir: expected a folder for the study, got a file"),
    ({"directory": ""}, "directory: expected a folder path, got an empty path",
     ["--dir", ""], "--dir: expected a folder path, got an empty path"),
]


@needs_optuna
@pytest.mark.parametrize(("change", "line", "flags", "flag_line"), BAD_CONFIGS,
                         ids=[flags[0] for _, _, flags, _ in BAD_CONFIGS])
def test_a_bad_setting_names_the_field_from_python_and_the_flag_from_the_command(
        tmp_path, repo_root, monkeypatch, capsys, change, line, flags, flag_line):
    from spanet_lite.cli.tune import main
    from spanet_lite.tuning.search import TuneConfig, check_config

    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("keep me\n")
    options = _options(tmp_path, repo_root)
    with pytest.raises(InputError) as error:
        check_config(TuneConfig(options_file=options, **{"trials": 1, "directory": "study", **change}))
    assert str(error.value) == line
    assert main([str(options), "--trials", "1", "--dir", "study", *flags]) == 2
    assert capsys.readouterr().err == f"spanet-tune: error: {flag_line}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hh.json", "taken"]
    assert Path("taken").read_text() == "keep me\n"


@pytest.mark.parametrize(("change", "line"), [
    ({"trials": "3"}, "trials: expected an integer, got '3'"),
    ({"trials": 2.5}, "trials: expected an integer, got 2.5 (a number)"),
    ({"epochs": "2"}, "epochs: expected an integer, got '2'"),
])
def test_a_notebooks_counts_are_integers_or_one_line(change, line):
    """TuneConfig(trials="3") was a TypeError traceback from check_config, jobs=2.0 one from
    range(), trials=2.5 a study that ran 3 trials; whole floats are taken, as by the generators."""
    from spanet_lite.tuning.search import TuneConfig

    with pytest.raises(InputError) as error:
        TuneConfig(options_file="o.json", directory="study", **{"trials": 1, **change})
    assert str(error.value) == line
    config = TuneConfig(options_file="o.json", directory="study", trials=4.0, jobs=2.0)
    assert (type(config.trials), type(config.jobs)) == (int, int)


def test_a_notebook_may_give_paths_as_text_and_the_space_as_a_mapping():
    from spanet_lite.tuning.search import TuneConfig

    config = TuneConfig(options_file="o.json", trials=2, directory="study", space={"hidden_dim": [16, 32]})
    assert config.options_file == Path("o.json") and config.directory == Path("study")
    assert config.space == parse_space({"hidden_dim": [16, 32]}) and config.space_source == "space"
    assert config.space[0].choices == (16, 32)


def test_a_continued_study_draws_new_parameters_and_stays_reproducible():
    """A resubmitted job (same --seed) must not replay the first run's draws."""
    from spanet_lite.tuning.search import sampler_seed

    assert sampler_seed(None, 0, 5) is None
    assert sampler_seed(1, 0, 0) == sampler_seed(1, 0, 0)
    seeds = {sampler_seed(1, worker, trials) for worker in range(3) for trials in (0, 2, 4)}
    assert len(seeds) == 9


@needs_optuna
def test_a_storage_that_cannot_be_opened_leaves_no_folder(tmp_path, repo_root, capsys):
    from spanet_lite.cli.tune import main
    from spanet_lite.tuning.search import TuneConfig, tune

    options = _options(tmp_path, repo_root)
    code = main([str(options), "--trials", "1", "--storage", "bogus://x", "--dir", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("spanet-tune: error: --storage: expected a database URL Optuna can open")
    assert not (tmp_path / "study").exists()
    with pytest.raises(InputError) as error:
        tune(TuneConfig(options_file=options, trials=1, directory=tmp_path / "study", storage="bogus://x"))
    assert str(error.value).startswith("storage: expected a database URL Optuna can open")
    assert not (tmp_path / "study").exists()


@needs_optuna
def test_the_study_never_writes_its_best_options_over_the_options_file_it_starts_from(
        tmp_path, repo_root, capsys):
    """spanet-tune DIR/best_options.json --dir DIR (tune again from the winner) replaced the options
    file it was given with the new study's winner."""
    from spanet_lite.cli.tune import main
    from spanet_lite.tuning.search import TuneConfig, check_config

    study_dir = tmp_path / "study"
    study_dir.mkdir()
    options = _options(tmp_path, repo_root).rename(study_dir / "best_options.json")
    text = options.read_text(encoding="utf-8")
    expected = f"expected an output different from the command's inputs, got the input {options}"
    with pytest.raises(InputError, match=f"^{options}: directory: {expected}$"):
        check_config(TuneConfig(options_file=options, trials=1, directory=study_dir))
    assert main([str(options), "--trials", "1", "--dir", str(study_dir)]) == 2
    assert capsys.readouterr().err == f"spanet-tune: error: {options}: --dir: {expected}\n"
    assert options.read_text(encoding="utf-8") == text
    assert [p.name for p in study_dir.iterdir()] == ["best_options.json"]


@needs_optuna
def test_a_continued_study_with_other_choices_is_one_line_naming_the_space_key(tmp_path, repo_root, capsys):
    """A study that drew hidden_dim from {16, 32}, continued with [16, 64]: Optuna raised
    'CategoricalDistribution does not support dynamic value space' from inside the next trial,
    a traceback that left a failed trial in the study at every try. A changed range is fine."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from spanet_lite.cli.tune import main

    options = _options(tmp_path, repo_root)
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{study_dir / 'study.db'}", study_name="hh",
                                direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        params={"hidden_dim": 16, "learning_rate": 0.003}, value=0.5,
        distributions={"hidden_dim": CategoricalDistribution([16, 32]),
                       "learning_rate": FloatDistribution(1e-3, 1e-2, log=True)}))
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}\nhidden_dim: [16, 64]\n",
                     encoding="utf-8")
    code = main([str(options), "--trials", "2", "--space", str(space), "--dir", str(study_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == (f"spanet-tune: error: {space}: hidden_dim: expected {{16, 32}}, as the study 'hh' "
                      "drew it so far (another study name or folder starts a new study), got {16, 64}")
    assert len(optuna.load_study(study_name="hh", storage=f"sqlite:///{study_dir / 'study.db'}").trials) == 1


@needs_optuna
def test_a_signal_that_stops_a_trial_stops_the_study_with_128_plus_its_number(
    tmp_path, repo_root, capsys, monkeypatch
):
    """A batch system's SIGTERM stops the trial's training (which saves a checkpoint): the study
    stops too, rather than starting the next trial, and exits 143 as spanet-train does."""
    from spanet_lite.cli.tune import main
    from spanet_lite.training import run
    from spanet_lite.training.fit import RunResult

    started: list[str] = []

    def stopped_by_sigterm(options, *, log_dir, name, **_):
        started.append(name)
        return RunResult(Path(log_dir) / name, None, None, "val/event_purity", None, None, 0,
                         stopped="terminated (SIGTERM)", signal_number=15)

    monkeypatch.setattr(run, "train", stopped_by_sigterm)
    code = main([str(_options(tmp_path, repo_root)), "--trials", "3", "--dir", str(tmp_path / "study")])
    assert code == 143 and started == ["trial_0000"]
    assert "study stopped by signal 15; the same command continues it" in capsys.readouterr().out


@needs_optuna
def test_tune_from_python_prints_nothing_without_a_console_and_keeps_optunas_logging(
    tmp_path, repo_root, capsys, monkeypatch
):
    """A notebook's tune(config) printed '[worker 0] trial 0: ...' for every trial (the line meant
    for --jobs worker processes) and left Optuna's logging at ERROR for the rest of the session."""
    from spanet_lite.training import run
    from spanet_lite.training.fit import RunResult
    from spanet_lite.tuning.search import TuneConfig, tune

    def finished(options, *, log_dir, name, **_):
        return RunResult(Path(log_dir) / name, None, None, "val/event_purity", 0.5, 0, 1)

    monkeypatch.setattr(run, "train", finished)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        config = TuneConfig(options_file=_options(tmp_path, repo_root), trials=2,
                            directory=tmp_path / "study", space={"dropout": [0.0, 0.1]})
        result = tune(config)
        assert [row.value for row in result.rows] == [0.5, 0.5]
        assert capsys.readouterr().out == ""
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(verbosity)


@needs_optuna
def test_best_options_train_as_many_epochs_as_the_best_trial_did(tmp_path, repo_root, monkeypatch):
    """A study continued with another --epochs wrote the continuing command's epochs into
    best_options.json, so the file trained the best trial (2 epochs) for 5: not the run it names."""
    from spanet_lite.training import run
    from spanet_lite.training.fit import RunResult
    from spanet_lite.tuning.search import BEST_OPTIONS, TuneConfig, tune

    def finished(options, *, log_dir, name, **_):
        value = 0.5 if options.epochs == 2 else 0.1
        return RunResult(Path(log_dir) / name, None, None, "val/event_purity", value, 0, options.epochs)

    monkeypatch.setattr(run, "train", finished)
    config = TuneConfig(options_file=_options(tmp_path, repo_root), trials=1, directory=tmp_path / "study",
                        space={"dropout": [0.0, 0.1]}, epochs=2, seed=0)
    tune(config)
    result = tune(TuneConfig(**{**config.__dict__, "trials": 2, "epochs": 5}))
    assert result.best is not None and result.best.epochs == 2
    best = json.loads((tmp_path / "study" / BEST_OPTIONS).read_text())
    assert best["epochs"] == 2
    assert best["dropout"] == result.best.params["dropout"]


@needs_optuna
def test_a_trial_line_counts_its_epochs_in_words_that_agree(tmp_path, repo_root, capsys, monkeypatch):
    """The line after each trial said 'in 1 epochs'."""
    from spanet_lite.cli.tune import main
    from spanet_lite.training import run
    from spanet_lite.training.fit import RunResult

    def one_epoch(options, *, log_dir, name, **_):
        return RunResult(Path(log_dir) / name, None, None, "val/event_purity", 0.5, 0, 1)

    monkeypatch.setattr(run, "train", one_epoch)
    code = main([str(_options(tmp_path, repo_root)), "--trials", "1", "--dir", str(tmp_path / "study")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "val/event_purity 0.5000 in 1 epoch (" in out
