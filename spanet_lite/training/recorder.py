"""The run directory: created once, written atomically, never overwritten.

Layout (docs/ARCHITECTURE.md)::

    <log_dir>/<name>/version_N/
        options.json        resolved options (Options.to_dict()), rewritten when a run resumes
        event_file.yaml     the event file, byte for byte
        statistics.json     normalisation statistics of the training split
        metrics.csv         one row per epoch: every train/ and val/ loss term and val metric
        checkpoints/last.ckpt, checkpoints/best.ckpt
        tensorboard/        only when the tensorboard package is installed

:class:`RunRecorder` creates the directory inside ``setup`` (after the processes of a
distributed run exist) on global rank 0 and broadcasts its path, so every process of a
SLURM / torchrun job writes to the same place. At the end of every epoch it appends the
metrics row, saves ``last.ckpt`` and copies it to ``best.ckpt`` when the monitored
validation metric improved (compared by value). Its state (rows, best value) travels in the
checkpoint, so a resumed run continues the same ``metrics.csv``. The ``train/`` columns are
the module's epoch means (``training/module.py`` checkpoints their running sums itself, so an
epoch resumed from ``interrupted.ckpt`` reports the same means as an uninterrupted one).

A run that fails on an operating-system error (a full disk) gets an ``INCOMPLETE`` file
naming the error (:func:`mark_incomplete`); ``--resume`` reports it and the recorder rewrites
``metrics.csv`` (and ``best.ckpt`` when it is missing) from the checkpoint, then removes the mark.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from spanet_lite.io import atomic_path, atomic_write_text, guarded_file
from spanet_lite.outputs import RUN_CHECKPOINTS, describe_os_error

CHECKPOINTS = RUN_CHECKPOINTS
INCOMPLETE = "INCOMPLETE"
OPTIONS = "options.json"
LAST = "last.ckpt"
BEST = "best.ckpt"
FIRST_COLUMNS = ("epoch", "step", "lr", "time_s")


def create_version_dir(parent: Path) -> Path:
    """Create and return the first free ``parent/version_N`` (``mkdir`` without ``exist_ok``),
    resolved, as a resumed run's directory is (:func:`~spanet_lite.training.plan.resume_target`):
    ``RunResult.run_dir`` and its checkpoints have one form, which stays valid after a ``chdir``
    and from the other ranks of a DDP run, whatever ``log_dir`` was.

    ``mkdir`` either creates the directory or fails, so two runs started at the same moment
    never share (or overwrite) a version.
    """
    parent = parent.resolve()
    parent.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[8:]) for p in parent.glob("version_*") if p.name[8:].isdigit()]
    number = max(taken, default=-1) + 1
    while True:
        candidate = parent / f"version_{number}"
        try:
            candidate.mkdir()
        except FileExistsError:
            number += 1
            continue
        return candidate


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint writer that goes through :func:`spanet_lite.io.atomic_path`.

    A checkpoint on disk is therefore always complete: a run killed while saving leaves the
    previous ``last.ckpt`` in place. torch writes through :func:`~spanet_lite.io.guarded_file`,
    so that a full disk is an OSError naming the checkpoint (the run is marked incomplete, one
    line), not torch's errno-less ``RuntimeError``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp, guarded_file(tmp, Path(path)) as file:
            torch.save(checkpoint, file)


def mark_incomplete(run_dir: Path, error: OSError) -> OSError:
    """Write ``run_dir/INCOMPLETE`` (best effort: the disk may be full) and return the error to raise.

    The returned error says, on one line, what failed and how to continue: ``--resume`` when a
    checkpoint is there to resume from, else a new run (a disk that filled while the first
    checkpoint was saved: ``--resume`` would only answer "got no checkpoint").
    """
    reason = describe_os_error(error)
    with contextlib.suppress(OSError):
        (run_dir / INCOMPLETE).write_text(reason + "\n", encoding="utf-8")
    with contextlib.suppress(OSError):
        (run_dir / INCOMPLETE).touch()
    if resumable_checkpoints(run_dir):
        then = f"spanet-train --resume {run_dir}"
    else:
        then = "start a new run: no epoch was saved to resume from"
    message = f"{error.strerror or error}; {run_dir} is incomplete: fix this, then {then}"
    return OSError(error.errno, message, error.filename)


def resumable_checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoints ``spanet-train --resume run_dir`` can continue from, those present:
    ``interrupted.ckpt`` (a run stopped mid-epoch) and ``last.ckpt`` (its last whole epoch)."""
    from spanet_lite.training.interrupt import INTERRUPTED_CHECKPOINT

    return [path for path in (run_dir / CHECKPOINTS / INTERRUPTED_CHECKPOINT, run_dir / CHECKPOINTS / LAST)
            if path.is_file()]


def incomplete_note(run_dir: Path) -> str | None:
    """Why ``run_dir`` is incomplete, or None when it is not: its INCOMPLETE mark (which the
    full disk may have left empty), or a ``last.ckpt`` without the ``metrics.csv`` that every
    epoch writes after it (the mark itself could not be written)."""
    mark = run_dir / INCOMPLETE
    if mark.exists():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return mark.read_text(encoding="utf-8").strip() or "an operating-system error"
        return "an operating-system error"
    if (run_dir / CHECKPOINTS / LAST).exists() and not (run_dir / "metrics.csv").exists():
        return "metrics.csv is missing"
    return None


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def metrics_csv_text(rows: list[dict[str, Any]]) -> str:
    """CSV text with fixed leading columns, then ``train/...`` and ``val/...`` columns sorted."""
    keys = {key for row in rows for key in row}
    rest = sorted(k for k in keys if k not in FIRST_COLUMNS)
    columns = [c for c in FIRST_COLUMNS if c in keys] + rest
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row.get(c, "")) for c in columns])
    return buffer.getvalue()


class RunRecorder(Callback):
    """Creates the run directory and records every epoch (see the module docstring).

    Parameters
    ----------
    parent:
        ``<log_dir>/<name>``; ignored when ``run_dir`` is given (resuming).
    files:
        File name -> text written into a new run directory (options, event file, statistics);
        a resumed run rewrites its options only.
    monitor, mode:
        The metric choosing ``best.ckpt`` and whether larger (``"max"``) or smaller is better.
    run_dir:
        The run directory to continue (``--resume``); None for a new one, also when its state
        comes from another run's checkpoint (``-cf``).
    clock:
        Seconds since the run started, for the ``time_s`` column.
    """

    def __init__(
        self,
        *,
        parent: Path,
        files: dict[str, str],
        monitor: str,
        mode: str,
        run_dir: Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.parent = parent
        self.files = files
        self.monitor = monitor
        self.mode = mode
        self.run_dir = run_dir
        self.clock = clock
        self.rows: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._continues = run_dir is not None
        self._time_offset = 0.0
        """``time_s`` of the last row a restored checkpoint carried: a continued table goes on from it."""
        """Whether the restored best is this directory's own (``--resume``), see :meth:`load_state_dict`."""
        self.on_epoch_recorded: list[Callable[[dict[str, Any]], None]] = []
        self._tensorboard: Any = None

    # -------------------------------------------------------------- set-up
    @property
    def checkpoint_dir(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / CHECKPOINTS

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.run_dir is None:
            created = str(create_version_dir(self.parent)) if trainer.is_global_zero else ""
            self.run_dir = Path(trainer.strategy.broadcast(created, src=0))
            if trainer.is_global_zero:
                for name, text in self.files.items():
                    atomic_write_text(self.run_dir / name, text)
        elif trainer.is_global_zero and OPTIONS in self.files:
            # Resuming: --epochs or --lr may have changed the options, and the run directory is
            # the run's record (spanet-test reads it); the event file and data cannot change.
            atomic_write_text(self.run_dir / OPTIONS, self.files[OPTIONS])
        if trainer.is_global_zero:
            (self.run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
            self._tensorboard = _tensorboard_writer(self.run_dir / "tensorboard")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A run marked INCOMPLETE that got here has every file again: rewrite them, drop the mark."""
        if self.run_dir is None or not trainer.is_global_zero or incomplete_note(self.run_dir) is None:
            return
        checkpoints = self.run_dir / CHECKPOINTS
        if self.rows:
            atomic_write_text(self.run_dir / "metrics.csv", metrics_csv_text(self.rows))
        if not (checkpoints / BEST).exists() and (checkpoints / LAST).exists():
            with atomic_path(checkpoints / BEST) as tmp:
                shutil.copyfile(checkpoints / LAST, tmp)
        (self.run_dir / INCOMPLETE).unlink(missing_ok=True)

    # ---------------------------------------------------------- each epoch
    def improved(self, value: float | None) -> bool:
        """Whether ``value`` beats the best so far (the first epoch always counts; NaN never beats)."""
        if self.best_value is None:
            return True
        if value is None or not math.isfinite(value):
            return False
        if not math.isfinite(self.best_value):
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.run_dir is None:
            return
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        optimizers = trainer.optimizers
        if optimizers:
            row["lr"] = float(optimizers[0].param_groups[0]["lr"])
        if self.clock is not None:
            row["time_s"] = round(self._time_offset + self.clock(), 3)
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(("train/", "val/")):
                row[key] = float(value)
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        value = row.get(self.monitor)
        better = self.improved(value)
        if better:
            self.best_value = value if value is not None else math.nan
            self.best_epoch = row["epoch"]
        checkpoints = self.run_dir / CHECKPOINTS
        trainer.save_checkpoint(checkpoints / LAST)
        if trainer.is_global_zero:
            if better:
                with atomic_path(checkpoints / BEST) as tmp:
                    shutil.copyfile(checkpoints / LAST, tmp)
            atomic_write_text(self.run_dir / "metrics.csv", metrics_csv_text(self.rows))
            stale = checkpoints / "interrupted.ckpt"
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
            if self._tensorboard is not None:
                for key, number in row.items():
                    if key not in ("epoch", "step") and isinstance(number, float) and math.isfinite(number):
                        self._tensorboard.add_scalar(key, number, row["epoch"])
                self._tensorboard.flush()
        for listener in self.on_epoch_recorded:
            listener(row)

    # -------------------------------------------------- checkpointed state
    def state_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "mode": self.mode,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The checkpoint's rows, and its best when this run continues its own directory.

        ``time_s`` goes on from the last row's (it restarted at 0, so a resumed run's first
        difference of successive rows came out negative instead of that epoch's cost).

        A new run restored from another run's checkpoint (``-cf``) starts ``metrics.csv`` with
        that run's rows, but its ``best.ckpt`` is chosen among the epochs it trains itself: with
        the other run's best value, a run that never beat it wrote no ``best.ckpt`` at all, and
        reported as its best an epoch whose checkpoint lies in the other run's directory.
        """
        self.rows = list(state_dict.get("rows", []))
        times = [row["time_s"] for row in self.rows if isinstance(row.get("time_s"), (int, float))]
        self._time_offset = float(times[-1]) if times else 0.0
        if self._continues:
            self.best_value = state_dict.get("best_value")
            self.best_epoch = state_dict.get("best_epoch")


def _tensorboard_writer(directory: Path) -> Any:
    """A TensorBoard ``SummaryWriter`` when the tensorboard package is installed, else None."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(directory))
