"""`spanet-train` on the command line: bad input fails in one line before anything is written,
SPANet's own files train unchanged, overrides are shown, and DDP keeps the metrics layout.

Every run but the SPANet one uses the suite's generated ttH file (``generated_tth``)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _train_helpers import write_options

from spanet_lite.cli.train import main
from spanet_lite.errors import SpanetWarning

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_failing(argv: list[str], capsys: pytest.CaptureFixture[str], log_dir: Path) -> str:
    """Run the command, expect exit 2 and no run directory; return its one stderr line."""
    code = main([*argv, "--log-dir", str(log_dir), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spanet-train: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not log_dir.exists(), "nothing may be written for bad input"
    return lines[0]


@pytest.mark.parametrize(
    ("changes", "extra", "expected"),
    [
        ({"learning_rate": -0.001}, [], "learning_rate"),
        ({"optimizer": "Adamm"}, [], "optimizer"),
        ({}, ["--epochs", "0"], "epochs"),
        ({}, ["--batch-size", "5000"], "batch"),
        ({"training_file": "/no/such/file.h5"}, [], "training_file"),
        ({}, ["--time-limit", "soon"], "-t/--time_limit"),
        ({}, ["--precision", "8-bit"], "precision"),
        ({}, ["--no-such-flag"], "unrecognized arguments"),
    ],
    ids=[
        "negative-lr",
        "unknown-optimiser",
        "zero-epochs",
        "batch-larger-than-split",
        "missing-file",
        "bad-time-limit",
        "bad-precision",
        "unknown-flag",
    ],
)
def test_impossible_values_fail_in_one_line_before_training(
    changes: dict,
    extra: list[str],
    expected: str,
    tmp_path: Path,
    generated_tth: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = write_options(tmp_path, generated_tth, **changes)
    line = run_failing([str(options), *extra], capsys, tmp_path / "runs")
    assert expected in line


def test_missing_and_invalid_options_files_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no such file" in run_failing([str(tmp_path / "nope.json")], capsys, tmp_path / "runs")
    broken = tmp_path / "broken.json"
    broken.write_text('{"epochs": 3,\n "batch_size": }\n')
    assert "line 2" in run_failing(["-of", str(broken)], capsys, tmp_path / "runs")


def test_an_unknown_key_is_an_error_unless_allowed(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = write_options(tmp_path, generated_tth, learnig_rate=0.01)
    line = run_failing([str(options)], capsys, tmp_path / "runs")
    assert "learnig_rate (line" in line and "did you mean 'learning_rate'?" in line
    with pytest.warns(SpanetWarning, match="unknown option keys ignored: learnig_rate"):
        code = main([str(options), "--allow-unknown-keys", "--fast-dev-run", "--quiet"])
    assert code == 0


def test_an_event_file_that_does_not_match_the_dataset_fails_before_training(
    tmp_path: Path, generated_tth: Path, repo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = write_options(tmp_path, generated_tth)
    other = repo_root / "event_files" / "full_hadronic_ttbar.yaml"
    line = run_failing([str(options), "--event-file", str(other)], capsys, tmp_path / "runs")
    assert "example.h5" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_gpus_without_cuda_fails_but_num_gpu_in_the_file_falls_back(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = write_options(tmp_path, generated_tth, num_gpu=1)
    assert "-g/--gpus: " in run_failing([str(options), "--gpus", "1"], capsys, tmp_path / "runs")
    assert main([str(options), "--fast-dev-run", "--log-dir", str(tmp_path / "runs")]) == 0
    assert "using the CPU" in capsys.readouterr().out


def test_command_line_overrides_are_marked_in_the_options_table(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = write_options(tmp_path, generated_tth)
    code = main(
        ["-of", str(options), "--fast-dev-run", "--batch-size", "32", "--log-dir", str(tmp_path / "runs")]
    )
    out = capsys.readouterr().out
    assert code == 0
    batch_row = next(line for line in out.splitlines() if " batch_size " in line)
    assert "32" in batch_row and "command line" in batch_row
    assert "fast dev run" in out and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_spanet_reference_files_train_unchanged_for_one_epoch(
    tmp_path: Path, reference_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPANet's example options name ./event_files/... and ./data/... relative to SPANet's
    checkout; a working directory with that layout (symlinks to the reference files) is what a
    SPANet user has, so the options file is used exactly as shipped."""
    (tmp_path / "event_files").mkdir()
    (tmp_path / "data" / "semi_leptonic_ttH").mkdir(parents=True)
    (tmp_path / "event_files" / "semi_leptonic_ttH.yaml").symlink_to(reference_dir / "semi_leptonic_ttH.yaml")
    (tmp_path / "data" / "semi_leptonic_ttH" / "example.h5").symlink_to(reference_dir / "example.h5")
    monkeypatch.chdir(tmp_path)
    code = main([str(reference_dir / "example.json"), "--epochs", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert sum("without effect" in line for line in out.splitlines()) == 1  # one summary line
    assert sum("SPANet's network has no pair features" in line for line in out.splitlines()) == 1
    run = tmp_path / "runs" / "semi_leptonic_ttH" / "version_0"
    with (run / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["val/event_purity"]) <= 1.0
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert "num_gpu = 1 in the options" in out  # SPANet's file asks for a GPU; we fall back to the CPU


@pytest.mark.slow
def test_spanets_defaults_train_on_spanets_example_whose_full_events_are_all_signal(
    tmp_path: Path, reference_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With SPANet's defaults (partial_events: false) the training split of SPANet's own example
    keeps only signal events: SPANet trains on it (a head of highest label + 1 classes), so we do."""
    (tmp_path / "defaults.json").write_text("{}")
    argv = ["-of", str(tmp_path / "defaults.json"), "-ef", str(reference_dir / "semi_leptonic_ttH.yaml"),
            "-tf", str(reference_dir / "example.h5"), "-e", "1", "-b", "64", "-l", str(tmp_path / "runs"),
            "-n", "defaults"]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert sum("every labelled training event is class 1" in line for line in out.splitlines()) == 1
    run = tmp_path / "runs" / "defaults" / "version_0"
    assert json.loads((run / "statistics.json").read_text())["num_classes"] == {"EVENT/signal": 2}


@pytest.mark.slow
def test_two_process_cpu_ddp_writes_the_same_metrics_layout(tmp_path: Path, generated_tth: Path) -> None:
    options = write_options(tmp_path, generated_tth, epochs=1, batch_size=32)
    columns = {}
    for processes in (1, 2):
        log_dir = tmp_path / f"runs{processes}"
        command = [
            sys.executable,
            "-m",
            "spanet_lite.cli.train",
            str(options),
            "--processes",
            str(processes),
            "--log-dir",
            str(log_dir),
            "--name",
            "ddp",
            "--quiet",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        # Metrics are gathered from every process before logging: no advice to sync them.
        assert "sync_dist" not in done.stdout + done.stderr
        # Nor torch's deprecation of the all_gather Lightning calls, once per process.
        assert "deprecated" not in done.stdout + done.stderr
        runs = sorted((log_dir / "ddp").iterdir())
        assert [r.name for r in runs] == ["version_0"]  # all processes wrote into one run directory
        with (runs[0] / "metrics.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 1 and 0.0 <= float(rows[0]["val/event_purity"]) <= 1.0
        columns[processes] = list(rows[0])
        assert (runs[0] / "checkpoints" / "last.ckpt").is_file()
    assert columns[1] == columns[2]


@pytest.mark.parametrize(
    ("gpus", "changes", "said"),
    [(0, {}, "-g 0"), (None, {"num_gpu": 0}, "num_gpu = 0"), (None, {}, None), (1, {}, None)],
)
def test_zero_gpus_trains_on_the_cpu_and_says_so_when_gpus_are_visible(
    monkeypatch: pytest.MonkeyPatch, gpus: int | None, changes: dict[str, int], said: str | None
) -> None:
    """SPANet documents ``--gpus N`` as the number of GPUs, but its code gives Lightning "auto"
    for 0, which takes every visible GPU: here 0 is the CPU, and that is said where it differs."""
    from spanet_lite.config.options import Options
    from spanet_lite.training.hardware import choose_hardware

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    options = Options().replace(**changes)
    hardware = choose_hardware(options, gpus=gpus, processes=None, nodes=1)
    if said is None:
        assert hardware.accelerator == "gpu" and hardware.note is None
    else:
        assert hardware.accelerator == "cpu"
        assert hardware.note is not None and hardware.note.startswith(said)
        assert "2 visible GPU(s)" in hardware.note


@pytest.mark.parametrize(
    ("gpus", "processes", "chosen_by"),
    [(0, 2, "processes"), (0, None, "gpus"), (None, 2, "num_gpu"), (None, None, "num_gpu"), (1, 2, "gpus")],
)
def test_a_device_failure_names_what_set_the_device_count(
    monkeypatch: pytest.MonkeyPatch, gpus: int | None, processes: int | None, chosen_by: str
) -> None:
    """With ``-g 0 --processes 2`` the CPU devices that fail are --processes' two, not a GPU count."""
    from spanet_lite.config.options import Options
    from spanet_lite.training.hardware import choose_hardware

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    hardware = choose_hardware(Options(), gpus=gpus, processes=processes, nodes=1)
    assert hardware.chosen_by == chosen_by


@pytest.mark.parametrize(("native", "chosen"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_a_gpu_that_only_emulates_bfloat16_trains_in_16_bit_mixed_precision(
    monkeypatch: pytest.MonkeyPatch, native: bool, chosen: str
) -> None:
    """torch.cuda.is_bf16_supported() says yes on a V100 or T4 too (bfloat16 emulated) unless asked
    for native support: the GPU default was bf16-mixed on every GPU, and 16-mixed never chosen."""
    from spanet_lite.config.options import Options
    from spanet_lite.training.hardware import choose_hardware

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or including_emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    hardware = choose_hardware(Options(), gpus=1, processes=None, nodes=1)
    assert hardware.precision == chosen


@pytest.mark.parametrize(
    ("accelerator", "options", "chosen"),
    [
        ("gpu", {}, "bf16-mixed"),
        ("cpu", {}, "32-true"),
        ("gpu", {"precision": "32-true"}, "32-true"),
        ("gpu", {"precision": "auto"}, "bf16-mixed"),
        ("cpu", {"precision": "bf16"}, "bf16-mixed"),
    ],
)
def test_a_precision_set_in_python_is_kept_on_a_gpu_and_auto_is_the_default(
    monkeypatch: pytest.MonkeyPatch, accelerator: str, options: dict[str, str], chosen: str
) -> None:
    """``auto`` (the default) means mixed precision on a GPU and 32-true on the CPU; any other
    value is kept. A GPU used to train ``Options(precision="32-true")`` in bf16-mixed: 32-true was
    the default too, and an Options built in Python marks no key as set by the user."""
    from spanet_lite.config.options import Options
    from spanet_lite.training.hardware import choose_hardware

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    gpus = 1 if accelerator == "gpu" else 0
    hardware = choose_hardware(Options(**options), gpus=gpus, processes=None, nodes=1)
    assert (hardware.accelerator, hardware.precision) == (accelerator, chosen)


def lines_saying(
    text: str, tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str], **changes: object
) -> list[str]:
    """The lines of a one-batch training run's output that contain ``text``."""
    options = write_options(tmp_path, data, **changes)
    assert main([str(options), "--fast-dev-run", "--quiet"]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if text in line]


@pytest.mark.parametrize(("value", "said"), [("auto", True), ("none", False), ("physics", False)])
def test_pair_features_auto_says_once_that_it_adds_pair_features_to_spanets_network(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str], value: str, said: bool
) -> None:
    lines = lines_saying("SPANet's network has no pair", tmp_path, generated_tth, capsys, pair_features=value)
    expected = (
        "pair_features: auto adds ln Delta R, ln kT, ln z and ln m^2 of every object pair of Momenta to "
        "the attention (SPANet's network has no pair features; pair_features: none builds it)"
    )
    assert lines == ([expected] if said else [])


SAYS_WEIGHTS = "SPANet reads no per-event weights"
SWITCH = 'event_weight_dataset; SPANet reads no per-event weights; "" turns them off'


def with_event_weights(tmp_path: Path, generated_tth: Path, weights: np.ndarray) -> Path:
    """A copy of the generated file whose WEIGHTS/EVENT/weight holds ``weights``."""
    path = tmp_path / "weighted.h5"
    shutil.copyfile(generated_tth / "example.h5", path)
    with h5py.File(path, "r+") as file:
        file["WEIGHTS/EVENT/weight"][...] = weights
    return path


@pytest.mark.parametrize("dataset", ["WEIGHTS/EVENT/weight", ""])
def test_event_weights_that_are_all_one_or_switched_off_are_not_mentioned(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str], dataset: str
) -> None:
    """spanet-generate writes weight 1 for every event: training is SPANet's, nothing to say."""
    assert lines_saying(SAYS_WEIGHTS, tmp_path, generated_tth, capsys, event_weight_dataset=dataset) == []


def test_varying_event_weights_are_announced_with_the_range_of_the_events_used(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPANet reads no per-event weights; varying ones change the objective here, so the line says
    so with their range over the training and validation events (the file's first 300: event
    900's 7 is not among them)."""
    weights = 1 + 0.5 * (np.arange(1000) % 4)
    weights[900] = 7.0
    data = with_event_weights(tmp_path, generated_tth, weights)
    lines = lines_saying(SAYS_WEIGHTS, tmp_path, generated_tth, capsys, training_file=str(data))
    assert lines == [
        "WEIGHTS/EVENT/weight: training and validation event weights from 1 to 2.5; every event's "
        f"losses and metrics are weighted by them ({SWITCH})"
    ]


def test_varying_validation_weights_are_announced_when_the_training_weights_are_all_one(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Validation metrics are weighted means too, and they choose the best checkpoint: weights
    that vary only in the validation file still change what the run does."""
    validation = tmp_path / "validation"
    validation.mkdir()
    data = with_event_weights(validation, generated_tth, 1 + 0.5 * (np.arange(1000) % 4))
    lines = lines_saying(SAYS_WEIGHTS, tmp_path, generated_tth, capsys, validation_file=str(data),
                         dataset_limit=0.1, train_validation_split=1.0)
    assert lines == [
        "WEIGHTS/EVENT/weight: training and validation event weights from 1 to 2.5; every event's "
        f"losses and metrics are weighted by them ({SWITCH})"
    ]


@pytest.mark.parametrize("kl_loss_scale", [0.0, 0.5])
def test_equal_event_weights_other_than_one_are_said_to_change_nothing(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str], kl_loss_scale: float
) -> None:
    """A constant weight (cross-section over event count) leaves every weighted mean alone; only
    kl_loss, normalised by counts as SPANet's, would take its scale, and ttH has no EVENT
    symmetry for kl_loss to compare (the test above has one)."""
    data = with_event_weights(tmp_path, generated_tth, np.full(1000, 0.25))
    lines = lines_saying(SAYS_WEIGHTS, tmp_path, generated_tth, capsys, training_file=str(data),
                         kl_loss_scale=kl_loss_scale)
    assert lines == [
        "WEIGHTS/EVENT/weight: every training and validation event has weight 0.25; equal weights "
        f"leave the losses and metrics (weighted means) as without them ({SWITCH})"
    ]


@pytest.mark.parametrize(("event_symmetry", "kl"), [(True, ", except kl_loss, which they scale by 0.25"),
                                                   (False, "")])
def test_equal_event_weights_mention_kl_loss_only_where_there_is_an_event_symmetry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], event_symmetry: bool, kl: str
) -> None:
    """kl_loss compares the particles an EVENT symmetry swaps (ttbar's [t1, t2]); without one it
    is 0 whatever kl_loss_scale says, so a constant weight changes nothing at all."""
    from _evaluation_helpers import write_ttbar_file
    from _model_helpers import ttbar_yaml

    from spanet_lite.config import load_event_spec
    from spanet_lite.training.losses import kl_pairs

    event_file = tmp_path / "ttbar.yaml"
    event_file.write_text(ttbar_yaml("{pt: log_normalize, eta: normalize}", event_symmetry=event_symmetry),
                          encoding="utf-8")
    assert bool(kl_pairs(load_event_spec(event_file))) is event_symmetry
    data = write_ttbar_file(tmp_path / "ttbar.h5", num_events=64)
    with h5py.File(data, "r+") as file:
        file["WEIGHTS/EVENT/weight"][...] = 0.25
    options = write_options(tmp_path, tmp_path, event_info_file=str(event_file), training_file=str(data),
                            kl_loss_scale=0.5, partial_events=True, batch_size=8)
    assert main([str(options), "--fast-dev-run", "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if SAYS_WEIGHTS in line]
    assert lines == [
        "WEIGHTS/EVENT/weight: every training and validation event has weight 0.25; equal weights "
        f"leave the losses and metrics (weighted means) as without them{kl} ({SWITCH})"
    ]


def test_the_run_records_the_testing_file_it_found_as_an_absolute_path(
    tmp_path: Path, generated_tth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPANet's options name files relative to where it runs; spanet-test may run elsewhere."""
    from spanet_lite.training.plan import plan_run

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.h5").symlink_to(generated_tth / "example.h5")
    monkeypatch.chdir(tmp_path)
    found = write_options(tmp_path, generated_tth, testing_file="data/test.h5")
    assert plan_run(found, None, {}).options.testing_file == str((tmp_path / "data" / "test.h5").resolve())
    absent = write_options(tmp_path, generated_tth, testing_file="later/test.h5")
    assert plan_run(absent, None, {}).options.testing_file == "later/test.h5"  # training never reads it


def test_several_nodes_outside_a_multi_node_launch_is_one_line_not_a_hang(
    tmp_path: Path, generated_tth: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lightning would open a port and wait for the other nodes for ever."""
    from spanet_lite.errors import InputError
    from spanet_lite.training.hardware import LAUNCHER_VARIABLES, check_devices
    from spanet_lite.training.plan import KEYWORDS
    from spanet_lite.training.run import train

    for key in (*LAUNCHER_VARIABLES, "MASTER_ADDR", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "node0")  # half of a launch by hand is no launch
    options = write_options(tmp_path, generated_tth)
    refusal = ("expected a multi-node launch: srun, torchrun, jsrun, mpirun, or MASTER_ADDR and NODE_RANK "
               "set on every node, got 2 nodes in a plain process")
    with pytest.raises(InputError) as raised:
        train(options, nodes=2, log_dir=tmp_path / "runs")
    assert str(raised.value) == f"nodes: {refusal}"
    assert run_failing([str(options), "--nodes", "2"], capsys, tmp_path / "runs") == (
        f"spanet-train: error: --nodes: {refusal}"
    )
    monkeypatch.setenv("NODE_RANK", "1")
    check_devices(0, None, 2, KEYWORDS)
    monkeypatch.delenv("NODE_RANK")
    monkeypatch.setenv("LSB_JOBID", "42")
    check_devices(0, None, 2, KEYWORDS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_16_bit_precision_on_the_cpu_names_the_keyword_or_the_flag_typed(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """train(precision=...) names its keyword (the options' precision reads the same); the
    command names -fp16 or --precision, whichever was typed."""
    from spanet_lite.errors import InputError
    from spanet_lite.training.run import train

    refusal = "expected 32-true or bf16-mixed on the CPU (16-bit mixed precision needs a GPU), got 16-mixed"
    options = write_options(tmp_path, generated_tth)
    with pytest.raises(InputError) as raised:
        train(options, precision="16-mixed", log_dir=tmp_path / "runs")
    assert str(raised.value) == f"precision: {refusal}"
    both = ["-fp16", "--precision", "16"]  # one request twice, not two ("16" is "16-mixed")
    for flags, named in ((["-fp16"], "-fp16"), (["--precision", "16-mixed"], "--precision"), (both, "-fp16")):
        line = run_failing([str(options), *flags], capsys, tmp_path / "runs")
        assert line == f"spanet-train: error: {named}: {refusal}"
    in_file = write_options(tmp_path, generated_tth, precision="16-mixed")
    line = run_failing([str(in_file)], capsys, tmp_path / "runs")
    assert line == f"spanet-train: error: precision: {refusal}"
    short = write_options(tmp_path, generated_tth, precision="16")  # named as written
    line = run_failing([str(short)], capsys, tmp_path / "runs")
    assert line == f"spanet-train: error: precision: {refusal.replace('got 16-mixed', 'got 16')}"


@pytest.mark.parametrize(
    ("written", "passed"), [("bf16", "bf16-mixed"), ("32", "32-true"), ("64", "64-true")]
)
def test_short_precision_names_reach_lightning_under_their_full_names(written: str, passed: str) -> None:
    """Lightning reads "bf16" as "bf16-mixed" but prints a deprecation warning (with its own
    source path) in the middle of spanet-train's output; the short form is passed on in full."""
    from spanet_lite.config.options import Options
    from spanet_lite.training.hardware import choose_hardware

    options = Options(precision=written)
    hardware = choose_hardware(options, gpus=0, processes=None, nodes=1)
    assert hardware.precision == passed


# (train()'s arguments, the line it raises; the same flags, the line spanet-train prints), all
# refused before any file is read. {options} is a valid options file, {run} a folder of no run.
BAD_ARGUMENTS = [
    ({"name": "a/b"},
     "name: expected a folder name without / or .. (runs go to <log_dir>/<name>/version_N), got 'a/b'",
     ["{options}", "-n", "a/b"],
     "-n/--name: expected a folder name without / or .. (runs go to <log_dir>/<name>/version_N), got 'a/b'"),
    ({"checkpoint": "{options}", "resume": "{run}", "options": None},
     "checkpoint: expected either checkpoint or resume, not both",
     ["-cf", "{options}", "--resume", "{run}"],
     "-cf/--checkpoint: expected either -cf/--checkpoint or --resume, not both"),
    ({"state_dict": "{options}", "checkpoint": "{options}"},
     "state_dict: expected either initial weights (state_dict) or a checkpoint to continue "
     "(checkpoint or resume), not both",
     ["{options}", "-sf", "{options}", "-cf", "{options}"],
     "-sf/--state_dict: expected either initial weights (-sf/--state_dict) or a checkpoint to continue "
     "(-cf/--checkpoint or --resume), not both"),
    ({"freeze_state_dict": True},
     "freeze_state_dict: expected a state_dict checkpoint whose weights to freeze",
     ["{options}", "-fsf"],
     "-fsf/--freeze_state_dict: expected a -sf/--state_dict checkpoint whose weights to freeze"),
    ({"time_limit": "soon"},
     "time_limit: expected a duration above 0 such as 3600, 45m, 2h, 01:30:00 or SPANet's DD:HH:MM:SS, "
     "got 'soon'",
     ["{options}", "--time-limit", "soon"],
     "-t/--time_limit: expected a duration above 0 such as 3600, 45m, 2h, 01:30:00 or SPANet's "
     "DD:HH:MM:SS, got 'soon'"),
    ({"time_limit": "00:00:00:00"},
     "time_limit: expected a duration above 0 such as 3600, 45m, 2h, 01:30:00 or SPANet's DD:HH:MM:SS, "
     "got '00:00:00:00'",
     ["{options}", "-t", "00:00:00:00"],
     "-t/--time_limit: expected a duration above 0 such as 3600, 45m, 2h, 01:30:00 or SPANet's "
     "DD:HH:MM:SS, got '00:00:00:00'"),
    ({"state_dict": "{run}"},
     "{run}: state_dict: expected a checkpoint file (.ckpt), got a directory",
     ["{options}", "-sf", "{run}"],
     "{run}: -sf/--state_dict: expected a checkpoint file (.ckpt), got a directory"),
    ({"options": None},
     "options: expected an options file (or resume with a run directory, or checkpoint with a checkpoint "
     "file)",
     [],
     "OPTIONS: expected an options file (or --resume with a run directory, or -cf/--checkpoint with a "
     "checkpoint file)"),
    ({"resume": "{run}"},
     "resume: no options file together with resume (the run's own options are used; override single "
     "values instead)",
     ["{options}", "--resume", "{run}"],
     "--resume: no options file together with --resume (the run's own options are used; override single "
     "values instead)"),
    ({"options": None, "resume": "{run}", "event_file": "{options}"},
     "event_file: no event_file with resume (the network is built from the run's own event file)",
     ["--resume", "{run}", "-ef", "{options}"],
     "-ef/--event_file: no -ef/--event_file with --resume (the network is built from the run's own event "
     "file)"),
    ({"options": None, "resume": "{run}/gone"},
     "{run}/gone: resume: expected a run directory or a .ckpt file, got nothing at that path",
     ["--resume", "{run}/gone"],
     "{run}/gone: --resume: expected a run directory or a .ckpt file, got nothing at that path"),
    ({"fast_dev_run": True, "checkpoint": "{options}"},
     "fast_dev_run: expected a new run (fast_dev_run trains one batch; it cannot continue a run), got a "
     "checkpoint to continue (checkpoint)",
     ["{options}", "--fast-dev-run", "-cf", "{options}"],
     "--fast-dev-run: expected a new run (--fast-dev-run trains one batch; it cannot continue a run), got a "
     "checkpoint to continue (-cf/--checkpoint)"),
    ({"options": None, "resume": "{run}"},
     "{run}: resume: expected a run directory with checkpoints/last.ckpt or interrupted.ckpt, got no "
     "checkpoint",
     ["--resume", "{run}"],
     "{run}: --resume: expected a run directory with checkpoints/last.ckpt or interrupted.ckpt, got no "
     "checkpoint"),
    ({"gpus": -1},
     "gpus: expected a number of GPUs >= 0, got -1",
     ["{options}", "--gpus", "-1"],
     "-g/--gpus: expected a number of GPUs >= 0, got -1"),
    ({"processes": 0},
     "processes: expected a number of processes >= 1, got 0",
     ["{options}", "--processes", "0"],
     "--processes: expected a number of processes >= 1, got 0"),
    # Keywords that set an option: refused once merged with the file, under the name given.
    ({"epochs": 0},
     "epochs: expected at least 1 epoch, got 0 (a number)",
     ["{options}", "-e", "0"],
     "-e/--epochs: expected at least 1 epoch, got 0 (a number)"),
    ({"batch_size": 0},
     "batch_size: expected a batch size of at least 1, got 0 (a number)",
     ["{options}", "-b", "0"],
     "-b/--batch_size: expected a batch size of at least 1, got 0 (a number)"),
    ({"learning_rate": -1.0},
     "learning_rate: expected a learning rate > 0, got -1.0 (a number)",
     ["{options}", "--lr", "-1"],
     "--learning-rate/--lr: expected a learning rate > 0, got -1.0 (a number)"),
    ({"seed": -5},
     "seed: expected a seed in [0, 2**32), got -5 (a number)",
     ["{options}", "--seed", "-5"],
     "--seed: expected a seed in [0, 2**32), got -5 (a number)"),
    ({"event_file": "{run}/gone.yaml"},
     "event_file: expected an existing file, got '{run}/gone.yaml': no such file",
     ["{options}", "-ef", "{run}/gone.yaml"],
     "-ef/--event_file: expected an existing file, got '{run}/gone.yaml': no such file"),
    ({"training_file": "{run}"},
     "training_file: expected a file, got '{run}': not a regular file",
     ["{options}", "-tf", "{run}"],
     "-tf/--training_file: expected a file, got '{run}': not a regular file"),
    ({"validation_file": "{run}/gone.h5"},
     "validation_file: expected an existing file, got '{run}/gone.h5': no such file",
     ["{options}", "-vf", "{run}/gone.h5"],
     "-vf/--validation_file: expected an existing file, got '{run}/gone.h5': no such file"),
]


@pytest.mark.parametrize(("change", "line", "argv", "flag_line"), BAD_ARGUMENTS,
                         ids=[line.split(":")[0] for _, line, _, _ in BAD_ARGUMENTS])
def test_a_bad_argument_names_the_keyword_from_python_and_the_flag_from_the_command(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str],
    change: dict, line: str, argv: list[str], flag_line: str
) -> None:
    from spanet_lite.errors import InputError
    from spanet_lite.training.run import train

    files = {"options": write_options(tmp_path, generated_tth), "run": tmp_path / "run"}
    files["run"].mkdir()
    given = {"options": "{options}", **change}
    arguments = {key: value.format(**files) if isinstance(value, str) else value
                 for key, value in given.items()}
    with pytest.raises(InputError) as raised:
        train(**arguments, log_dir=tmp_path / "runs")
    assert str(raised.value) == line.format(**files)
    assert run_failing([part.format(**files) for part in argv], capsys, tmp_path / "runs") == (
        f"spanet-train: error: {flag_line.format(**files)}"
    )


# train()'s own arguments of a type no flag can give (argparse reads --gpus as an int): each
# one line naming the keyword, before any file is read.
WRONG_TYPES = [
    ({"gpus": "1"}, "gpus: expected an integer, got '1'"),
    ({"nodes": "2"}, "nodes: expected an integer, got '2'"),
    ({"processes": 1.5}, "processes: expected an integer, got 1.5 (a number)"),
    ({"name": 5}, "name: expected a folder name, got 5 (a number)"),
    ({"log_dir": None}, "log_dir: expected a folder path, got nothing"),
    ({"resume": 5}, "resume: expected a run directory or a .ckpt file, got 5 (a number)"),
    ({"checkpoint": 5}, "checkpoint: expected a .ckpt file, got 5 (a number)"),
    ({"state_dict": 5}, "state_dict: expected a .ckpt file, got 5 (a number)"),
    ({"callbacks": 3}, "callbacks: expected a list of Lightning callbacks, got 3 (a number)"),
    ({"callbacks": [print]}, "callbacks[0]: expected a Lightning callback (lightning.pytorch.Callback), got "
                             "<built-in function print> (builtin_function_or_method)"),
]


@pytest.mark.parametrize(("change", "line"), WRONG_TYPES, ids=[line.split(":")[0] for _, line in WRONG_TYPES])
def test_an_argument_of_the_wrong_type_is_one_line_naming_the_keyword(
    tmp_path: Path, generated_tth: Path, change: dict, line: str
) -> None:
    from spanet_lite.errors import InputError
    from spanet_lite.training.run import train

    arguments = {"log_dir": tmp_path / "runs", **change}
    with pytest.raises(InputError) as raised:
        train(write_options(tmp_path, generated_tth), **arguments)
    assert str(raised.value) == line
    assert not (tmp_path / "runs").exists()


def test_whole_float_device_counts_reach_lightning_as_integers(tmp_path: Path) -> None:
    """A notebook's ``processes=2.0`` is 2 processes (the integer rule options follow), and the
    run is handed the int: Lightning would take ``devices=2.0`` for something else."""
    from spanet_lite.training.plan import check_arguments

    arguments = check_arguments(
        "options.json", event_file=None, gpus=0.0, nodes=1.0, processes=2.0, log_dir=tmp_path, name=None,
        resume=None, fast_dev_run=True, time_limit=None, checkpoint=None, state_dict=None,
        freeze_state_dict=False,
    )
    assert (arguments.gpus, arguments.processes, arguments.nodes) == (0, 2, 1)
    assert all(type(value) is int for value in (arguments.gpus, arguments.processes, arguments.nodes))


def test_one_callback_is_taken_as_lightnings_trainer_takes_it(tmp_path: Path) -> None:
    """``callbacks=MyCallback()`` (Lightning's Trainer takes one) was a TypeError from tuple()."""
    from lightning.pytorch.callbacks import Callback

    from spanet_lite.training.plan import check_arguments

    one = Callback()
    common = dict(event_file=None, gpus=None, nodes=1, processes=None, log_dir=tmp_path, name=None,
                  resume=None, fast_dev_run=True, time_limit=None, checkpoint=None, state_dict=None,
                  freeze_state_dict=False)
    assert check_arguments("options.json", callbacks=one, **common).callbacks == (one,)
    assert check_arguments("options.json", callbacks=[one], **common).callbacks == (one,)
    assert check_arguments("options.json", **common).callbacks == ()


@pytest.mark.parametrize("name", ["../../escape", "..", "a/b"])
def test_a_run_name_that_leaves_the_log_directory_is_one_line(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    options = write_options(tmp_path, generated_tth)
    line = run_failing([str(options), "-n", name], capsys, tmp_path / "runs")
    assert line == (
        "spanet-train: error: -n/--name: expected a folder name without / or .. "
        f"(runs go to <log_dir>/<name>/version_N), got {name!r}"
    )


@pytest.mark.parametrize(("name", "flag"), [("taken", "-n/--name"), (None, "-l/--log_dir")])
def test_a_file_where_the_runs_folder_goes_is_one_line_before_the_data_is_read(
    tmp_path: Path, generated_tth: Path, capsys: pytest.CaptureFixture[str], name: str | None, flag: str
) -> None:
    """<log_dir>/<name> (by default the event file's name) being a file was found only when the
    run directory was made, after the data was read: an OS error, exit 74."""
    from spanet_lite.errors import InputError
    from spanet_lite.training.run import train

    options, runs = write_options(tmp_path, generated_tth), tmp_path / "runs"
    taken = runs / (name or "semi_leptonic_ttH")
    runs.mkdir()
    taken.write_text("not a folder\n")
    line = f"{taken}: {{}}: expected a path whose parent is a folder, got {taken} is a file"
    with pytest.raises(InputError) as raised:
        train(options, log_dir=runs, name=name)
    assert str(raised.value) == line.format("name" if name else "log_dir")
    code = main([str(options), "-l", str(runs), "--quiet", *(["-n", name] if name else [])])
    captured = capsys.readouterr()
    assert (code, captured.err) == (2, f"spanet-train: error: {line.format(flag)}\n")
    assert [path.name for path in runs.iterdir()] == [taken.name]


BUNDLED = sorted(path.parent.name for path in (REPO_ROOT / "data").glob("*/example.h5"))
"""The topologies of the bundled 10,000-event files, ``data/<name>/example.h5``."""


def test_every_bundled_dataset_has_an_example_options_file_like_the_others() -> None:
    """A bundled file without options is one ``spanet-train`` cannot start from as the README shows;
    the examples differ only in their files (README: 20 epochs, 32 wide, batch 256, seed 1)."""
    assert BUNDLED
    examples = sorted(path.parent.name for path in (REPO_ROOT / "options_files").glob("*/example.json"))
    assert examples == BUNDLED
    rest = []
    for name in BUNDLED:
        values = json.loads((REPO_ROOT / "options_files" / name / "example.json").read_text(encoding="utf-8"))
        assert values.pop("event_info_file") == f"./event_files/{name}.yaml"
        assert values.pop("training_file") == f"./data/{name}/example.h5"
        rest.append(values)
    assert all(values == rest[0] for values in rest)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_example_trains(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One training and one validation batch of each example, from the repository root as the
    README runs them (its paths are relative to the working directory, as SPANet's are)."""
    monkeypatch.chdir(REPO_ROOT)
    assert main([f"options_files/{name}/example.json", "--fast-dev-run", "--quiet"]) == 0
    assert "Traceback" not in capsys.readouterr().err
