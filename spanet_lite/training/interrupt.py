"""Stopping a run early without losing it: Ctrl-C, ``--time-limit``, and exact resumption.

* :class:`StopController` turns the first Ctrl-C (SIGINT), SIGTERM (what batch systems send
  before killing a job) or SIGUSR1 (SLURM's ``--signal=USR1@T`` warning), or the end of the
  time budget, into a clean stop after the current training batch: it writes
  ``checkpoints/interrupted.ckpt`` (weights, optimiser, scheduler, loop counters, the partial
  epoch's loss sums) and ends ``fit`` by raising :class:`TrainingStopped`; ``spanet-train``
  then exits with 128 + the signal number (130, 143, 138), so a pre-empted job is never
  recorded as a success. A second signal aborts at once (a second Ctrl-C raises
  KeyboardInterrupt, a second SIGTERM/SIGUSR1 kills the process with that signal); the last
  checkpoint is then the resume point, as after a SIGKILL. A signal that arrives during
  validation stops the run at the next training batch; a stop asked for at an epoch's last
  batch waits for the epoch's end (validation, ``last.ckpt``) and resumes from there.
* :class:`ResumableLoader` makes the training data order a pure function of ``(seed, epoch)``
  and lets Lightning restore the position inside an epoch, so a run resumed from a
  mid-epoch checkpoint sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import Callback

from spanet_lite.dataset.datamodule import starting_epoch

INTERRUPTED_CHECKPOINT = "interrupted.ckpt"


STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name)
)
"""The signals that stop a run cleanly (SIGUSR1 and SIGTERM do not exist on Windows)."""
_REASONS = {"SIGINT": "interrupted", "SIGTERM": "terminated (SIGTERM)", "SIGUSR1": "pre-empted (SIGUSR1)"}
_TIME_LIMIT_CODE = 1
"""What a process stopping for the time limit says in :meth:`StopController._agree`: above 0 (no
stop), below every stop signal's number (2, 10, 15), which wins: a stop for a signal exits 128 + N."""


class TrainingStopped(Exception):
    """Raised from a callback to end ``Trainer.fit`` after a resumable checkpoint was written."""

    def __init__(self, reason: str, checkpoint: Path | None, signal_number: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.checkpoint = checkpoint
        self.signal_number = signal_number
        """The signal that asked for the stop (None for the time limit)."""


def parse_time_limit(text: str | float | int | None) -> float | None:
    """Seconds from ``3600``, ``"90s"``, ``"45m"``, ``"2h"``, ``"1d"``, ``"MM:SS"``, ``"HH:MM:SS"``
    or ``"DD:HH:MM:SS"``.

    Two fields are minutes and seconds, as SLURM reads ``--time`` (``"10:00"`` is ten minutes,
    never ten hours); SPANet itself takes only ``DD:HH:MM:SS``.

    Raises ``ValueError`` for anything else or a non-positive duration.
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        value = str(text).strip().lower()
        units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
        if ":" in value:
            parts = [float(p) for p in value.split(":")]
            if not 2 <= len(parts) <= 4 or any(p < 0 for p in parts):
                raise ValueError(text)
            factors = [86400.0, 3600.0, 60.0, 1.0][-len(parts) :]
            seconds = sum(p * f for p, f in zip(parts, factors, strict=True))
        elif value and value[-1] in units:
            seconds = float(value[:-1]) * units[value[-1]]
        else:
            seconds = float(value)
    if not seconds > 0:
        raise ValueError(text)
    return seconds


class StopController(Callback):
    """Ctrl-C and time-limit handling (see the module docstring).

    ``time_limit`` counts seconds from ``started`` (a ``time.monotonic()`` stamp; the start
    of the command, since a batch system's wall clock includes reading the data).
    ``checkpoint_dir`` is a callable because the run directory is created only once the
    processes of a distributed run can agree on it (in :meth:`setup` of the recorder).
    """

    def __init__(
        self,
        checkpoint_dir: Callable[[], Path | None],
        time_limit: float | None = None,
        started: float | None = None,
    ) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.time_limit = time_limit
        self.reason: str | None = None
        self.signal_number: int | None = None
        self._started = time.monotonic() if started is None else started
        self._previous: dict[int, Any] = {}
        self._at_epoch_end = False
        """A stop asked for at an epoch's last batch, made once the epoch has ended."""
        self._signalled = False
        """This process received a stop signal itself (a second one aborts); one another process
        of a distributed run received is adopted without it (:meth:`_agree`)."""

    def install_signal_handler(self) -> None:
        """Take over :data:`STOP_SIGNALS` (main thread only) until :meth:`restore_signal_handler`.

        Called before ``Trainer.fit`` and undone after it: Lightning snapshots the signal
        handlers when it starts and puts that snapshot back when it ends. Lightning puts its
        own SIGTERM handler in place once fit starts (it ends fit with a bare ``SystemExit``,
        exit status 0); :meth:`on_train_start` takes SIGTERM back.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for number in STOP_SIGNALS:
            self._previous.setdefault(number, signal.getsignal(number))
            signal.signal(number, self._on_signal)

    def restore_signal_handler(self) -> None:
        for number, handler in self._previous.items():
            fallback = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
            signal.signal(number, handler if handler is not None else fallback)
        self._previous = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._previous and threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                if number != signal.SIGINT:
                    signal.signal(number, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signalled:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)  # a second signal: die of it, at once
            os.kill(os.getpid(), signum)
            return
        self._signalled = True
        self._take_signal(signum)

    def _take_signal(self, signum: int) -> None:
        self.signal_number = signum
        self.reason = _REASONS.get(signal.Signals(signum).name, signal.Signals(signum).name)

    def _agree(self, trainer: pl.Trainer) -> bool:
        """Whether any process of a distributed run stops, in one collective every batch. A
        process stopping for another's signal takes that signal as its own reason, and exit
        status (128 + N): rank 0, whose status a shell or batch script sees, exited 0 "stopped
        by another process" when SIGTERM reached another rank only, so a job was not requeued."""
        code = self.signal_number or (_TIME_LIMIT_CODE if self.reason is not None else 0)
        agreed = trainer.strategy.reduce(
            torch.tensor(code, device=trainer.strategy.root_device), reduce_op="max"
        )
        agreed = int(agreed)
        if agreed and self.signal_number is None:
            if agreed == _TIME_LIMIT_CODE:
                self.reason = self.reason or "time limit reached"
            else:
                self._take_signal(agreed)
        return agreed > 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        limit = self.time_limit
        if self.reason is None and limit is not None and time.monotonic() - self._started >= limit:
            self.reason = "time limit reached"
        stop = self._agree(trainer) if trainer.world_size > 1 else self.reason is not None
        if not stop:
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            # The epoch's last batch: a checkpoint here, with the epoch's validation still to
            # run, resumed into an epoch that validated nothing and trained no further epoch.
            # The epoch ends first (validation, metrics row, last.ckpt) and the run stops there.
            self._at_epoch_end = True
            return
        self._stop(trainer, INTERRUPTED_CHECKPOINT, save=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Make a stop deferred from the epoch's last batch, after the recorder (an earlier
        callback) wrote the epoch's ``last.ckpt``; after the last epoch the run has finished."""
        if not self._at_epoch_end:
            return
        self._at_epoch_end = False
        if trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs:
            return
        from spanet_lite.training.recorder import LAST

        self._stop(trainer, LAST, save=False)

    def _stop(self, trainer: pl.Trainer, name: str, *, save: bool) -> None:
        """End ``fit`` with :class:`TrainingStopped`, naming the checkpoint to resume from (written
        here when ``save``)."""
        reason = self.reason or "stopped by another process"
        directory = self.checkpoint_dir()
        checkpoint = None
        if directory is not None:
            checkpoint = directory / name
            if save:
                trainer.save_checkpoint(checkpoint)
        raise TrainingStopped(reason, checkpoint, self.signal_number)


def reseed(seed: int, epoch: int) -> None:
    """Seed torch's global generator from ``(seed, epoch)`` (shuffling and dropout of that epoch)."""
    torch.manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1))


class ResumableLoader:
    """A training loader whose order depends only on ``(seed, epoch)`` and that can skip ahead.

    Lightning treats an object with ``state_dict``/``load_state_dict`` as resumable: the state
    saved in a mid-epoch checkpoint is the number of batches already trained on, and the
    resumed iteration skips them (re-reading them once, which is cheap next to training).
    The epoch number comes from the trainer's loop counters at the moment iteration starts,
    which is also what Lightning hands to samplers' ``set_epoch``.
    """

    def __init__(self, loader: Any, seed: int, trainer_ref: Callable[[], pl.Trainer | None]) -> None:
        self.loader = loader
        self.seed = seed
        self._trainer_ref = trainer_ref
        self._skip = 0
        self._rng_state: torch.Tensor | None = None

    def epoch(self) -> int:
        """The epoch being started (see :func:`~spanet_lite.dataset.datamodule.starting_epoch`)."""
        epoch = starting_epoch(self._trainer_ref())
        return 0 if epoch is None else epoch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        reseed(self.seed, self.epoch())
        skip, self._skip = self._skip, 0
        rng_state, self._rng_state = self._rng_state, None
        iterator = iter(self.loader)
        for _ in range(skip):
            next(iterator, None)
        if skip and rng_state is not None:
            # The skipped batches are not trained again, so their dropout draws are not made
            # again either: continue from the generator state the stopped run had reached.
            torch.set_rng_state(rng_state)
        yield from iterator

    def state_dict(self) -> dict[str, Any]:
        """Batches done this epoch and torch's CPU generator (dropout) at that point; the data
        order itself comes from ``(seed, epoch)`` alone and draws nothing from torch."""
        trainer = self._trainer_ref()
        # At on_train_batch_end (where checkpoints are written) the current batch counts as processed.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer is not None else 0
        return {"batches_done": int(done), "torch_rng_state": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._skip = int(state.get("batches_done", 0))
        rng_state = state.get("torch_rng_state")
        self._rng_state = rng_state if isinstance(rng_state, torch.Tensor) else None


class RunData(LightningDataModule):
    """Hands the trainer the data module's loaders, the training one as a :class:`ResumableLoader`.

    ``setup`` is delegated, with the trainer attached, so that in a distributed run the inner
    data module takes this process's share once the process group exists.
    """

    def __init__(self, inner: LightningDataModule, seed: int) -> None:
        super().__init__()
        self.inner = inner
        self.seed = seed

    def setup(self, stage: str) -> None:
        self.inner.trainer = self.trainer
        self.inner.setup(stage)

    def train_dataloader(self) -> ResumableLoader:
        return ResumableLoader(self.inner.train_dataloader(), self.seed, lambda: self.trainer)

    def val_dataloader(self) -> Any:
        return self.inner.val_dataloader()

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return self.inner.transfer_batch_to_device(batch, device, dataloader_idx)
