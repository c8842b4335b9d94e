"""Stopping a run early without losing it: Ctrl-C, ``--time-limit``, and exact resumption.

* :class:`StopController` turns the first Ctrl-C (SIGINT) or the end of the time budget into
  a clean stop after the current batch: it writes ``checkpoints/interrupted.ckpt`` (weights,
  optimiser, scheduler, loop counters) and ends ``fit`` by raising :class:`TrainingStopped`.
  A second Ctrl-C aborts at once; the last end-of-epoch checkpoint is then the resume point,
  as after a SIGKILL.
* :class:`ResumableLoader` makes the training data order a pure function of ``(seed, epoch)``
  and lets Lightning restore the position inside an epoch, so a run resumed from a
  mid-epoch checkpoint sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

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


class TrainingStopped(Exception):
    """Raised from a callback to end ``Trainer.fit`` after a resumable checkpoint was written."""

    def __init__(self, reason: str, checkpoint: Path | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.checkpoint = checkpoint


def parse_time_limit(text: str | float | int | None) -> float | None:
    """Seconds from ``3600``, ``"90s"``, ``"45m"``, ``"2h"``, ``"1d"``, ``"HH:MM:SS"`` or ``"DD:HH:MM:SS"``.

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
        self._started = time.monotonic() if started is None else started
        self._previous_handler: Any = None
        self._installed = False

    def install_signal_handler(self) -> None:
        """Take over SIGINT (main thread only) until :meth:`restore_signal_handler`.

        Called before ``Trainer.fit`` and undone after it: Lightning snapshots the signal
        handlers when it starts and puts that snapshot back when it ends.
        """
        if threading.current_thread() is threading.main_thread() and not self._installed:
            self._previous_handler = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True

    def restore_signal_handler(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)
            self._installed = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = "interrupted"

    def request_stop(self, reason: str) -> None:
        """Stop after the current batch (used by the SIGINT handler and by tests)."""
        self.reason = reason

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        limit = self.time_limit
        if self.reason is None and limit is not None and time.monotonic() - self._started >= limit:
            self.reason = "time limit reached"
        stop = self.reason is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        reason = self.reason or "stopped by another process"
        directory = self.checkpoint_dir()
        checkpoint = None
        if directory is not None:
            checkpoint = directory / INTERRUPTED_CHECKPOINT
            trainer.save_checkpoint(checkpoint)
        raise TrainingStopped(reason, checkpoint)


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

    def epoch(self) -> int:
        """The epoch being started (see :func:`~spanet_lite.dataset.datamodule.starting_epoch`)."""
        epoch = starting_epoch(self._trainer_ref())
        return 0 if epoch is None else epoch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        reseed(self.seed, self.epoch())
        skip, self._skip = self._skip, 0
        iterator = iter(self.loader)
        for _ in range(skip):
            next(iterator, None)
        yield from iterator

    def state_dict(self) -> dict[str, int]:
        trainer = self._trainer_ref()
        # At on_train_batch_end (where checkpoints are written) the current batch counts as processed.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer is not None else 0
        return {"batches_done": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = int(state.get("batches_done", 0))


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
