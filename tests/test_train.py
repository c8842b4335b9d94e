"""`train()`: the run directory, exact resumption after Ctrl-C or SIGKILL, and what users see.

Every run here trains a 16-wide network on 300 events of the suite's generated ttH file
(``generated_tth`` in tests/conftest.py, options in tests/_train_helpers.py): a few seconds each.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from _train_helpers import network_weights, write_options
from lightning.pytorch.callbacks import Callback
from rich.console import Console

from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.training.run import RunResult, train

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


class CtrlCAt(Callback):
    """Presses Ctrl-C (raises SIGINT in this process) after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            signal.raise_signal(signal.SIGINT)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, generated_tth: Path) -> dict[str, Any]:
    """One uninterrupted 2-epoch run and one pressed Ctrl-C in its second epoch (same seed)."""
    root = tmp_path_factory.mktemp("train")
    options = write_options(root, generated_tth)
    output = io.StringIO()
    straight = train(options, log_dir=root / "runs", name="tiny", console=Console(file=output, width=200))
    stopped = train(options, log_dir=root / "runs", name="tiny", callbacks=[CtrlCAt(epoch=1, batch=1)])
    return {
        "root": root,
        "options": options,
        "straight": straight,
        "stopped": stopped,
        "output": output.getvalue(),
    }


def test_run_directory_holds_everything_needed_to_use_the_run(
    workspace: dict[str, Any], generated_tth: Path
) -> None:
    result: RunResult = workspace["straight"]
    run = result.run_dir
    assert run == workspace["root"] / "runs" / "tiny" / "version_0"
    expected = ["checkpoints", "event_file.yaml", "metrics.csv", "options.json", "statistics.json"]
    if importlib.util.find_spec("tensorboard") is not None:
        expected.append("tensorboard")  # TensorBoard logs only where the package is installed
    assert sorted(p.name for p in run.iterdir()) == expected
    assert (run / "event_file.yaml").read_bytes() == (generated_tth / "semi_leptonic_ttH.yaml").read_bytes()
    options = json.loads((run / "options.json").read_text())
    assert options["hidden_dim"] == 16 and options["epochs"] == 2
    assert Path(options["training_file"]).is_absolute()  # a run resumes from any directory
    statistics = DatasetStatistics.load(run / "statistics.json")
    assert statistics.num_classes == {"EVENT/signal": 2}
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]

    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    hyper = checkpoint["hyper_parameters"]
    assert hyper["event_file_text"] == (generated_tth / "semi_leptonic_ttH.yaml").read_text()
    assert hyper["options"] == options
    assert hyper["statistics"] == statistics.to_dict()
    assert checkpoint["state_dict"] and all(k.startswith("network.") for k in checkpoint["state_dict"])
    assert checkpoint["epoch"] == 1 and result.epochs_completed == 2 and result.stopped is None


def test_metrics_csv_has_every_loss_term_and_validation_metric_per_epoch(workspace: dict[str, Any]) -> None:
    rows = read_metrics(workspace["straight"].run_dir)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    columns = set(rows[0])
    for stage in ("train", "val"):
        for term in (
            "total_loss",
            "assignment_loss",
            "detection_loss",
            "regression_loss",
            "classification_loss",
            "assignment_loss/ht",
            "detection_loss/h",
            "regression_loss/EVENT/neutrino_px",
            "classification_loss/EVENT/signal",
        ):
            assert f"{stage}/{term}" in columns
    for metric in (
        "event_purity",
        "particle_purity",
        "particle_purity/ht",
        "regression_error",
        "classification_accuracy",
    ):
        assert f"val/{metric}" in columns
    for row in rows:
        assert 0.0 <= float(row["val/event_purity"]) <= 1.0
        assert 0.0 <= float(row["val/classification_accuracy"]) <= 1.0
        assert float(row["train/total_loss"]) > 0
    # The learning rate follows warm-up + cosine: back near zero after the last step.
    assert float(rows[1]["lr"]) < float(rows[0]["lr"])


def test_best_checkpoint_is_the_epoch_with_the_highest_validation_event_purity(
    workspace: dict[str, Any],
) -> None:
    result: RunResult = workspace["straight"]
    rows = read_metrics(result.run_dir)
    purities = [float(row["val/event_purity"]) for row in rows]
    assert result.monitor == "val/event_purity"
    assert result.best_value == pytest.approx(max(purities))
    assert result.best_epoch == purities.index(max(purities))
    best = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)
    assert best["epoch"] == result.best_epoch


def test_plain_output_is_one_line_per_epoch_then_a_summary(workspace: dict[str, Any]) -> None:
    lines = workspace["output"].splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    assert all("purity" in line and "best purity" in line for line in epoch_lines)
    assert "\r" not in workspace["output"]  # no progress bars when the console is not a terminal
    assert str(workspace["straight"].run_dir) in workspace["output"]
    assert "best checkpoint" in workspace["output"]


def test_a_second_run_gets_a_new_version_and_leaves_the_first_untouched(workspace: dict[str, Any]) -> None:
    first, second = workspace["straight"].run_dir, workspace["stopped"].run_dir
    assert (first.name, second.name) == ("version_0", "version_1")
    assert len(read_metrics(first)) == 2


def test_ctrl_c_saves_a_resumable_checkpoint_and_stops(workspace: dict[str, Any]) -> None:
    stopped: RunResult = workspace["stopped"]
    assert stopped.stopped == "interrupted"
    assert stopped.resume_checkpoint == stopped.run_dir / "checkpoints" / "interrupted.ckpt"
    checkpoint = torch.load(stopped.resume_checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] == 4 + 3  # epoch 0, then 3 batches
    assert [row["epoch"] for row in read_metrics(stopped.run_dir)] == ["0"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def _same_weights(a: Path, b: Path) -> None:
    first, second = network_weights(a), network_weights(b)
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)


def test_resume_after_ctrl_c_reaches_the_same_weights_as_an_uninterrupted_run(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(workspace["stopped"].run_dir, run)
    resumed = train(resume=run)
    assert resumed.run_dir == run.resolve() and resumed.stopped is None
    assert not (run / "checkpoints" / "interrupted.ckpt").exists()  # superseded by last.ckpt
    assert [row["epoch"] for row in read_metrics(run)] == ["0", "1"]
    _same_weights(resumed.last_checkpoint, workspace["straight"].last_checkpoint)
    # The interrupted epoch's training means cover its batches before and after the stop.
    for mine, straight in zip(read_metrics(run), read_metrics(workspace["straight"].run_dir), strict=True):
        assert float(mine["train/total_loss"]) == pytest.approx(float(straight["train/total_loss"]), rel=1e-5)


def test_a_stop_at_the_last_batch_of_an_epoch_ends_the_epoch_first_and_resumes_exactly(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    """A stop made at an epoch's last batch (Ctrl-C, SIGTERM, --time-limit) saved interrupted.ckpt
    before the epoch's validation; resumed from it, the run validated nothing for that epoch,
    trained no further epoch and recorded an empty row."""
    stopped = train(workspace["options"], log_dir=tmp_path / "runs", name="tiny", callbacks=[CtrlCAt(0, 2)])
    assert (stopped.stopped, stopped.signal_number) == ("interrupted", signal.SIGINT)
    assert stopped.resume_checkpoint == stopped.last_checkpoint and stopped.epochs_completed == 1
    assert not (stopped.run_dir / "checkpoints" / "interrupted.ckpt").exists()
    resumed = train(resume=stopped.run_dir)
    assert resumed.stopped is None and resumed.epochs_completed == 2
    _same_weights(resumed.last_checkpoint, workspace["straight"].last_checkpoint)
    straight = read_metrics(workspace["straight"].run_dir)
    assert [row["step"] for row in read_metrics(stopped.run_dir)] == [row["step"] for row in straight]
    assert read_metrics(stopped.run_dir)[1]["val/event_purity"] == straight[1]["val/event_purity"]


def test_a_first_run_from_a_relative_log_dir_and_its_resume_name_the_run_alike(
    workspace: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_dir`` is absolute and resolved both times (it was ``runs/tiny/version_0`` after the
    first run and absolute after the resume); the end-of-run table shows it from the working
    directory both times, so the ``--resume`` it prints works as typed."""
    monkeypatch.chdir(tmp_path)
    output = io.StringIO()
    console = Console(file=output, width=300)
    first = train(workspace["options"], log_dir="runs", name="tiny", epochs=1, console=console)
    resumed = train(resume="runs/tiny/version_0", epochs=2, console=console)
    folder = (tmp_path / "runs" / "tiny" / "version_0").resolve()
    assert first.run_dir == resumed.run_dir == folder
    assert first.last_checkpoint == resumed.last_checkpoint == folder / "checkpoints" / "last.ckpt"
    rows = [" ".join(line.split()) for line in output.getvalue().splitlines() if "run directory" in line]
    assert rows == ["│ run directory │ runs/tiny/version_0 │"] * 2


def test_resume_after_sigkill_continues_from_the_last_completed_epoch(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(workspace["stopped"].run_dir, run)
    (run / "checkpoints" / "interrupted.ckpt").unlink()  # a killed run never wrote it
    resumed = train(resume=run / "checkpoints" / "last.ckpt")
    assert resumed.run_dir == run.resolve()
    straight = workspace["straight"]
    _same_weights(resumed.last_checkpoint, straight.last_checkpoint)
    assert read_metrics(run)[1]["val/event_purity"] == read_metrics(straight.run_dir)[1]["val/event_purity"]


def test_resuming_a_run_from_a_checkpoint_behind_its_later_epochs_is_one_line(
    workspace: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resume RUN/checkpoints/best.ckpt of a run whose best epoch is not its last trained on from
    there in the run's folder, over the later epochs' last.ckpt and metrics.csv rows."""
    from spanet_lite.cli.train import main
    from spanet_lite.errors import InputError

    run = tmp_path / "run"
    shutil.copytree(workspace["straight"].run_dir, run)
    early = run / "checkpoints" / "early.ckpt"  # a best.ckpt of epoch 0, whatever this run's best was
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    state["callbacks"]["RunRecorder"]["rows"] = state["callbacks"]["RunRecorder"]["rows"][:1]
    torch.save(state, early)
    kept = (run / "metrics.csv", run / "checkpoints" / "last.ckpt")
    before = [path.read_bytes() for path in kept]
    line = (f"{early.resolve()}: {{}}: expected a checkpoint as far as the run got (2 epochs in its "
            "metrics.csv; resume the run directory itself), got one after 1 epoch(s), from which the run "
            "would train over its later epochs' last.ckpt and metrics.csv rows (to train on from it, start a "
            "new run with checkpoint, -cf)")
    with pytest.raises(InputError) as raised:
        train(resume=early, epochs=3)
    assert str(raised.value) == line.format("resume")
    assert main(["--resume", str(early), "-e", "3", "-q"]) == 2
    assert capsys.readouterr().err == f"spanet-train: error: {line.format('--resume')}\n"
    assert [path.read_bytes() for path in kept] == before


class FirstRates(Callback):
    """Records the learning rate and weight decay of each parameter group at the first step."""

    def __init__(self) -> None:
        self.groups: list[tuple[float, float]] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if not self.groups:
            self.groups = [(g["lr"], g["weight_decay"]) for g in trainer.optimizers[0].param_groups]


def test_resume_trains_at_the_learning_rate_and_weight_decay_it_was_given(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    """Lightning restored the old run's rate and decay into the optimiser and schedule: with
    ``--resume --lr`` the options (and options table) said one rate and the steps used another."""
    import math

    from spanet_lite.training.schedules import warmup_cosine_factor

    run = tmp_path / "run"
    shutil.copytree(workspace["straight"].run_dir, run)
    rates = FirstRates()
    train(resume=run, epochs=3, learning_rate=0.0005, option_values={"l2_penalty": 0.01}, callbacks=[rates])
    # step 8 of a 12-step schedule (4 per epoch) stretched from 8, with 2 warm-up steps, one cycle
    factor = warmup_cosine_factor(8, total_steps=12, warmup_steps=2, cycles=1)
    assert math.isclose(rates.groups[0][0], 0.0005 * factor) and rates.groups[0][1] == 0.01
    assert [decay for _, decay in rates.groups[1:]] == [0.0]  # biases and norms never decay
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["lr_schedulers"][0]["base_lrs"] == [0.0005] * len(rates.groups)
    recorded = json.loads((run / "options.json").read_text())  # the run's record follows its options
    assert (recorded["epochs"], recorded["learning_rate"], recorded["l2_penalty"]) == (3, 0.0005, 0.01)


def test_resume_refuses_a_training_file_replaced_since_the_run_started(
    generated_tth: Path, tmp_path: Path
) -> None:
    """Same path, other events: resuming would train on them under the old data's statistics."""
    from spanet_lite.errors import InputError
    from spanet_lite.physics.generator import PROCESSES, write_file

    data = tmp_path / "data"
    shutil.copytree(generated_tth, data)
    stopped = train(write_options(tmp_path, data, epochs=2), log_dir=tmp_path / "runs", name="tiny",
                    callbacks=[CtrlCAt(epoch=0, batch=1)])
    assert stopped.stopped is not None
    recorded = json.loads((stopped.run_dir / "statistics.json").read_text())["num_training_events"]
    (data / "example.h5").unlink()
    write_file(data / "example.h5", PROCESSES["ttH_semilep"], 300, 9)  # replaced: other, fewer events
    with pytest.raises(InputError, match=rf"example\.h5: expected the training data this run started from "
                       rf"\({recorded:,} training events\), got \d+ training events: the file changed since"):
        train(resume=stopped.run_dir)


def test_cf_starts_a_new_run_from_a_checkpoint_and_trains_the_epochs_it_has_left(
    workspace: dict[str, Any], generated_tth: Path, tmp_path: Path
) -> None:
    """SPANet's -cf: the options file decides the run (here one epoch more than the checkpoint
    did); the network, its normalisation and the optimiser state come from the checkpoint."""
    straight = workspace["straight"]
    options = write_options(tmp_path, generated_tth, epochs=3)
    restored = train(options, log_dir=tmp_path / "runs", name="tiny", checkpoint=straight.last_checkpoint)
    assert restored.run_dir != straight.run_dir and restored.epochs_completed == 3
    assert json.loads((restored.run_dir / "statistics.json").read_text()) == json.loads(
        (straight.run_dir / "statistics.json").read_text())
    assert torch.load(restored.last_checkpoint, map_location="cpu", weights_only=False)["epoch"] == 2


def test_cf_chooses_best_ckpt_among_the_epochs_the_new_run_trains(
    workspace: dict[str, Any], generated_tth: Path, tmp_path: Path
) -> None:
    """The checkpoint's rows start the new run's metrics.csv, but not its best: a run whose epochs
    never beat the other run's best wrote no best.ckpt, and named an epoch of the other run."""
    state = torch.load(workspace["straight"].last_checkpoint, map_location="cpu", weights_only=False)
    state["callbacks"]["RunRecorder"].update(best_value=2.0, best_epoch=0)  # no purity beats it
    unbeatable = tmp_path / "unbeatable.ckpt"
    torch.save(state, unbeatable)
    options = write_options(tmp_path, generated_tth, epochs=3)
    restored = train(options, log_dir=tmp_path / "runs", name="tiny", checkpoint=unbeatable)
    assert [row["epoch"] for row in read_metrics(restored.run_dir)] == ["0", "1", "2"]
    assert restored.best_epoch == 2 and restored.best_value == restored.metrics["val/event_purity"]
    assert restored.best_checkpoint == restored.run_dir / "checkpoints" / "best.ckpt"


def test_cf_alone_starts_a_new_run_with_the_checkpoints_options_and_leaves_its_run_alone(
    workspace: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPANet's -cf always makes a new version under -l/-n; without -of ours takes the
    checkpoint's options (SPANet's would be its defaults) and says so."""
    straight = workspace["straight"]
    before = straight.last_checkpoint.read_bytes()
    output = io.StringIO()
    restored = train(checkpoint=straight.last_checkpoint, epochs=3, log_dir=tmp_path / "runs", name="again",
                     console=Console(file=output, width=200))
    assert restored.run_dir == tmp_path / "runs" / "again" / "version_0" and restored.epochs_completed == 3
    assert straight.last_checkpoint.read_bytes() == before
    assert "a checkpoint without an options file: the new run takes the checkpoint's own options" in (
        output.getvalue())
    assert json.loads((restored.run_dir / "options.json").read_text())["hidden_dim"] == 16
    # Without -n, the run is named after the event file, as a run from an options file is.
    unnamed = train(checkpoint=straight.last_checkpoint, epochs=3, log_dir=tmp_path / "unnamed")
    assert unnamed.run_dir == tmp_path / "unnamed" / "semi_leptonic_ttH" / "version_0"
    from spanet_lite.cli.train import main
    from spanet_lite.errors import InputError

    # Found once the checkpoint is read: train() names its keyword, spanet-train the flag.
    too_few = ("expected more than 2 epochs: the checkpoint has done 2, and a new run from it trains the "
               "epochs after those, got 2")
    with pytest.raises(InputError) as raised:
        train(checkpoint=straight.last_checkpoint, epochs=2, log_dir=tmp_path / "other")
    assert str(raised.value) == f"epochs: {too_few}"
    capsys.readouterr()
    assert main(["-cf", str(straight.last_checkpoint), "-e", "2", "-l", str(tmp_path / "other")]) == 2
    assert capsys.readouterr().err == f"spanet-train: error: -e/--epochs: {too_few}\n"
    other = Path(__file__).resolve().parents[1] / "event_files" / "hh_4b.yaml"
    another = ("expected the topology of the event file last.ckpt's network was built for, got another "
               "topology (to train on it, start a new run from an options file with the checkpoint as "
               "initial weights)")
    with pytest.raises(InputError) as raised:
        train(checkpoint=straight.last_checkpoint, event_file=other, epochs=3, log_dir=tmp_path / "other")
    assert str(raised.value) == f"{other}: event_file: {another}"
    assert main(["-cf", str(straight.last_checkpoint), "-ef", str(other), "-e", "3",
                 "-l", str(tmp_path / "other")]) == 2
    assert capsys.readouterr().err == f"spanet-train: error: {other}: -ef/--event_file: {another}\n"
    assert not (tmp_path / "other").exists()


def test_cf_with_options_that_build_another_network_is_one_line(
    workspace: dict[str, Any], generated_tth: Path, tmp_path: Path
) -> None:
    from spanet_lite.errors import InputError

    checkpoint = workspace["straight"].last_checkpoint
    options = write_options(tmp_path, generated_tth, hidden_dim=8, epochs=3)
    with pytest.raises(InputError) as raised:
        train(options, log_dir=tmp_path / "runs", checkpoint=checkpoint)
    assert re.fullmatch(rf"{re.escape(str(checkpoint))}: state_dict: expected weights of the network these "
                        r"options build, got [1-9]\d* tensors of another shape, \d+ missing, \d+ unexpected "
                        r"\(e\.g\. network\.\S+\)", str(raised.value))
    assert not (tmp_path / "runs").exists()


def test_continuing_with_other_steps_per_epoch_is_one_line_before_anything_is_written(
    workspace: dict[str, Any], generated_tth: Path, tmp_path: Path
) -> None:
    """The restored schedule counts optimiser steps: --resume with larger batches (or -cf on
    fewer events) reached its end early and trained the epochs left at a learning rate of 0."""
    from spanet_lite.errors import InputError
    from spanet_lite.training.plan import read_checkpoint_facts

    straight = workspace["straight"]
    facts = read_checkpoint_facts(straight.last_checkpoint)
    assert (facts.steps_per_epoch, facts.processes) == (4, 1)  # 240 events, batches of 64, one process
    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*"))
    wanted = (r"last\.ckpt: batch_size: expected the 4 training steps per epoch of the checkpoint's run "
              r"\(batch_size 64: .*, got 2 \(batch_size 128, example\.h5\)$")
    with pytest.raises(InputError, match=wanted):
        train(resume=run, epochs=3, batch_size=128)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*")) == before
    fewer = write_options(tmp_path, generated_tth, epochs=3, dataset_limit=0.15)  # 120 training events
    with pytest.raises(InputError, match=r"last\.ckpt: expected the 4 training steps per epoch .*, got 2 "):
        train(fewer, log_dir=tmp_path / "runs", checkpoint=straight.last_checkpoint)
    assert not (tmp_path / "runs").exists()


def test_continuing_with_another_optimizer_or_event_selection_is_one_line(
    workspace: dict[str, Any], generated_tth: Path, tmp_path: Path
) -> None:
    """-cf into SGD was a KeyError traceback from Lightning's optimiser restore; --resume -r 5
    trained on as many events as before but other ones, some of them validation events before."""
    from spanet_lite.errors import InputError

    straight = workspace["straight"]
    sgd = write_options(tmp_path, generated_tth, epochs=3, optimizer="SGD")
    with pytest.raises(InputError, match=r"^optimizer: expected 'AdamW', as in the checkpoint's .*'SGD'$"):
        train(sgd, log_dir=tmp_path / "runs", checkpoint=straight.last_checkpoint)
    # An options file edited to switch normalisation off fed the restored weights raw inputs.
    raw = write_options(tmp_path, generated_tth, epochs=3, normalize_features=False)
    with pytest.raises(InputError, match=r"^normalize_features: expected True, as in the .*, got False$"):
        train(raw, log_dir=tmp_path / "runs", checkpoint=straight.last_checkpoint)
    assert not (tmp_path / "runs").exists()
    run = tmp_path / "run"
    shutil.copytree(straight.run_dir, run)
    with pytest.raises(InputError, match=r"^dataset_randomization: expected 0, as in the checkpoint's run"):
        train(resume=run, epochs=3, option_values={"dataset_randomization": 5})
    with pytest.raises(InputError, match=r"^partial_events: expected True, as in the checkpoint's run"):
        train(resume=run, epochs=3, option_values={"partial_events": False})
    assert len(read_metrics(run)) == 2


def test_cf_with_a_checkpoint_spanet_lite_did_not_write_is_one_line(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    from spanet_lite.errors import InputError

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2)}, "hyper_parameters": {"lr": 0.1}}, foreign)
    with pytest.raises(InputError) as raised:
        train(workspace["options"], log_dir=tmp_path / "runs", checkpoint=foreign)
    assert str(raised.value) == (f"{foreign.resolve()}: hyper_parameters: expected a spanet_lite checkpoint, "
                                 "got no event_file_text, options, statistics")


def test_a_keyword_of_the_wrong_type_is_one_line_before_any_run_folder(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    from spanet_lite.errors import InputError

    with pytest.raises(InputError, match=r"^epochs: expected an integer, got 1.5"):
        train(workspace["options"], epochs=1.5, log_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_options_may_be_a_dict_typed_like_the_files_json(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    values = json.loads(workspace["options"].read_text())
    result = train({**values, "epochs": 1.0}, log_dir=tmp_path / "runs", fast_dev_run=True)
    assert result.run_dir is None and result.stopped is None


def test_fast_dev_run_trains_one_batch_and_writes_nothing(workspace: dict[str, Any], tmp_path: Path) -> None:
    result = train(workspace["options"], log_dir=tmp_path / "runs", fast_dev_run=True)
    assert result.run_dir is None and result.last_checkpoint is None
    assert not (tmp_path / "runs").exists()


def test_an_optimizer_without_weight_decay_trains(generated_tth: Path, tmp_path: Path) -> None:
    """Rprop takes no weight_decay (build_optimizer leaves it out); recording each group's decay
    for on_train_start read it anyway and every Rprop run stopped with KeyError: 'weight_decay'."""
    options = write_options(tmp_path, generated_tth, epochs=1, optimizer="Rprop")
    result = train(options, log_dir=tmp_path / "runs", fast_dev_run=True)
    assert result.run_dir is None and result.stopped is None


def test_train_gives_the_callers_thread_count_and_lightning_logging_back(
    workspace: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook that chose one thread and Lightning's INFO logging found, after train(), one
    thread per core and Lightning at WARNING for the rest of its session."""
    import logging

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)  # a run on the CPU takes every core it is given
    lightning_logger = logging.getLogger("lightning.pytorch")
    threads, level = torch.get_num_threads(), lightning_logger.level
    try:
        torch.set_num_threads(1)
        lightning_logger.setLevel(logging.INFO)
        train(workspace["options"], log_dir=tmp_path / "runs", fast_dev_run=True)
        assert torch.get_num_threads() == 1
        assert lightning_logger.level == logging.INFO
    finally:
        torch.set_num_threads(threads)
        lightning_logger.setLevel(level)



@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch before 2.9")
def test_train_on_the_cpu_leaves_torchs_per_backend_tf32_settings_alone(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    """torch 2.9's per-backend switch (``torch.backends.cuda.matmul.fp32_precision = "tf32"``, as
    a notebook shared with a GPU machine sets it) makes torch.get_float32_matmul_precision() raise
    RuntimeError ("mix of the legacy and new APIs"); train() read it to restore it, so every run
    from such a notebook was that traceback, on the CPU too, where TF32 is not used at all."""
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    try:
        matmul.fp32_precision = "tf32"
        train(workspace["options"], log_dir=tmp_path / "runs", fast_dev_run=True)
        assert matmul.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision = before


def test_a_gpu_run_gives_the_callers_tf32_settings_back_whichever_api_set_them() -> None:
    """A GPU run turns TF32 on through torch's legacy switches (Lightning reads them back) and, on
    the way out, restores the caller's: the legacy values, or torch 2.9's per-backend ones where
    the legacy getters refuse to read a mix. Each case in a fresh process: the switches are
    process-wide and a mix cannot be undone from inside."""
    script = (
        "import sys, torch\n"
        "from spanet_lite.training.fit import _run_settings\n"
        "from spanet_lite.training.hardware import Hardware\n"
        "b = torch.backends\n"
        "exec(sys.argv[1])\n"
        "def state():\n"
        "    if sys.argv[2] == 'new':\n"
        "        switches = (b.cuda.matmul, b.mkldnn.matmul, b.cudnn.conv, b.cudnn.rnn)\n"
        "        return [switch.fp32_precision for switch in switches]\n"
        "    return [torch.get_float32_matmul_precision(), b.cudnn.allow_tf32]\n"
        "before = state()\n"
        "with _run_settings(Hardware('gpu', 1, 1, '32-true', None, None)):\n"
        "    during = [torch.get_float32_matmul_precision(), b.cudnn.allow_tf32]\n"
        "print(before == state(), during)\n"
    )
    cases = [("torch.set_float32_matmul_precision('medium'); b.cudnn.allow_tf32 = False", "legacy")]
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        cases += [("b.cuda.matmul.fp32_precision = 'tf32'", "new"), ("b.fp32_precision = 'ieee'", "new")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for setup, api in cases:
        done = subprocess.run([sys.executable, "-c", script, setup, api], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.stdout == "True ['high', True]\n", (setup, done.stderr[-2000:])

def test_a_compile_that_fails_mid_run_is_a_note_of_the_run_not_a_print(
    workspace: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Without a console the module printed its 'training eagerly' line to stdout (its default,
    print), into a notebook's cell or a batch job's log, and RunResult.notes lacked it."""
    from spanet_lite.training import compilation

    def broken_compile(model: object, **options: object) -> Any:
        def fail(*args: object, **kwargs: object) -> Any:
            raise RuntimeError("InductorError: C++ compile error\nfull log follows")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(compilation, "cxx_compiler", lambda: "/usr/bin/c++")
    result = train(workspace["options"], log_dir=tmp_path, option_values={"compile": True, "epochs": 1})
    assert result.stopped is None and result.epochs_completed == 1
    failed = "torch.compile failed (RuntimeError: InductorError: C++ compile error); training eagerly"
    assert failed in result.notes
    assert capsys.readouterr().out == ""


def test_a_run_without_a_console_keeps_the_notes_a_console_would_have_shown(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    """From a notebook (no console) SPANet keys without effect and a GPU asked for on a machine
    without one were said nowhere; RunResult.notes holds the same lines a console prints."""
    values = {"position_embedding_dim": 32, "num_gpu": 1}
    quiet = train(workspace["options"], log_dir=tmp_path / "a", fast_dev_run=True, option_values=values)
    output = io.StringIO()
    shown = train(workspace["options"], log_dir=tmp_path / "b", fast_dev_run=True, option_values=values,
                  console=Console(file=output, width=400), quiet=True)
    assert quiet.notes == shown.notes
    assert quiet.notes[0].startswith("SPANet options without effect here (built instead in parentheses): "
                                     "position_embedding_dim=32")
    if not torch.cuda.is_available():
        assert any("num_gpu = 1 in the options" in note for note in quiet.notes)
    assert all(note in output.getvalue() for note in shown.notes)


def test_resume_after_ctrl_c_with_dropout_reaches_the_same_weights(
    generated_tth: Path, tmp_path: Path
) -> None:
    """Dropout draws from torch's generator in every training step; the resumed run skips the
    batches done before the stop, so it must also continue from the generator state reached there
    (it restarted from the epoch's seed and dropped other units: other weights)."""
    options = write_options(tmp_path, generated_tth, epochs=1, dropout=0.2)
    straight = train(options, log_dir=tmp_path / "runs", name="tiny")
    stopped = train(options, log_dir=tmp_path / "runs", name="tiny", callbacks=[CtrlCAt(epoch=0, batch=1)])
    assert stopped.stopped == "interrupted"
    resumed = train(resume=stopped.run_dir)
    _same_weights(resumed.last_checkpoint, straight.last_checkpoint)
