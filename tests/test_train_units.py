"""Small pieces of the training run, without training: durations, versions, CSV, best-by-value."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest
from rich.console import Console

from spanet_lite.training.interrupt import parse_time_limit
from spanet_lite.training.progress import epoch_line, summary_table
from spanet_lite.training.recorder import RunRecorder, create_version_dir, metrics_csv_text
from spanet_lite.training.run import RunResult


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (3600, 3600.0),
        ("90s", 90.0),
        ("45m", 2700.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        ("01:30:00", 5400.0),
        ("10:00", 600.0),
        ("1:00:00:00", 86400.0),
        ("120", 120.0),
    ],
)
def test_time_limits_read_like_a_batch_system_writes_them(text: str | int, seconds: float) -> None:
    assert parse_time_limit(text) == seconds


def test_the_time_limit_help_names_every_colon_form_it_reads() -> None:
    """``-t 2:30`` is read as minutes and seconds (SLURM's reading), which a user who was told
    only ``HH:MM:SS`` would take for 2 h 30 min: the help names each form with what it means."""
    from spanet_lite.cli.train import build_parser

    action = next(a for a in build_parser()._actions if "--time_limit" in a.option_strings)
    assert parse_time_limit("10:00") == 600.0
    for form in ("DD:HH:MM:SS", "HH:MM:SS", "MM:SS"):
        assert re.search(rf"(?<![:\w]){form}", action.help or ""), form


@pytest.mark.parametrize("text", ["soon", "-5", "0", "1:2:3:4:5", "", "5x"])
def test_nonsense_or_non_positive_time_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time_limit(text)


def test_a_new_run_takes_the_first_version_after_the_highest(tmp_path: Path) -> None:
    (tmp_path / "version_0").mkdir()
    (tmp_path / "version_3").mkdir()
    (tmp_path / "version_x").mkdir()
    assert create_version_dir(tmp_path).name == "version_4"
    assert create_version_dir(tmp_path).name == "version_5"
    assert create_version_dir(tmp_path / "new").name == "version_0"


def test_metrics_csv_puts_bookkeeping_first_then_sorted_metrics_and_blanks_for_nan() -> None:
    rows = [
        {"epoch": 0, "step": 4, "val/event_purity": math.nan, "train/total_loss": 2.5, "lr": 0.001},
        {"epoch": 1, "step": 8, "val/event_purity": 0.25, "train/total_loss": 2.0, "lr": 0.0005},
    ]
    assert metrics_csv_text(rows).splitlines() == [
        "epoch,step,lr,train/total_loss,val/event_purity",
        "0,4,0.001,2.5,",
        "1,8,0.0005,2.0,0.25",
    ]


def test_best_is_chosen_by_value_and_nan_never_wins() -> None:
    recorder = RunRecorder(parent=Path("."), files={}, monitor="val/event_purity", mode="max")
    assert recorder.improved(math.nan)  # the first epoch is always the best so far
    recorder.best_value = 0.30
    assert recorder.improved(0.31) and not recorder.improved(0.30) and not recorder.improved(math.nan)
    assert not recorder.improved(0.1) and not recorder.improved(None)
    recorder.best_value = math.nan  # an undefined first value loses to any real one
    assert recorder.improved(0.0)
    lowest = RunRecorder(parent=Path("."), files={}, monitor="val/total_loss", mode="min")
    lowest.best_value = 2.0
    assert lowest.improved(1.9) and not lowest.improved(2.1)


def test_a_resumed_runs_time_column_goes_on_from_its_last_row(tmp_path: Path) -> None:
    """time_s restarted at 0 on --resume, so the first difference of successive rows (the
    per-epoch cost docs/training.md points to) came out negative."""
    from types import SimpleNamespace

    recorder = RunRecorder(parent=tmp_path, files={}, monitor="val/event_purity", mode="max",
                           run_dir=tmp_path, clock=lambda: 7.5)
    recorder.load_state_dict({"rows": [{"epoch": 0, "time_s": 40.0}, {"epoch": 1, "time_s": 80.25}]})
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=2, global_step=30, optimizers=[],
                              callback_metrics={}, is_global_zero=True, save_checkpoint=lambda path: None)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    recorder.on_train_epoch_end(trainer, None)
    assert [row["time_s"] for row in recorder.rows] == [40.0, 80.25, 87.75]


def test_epoch_line_names_losses_metrics_and_the_best_so_far_and_hides_absent_heads() -> None:
    row = {
        "epoch": 2,
        "train/total_loss": 3.25,
        "val/total_loss": 3.5,
        "train/regression_loss": 0.0,
        "val/regression_loss": 0.0,
        "val/event_purity": 0.41,
        "time_s": 12.3,
    }
    line = epoch_line(row, 10, "val/event_purity", 0.42, 1)
    assert line == "epoch 3/10  loss 3.2500 (val 3.5000)  purity 0.4100  best purity 0.4200 @ 2  12s"


def test_summary_table_shows_whole_checkpoint_paths_on_a_narrow_console() -> None:
    run_dir = Path("/data/analysis/ttH/runs/semi_leptonic_ttH_with_a_long_name/version_12")
    result = RunResult(
        run_dir=run_dir, best_checkpoint=run_dir / "checkpoints" / "best.ckpt",
        last_checkpoint=run_dir / "checkpoints" / "last.ckpt", monitor="val/event_purity",
        best_value=0.5, best_epoch=3, epochs_completed=5,
    )
    output = io.StringIO()
    Console(file=output, width=60).print(summary_table(result))
    # The value column folds long paths; glue its pieces back together (spaces dropped).
    rows = [line.split("│") for line in output.getvalue().splitlines() if line.count("│") == 3]
    values = "".join(row[2].strip() for row in rows)
    assert "…" not in output.getvalue()
    assert f"{run_dir}/checkpoints/best.ckpt(epoch4)" in values.replace(" ", "")
    assert f"{run_dir}/checkpoints/last.ckpt" in values


def test_a_stopped_ddp_run_says_to_resume_it_with_as_many_processes() -> None:
    """The processes share the training split, so ``--resume RUN`` without ``--processes 2`` (what
    the table said to type) took twice the steps per epoch and was refused."""
    from spanet_lite.training.fit import resume_flags
    from spanet_lite.training.hardware import Hardware

    assert resume_flags(Hardware("cpu", 2, 1, "32-true", chosen_by="processes")) == "--processes 2"
    assert resume_flags(Hardware("gpu", 4, 2, "bf16-mixed", chosen_by="gpus")) == "--gpus 4 --nodes 2"
    assert resume_flags(Hardware("gpu", 2, 1, "bf16-mixed")) == ""  # num_gpu: the run's options.json says
    assert resume_flags(Hardware("cpu", 1, 1, "32-true", chosen_by="processes")) == ""
    run_dir = Path("/runs/ttbar/version_0")
    result = RunResult(
        run_dir=run_dir, best_checkpoint=None, last_checkpoint=None, monitor="val/event_purity",
        best_value=None, best_epoch=None, epochs_completed=1, stopped="time limit reached",
        resume_flags="--processes 2",
    )
    output = io.StringIO()
    Console(file=output, width=200).print(summary_table(result))
    assert f"spanet-train --resume {run_dir} --processes 2" in output.getvalue()


def test_other_steps_per_epoch_name_the_processes_of_the_checkpoints_run(tmp_path: Path) -> None:
    """Resumed in one process, a two-process run's checkpoint was refused as 'the 22 steps of the
    checkpoint's run (batch_size 64), got 43 (batch_size 64)': nothing said what differed."""
    from types import SimpleNamespace

    from spanet_lite.errors import InputError
    from spanet_lite.training.fit import check_steps_per_epoch
    from spanet_lite.training.plan import CheckpointFacts

    resumed = CheckpointFacts(tmp_path / "last.ckpt", {"batch_size": 64}, "", {}, (), 1, {},
                              steps_per_epoch=22, processes=2)
    plan = SimpleNamespace(resumed=resumed, options=SimpleNamespace(batch_size=64),
                           training_file=tmp_path / "tt.h5")
    wanted = (r"the 22 training steps per epoch of the checkpoint's run "
              r"\(batch_size 64 x 2 processes: .*, got 43 \(batch_size 64, tt\.h5\)$")
    with pytest.raises(InputError, match=wanted):
        check_steps_per_epoch(plan, 43, 1)  # type: ignore[arg-type]


def test_validation_regression_error_and_accuracy_are_event_weighted() -> None:
    """The docs say every validation metric is weighted by the events' weights (and spanet-test's
    accuracy is); val/regression_error and val/classification_accuracy were plain means.
    Like spanet-test's summaries they take the events of positive weight only."""
    from types import SimpleNamespace

    import torch

    from spanet_lite.training.module import SpanetModule

    holder = SimpleNamespace(spec=SimpleNamespace(particles=[]), _gather=lambda tensor: tensor)
    record = {
        "weights": torch.tensor([3.0, 1.0, -2.0, 1.0]),
        "regressions": {"EVENT/x": torch.tensor([[1.0, 0.0], [-5.0, 0.0], [7.0, 0.0], [float("nan"), 0.0]])},
        "classifications": {"EVENT/c": torch.tensor([[1, 1], [0, 1], [0, 1], [0, -1]])},
    }
    metrics = SpanetModule._epoch_metrics(holder, [record])  # type: ignore[arg-type]
    assert metrics["regression_error/EVENT/x"] == pytest.approx((3 * 1 + 1 * 5) / 4)
    assert metrics["classification_accuracy/EVENT/c"] == pytest.approx(3 / 4)
    assert metrics["regression_error"] == pytest.approx(2.0)
    assert metrics["classification_accuracy"] == pytest.approx(0.75)


def test_validation_metrics_pair_symmetric_particles_targets_with_their_assignment():
    """val/regression_error and val/classification_accuracy judge an EVENT-symmetric particle's
    heads against the particle its assignment went for, as training's loss and spanet-test do."""
    from types import SimpleNamespace

    import torch

    from spanet_lite.config import parse_event_spec
    from spanet_lite.training.module import SpanetModule

    spec = parse_event_spec(
        "INPUTS:\n  SEQUENTIAL:\n    Jets: {pt: none}\nEVENT:\n  h1: [b1, b2]\n  h2: [b1, b2]\n"
        "PERMUTATIONS:\n  EVENT:\n    - [h1, h2]\n"
        "REGRESSIONS:\n  h1:\n    - PARTICLE: [pt]\n  h2:\n    - PARTICLE: [pt]\n"
        "CLASSIFICATIONS:\n  h1:\n    - PARTICLE: [kind]\n  h2:\n    - PARTICLE: [kind]\n"
    )
    # Event 0: the network calls the file's h2 "h1" and predicts its pt and kind; event 1 as stored.
    record = {
        "predictions": {"h1": torch.tensor([[2, 3], [0, 1]]), "h2": torch.tensor([[0, 1], [2, 3]])},
        "targets": {"h1": torch.tensor([[0, 1], [0, 1]]), "h2": torch.tensor([[2, 3], [2, 3]])},
        "target_masks": {"h1": torch.tensor([True, True]), "h2": torch.tensor([True, True])},
        "weights": torch.ones(2),
        "regressions": {"h1/PARTICLE/pt": torch.tensor([[2.0, 1.0], [1.0, 1.0]]),
                        "h2/PARTICLE/pt": torch.tensor([[1.0, 2.0], [2.0, 2.0]])},
        "classifications": {"h1/PARTICLE/kind": torch.tensor([[1, 0], [0, 0]]),
                            "h2/PARTICLE/kind": torch.tensor([[0, 1], [1, 1]])},
    }
    stub = SimpleNamespace(spec=spec, _gather=lambda tensor: tensor)
    metrics = SpanetModule._epoch_metrics(stub, [record])  # type: ignore[arg-type]
    assert metrics["event_purity"] == 1.0
    assert metrics["regression_error"] == 0.0
    assert metrics["classification_accuracy"] == 1.0
