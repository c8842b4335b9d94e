"""What a person watching a run sees: rich bars on a terminal, one plain line per epoch elsewhere.

On a terminal (and without ``--quiet``) each epoch gets a bar with the running loss terms;
when an epoch ends one line records its validation numbers and the best so far. When stdout
is not a terminal (batch systems, pipes) or with ``--quiet``, only those per-epoch lines are
written, so log files stay readable. Only global rank 0 prints.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from spanet_lite.training.fit import RunResult

HEADLINE = (
    ("val/event_purity", "purity"),
    ("val/particle_purity", "particle"),
    ("val/regression_error", "reg.err"),
    ("val/classification_accuracy", "class.acc"),
)
SHORT_TERMS = {
    "total_loss": "loss",
    "assignment_loss": "assign",
    "detection_loss": "detect",
    "regression_loss": "regress",
    "classification_loss": "class",
    "kl_loss": "kl",
}


def _number(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.3g}"


def epoch_line(
    row: dict[str, Any], epochs: int, monitor: str, best: float | None, best_epoch: int | None
) -> str:
    """``epoch 3/20  loss 1.234 (val 1.301)  purity 0.512 ...  best purity 0.530 @ 2``."""
    parts = [f"epoch {row['epoch'] + 1}/{epochs}"]
    for term, short in SHORT_TERMS.items():
        train, val = row.get(f"train/{term}"), row.get(f"val/{term}")
        if train is None or (train == 0 and not val):
            continue  # absent, or a head this topology does not have
        parts.append(f"{short} {_number(train)} (val {_number(val)})")
    parts.extend(f"{short} {_number(row[key])}" for key, short in HEADLINE if key in row)
    if best is not None and best_epoch is not None:
        name = dict(HEADLINE).get(monitor, monitor.removeprefix("val/"))
        parts.append(f"best {name} {_number(best)} @ {best_epoch + 1}")
    if "time_s" in row:
        parts.append(f"{row['time_s']:.0f}s")
    return "  ".join(parts)


class ProgressDisplay(Callback):
    """Rich per-epoch bars (``live=True``) or plain per-epoch lines (``live=False``)."""

    def __init__(self, console: Console, *, epochs: int, monitor: str, live: bool, recorder: Any) -> None:
        self.console = console
        self.epochs = epochs
        self.monitor = monitor
        self.live = live
        self.recorder = recorder
        self._progress: Progress | None = None
        self._task: Any = None
        self._last_refresh = 0.0
        recorder.on_epoch_recorded.append(self._epoch_done)
        self._enabled = True

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._enabled = trainer.is_global_zero

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self._enabled and self.live):
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[terms]}"),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        if self._task is not None:
            self._progress.remove_task(self._task)  # its summary line is already printed
        total = trainer.num_training_batches
        self._task = self._progress.add_task(
            f"epoch {trainer.current_epoch + 1}/{self.epochs}",
            total=None if total == float("inf") else int(total),
            terms="",
        )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._progress is None or self._task is None:
            return
        now = time.monotonic()
        terms = ""
        if now - self._last_refresh > 0.5:
            self._last_refresh = now
            latest = getattr(pl_module, "latest_terms", {})
            terms = "  ".join(f"{SHORT_TERMS.get(k, k)} {float(v):.3f}" for k, v in latest.items())
            self._progress.update(self._task, advance=1, terms=terms)
        else:
            self._progress.update(self._task, advance=1)

    def _epoch_done(self, row: dict[str, Any]) -> None:
        if not self._enabled:
            return
        line = epoch_line(row, self.epochs, self.monitor, self.recorder.best_value, self.recorder.best_epoch)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"epoch {row['epoch'] + 1}/{self.epochs} done")
            self._progress.console.print(line, highlight=False, markup=False)
        else:
            self.console.print(line, highlight=False, soft_wrap=True, markup=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.close()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.close()


def _shown(path: Path) -> str:
    """``path`` (absolute, ``RunResult``'s form) from the working directory when it lies under
    it, as the user typed ``--log-dir runs``; else in full. The one place the end-of-run table
    shortens a path, so a first run and its resume print the run directory alike."""
    here = Path.cwd().resolve()
    return str(path.relative_to(here)) if path.is_absolute() and path.is_relative_to(here) else str(path)


def summary_table(result: RunResult) -> Table:
    """The end-of-run table: where the run is, how it ended, the best checkpoint and last metrics.

    Paths are never elided: on a narrow console a long path folds onto the next line. They are
    shown from the working directory when under it (:func:`_shown`)."""
    table = Table(title="spanet-train", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    if result.run_dir is None:
        table.add_row("run directory", "none (fast dev run: nothing written)")
    else:
        table.add_row("run directory", escape(_shown(result.run_dir)))
    status = "finished" if result.stopped is None else f"stopped: {result.stopped}"
    table.add_row("status", f"{status} after {result.epochs_completed} epoch(s), {result.seconds:.0f} s")
    if result.best_checkpoint is not None:
        where = "" if result.best_epoch is None else f" (epoch {result.best_epoch + 1})"
        table.add_row("best checkpoint", escape(f"{_shown(result.best_checkpoint)}{where}"))
        table.add_row(f"best {result.monitor}", _number(result.best_value))
    if result.last_checkpoint is not None:
        table.add_row("last checkpoint", escape(_shown(result.last_checkpoint)))
    if result.stopped is not None and result.run_dir is not None:
        flags = f" {result.resume_flags}" if result.resume_flags else ""
        table.add_row("resume with", escape(f"spanet-train --resume {_shown(result.run_dir)}{flags}"))
    for key, _ in HEADLINE:
        if key in result.metrics:
            table.add_row(f"last {key}", _number(result.metrics[key]))
    return table
