"""Learning-rate schedule: linear warm-up, then linear decay or cosine cycles, stepped per batch.

``learning_rate_cycles`` keeps SPANet's meaning: ``0`` (SPANet's default) is a linear decay to
zero after the warm-up, ``C >= 1`` is ``C`` cosine cycles with hard restarts. With ``W``
warm-up steps and ``T`` total steps, the learning rate at optimiser step ``s`` is
``learning_rate * factor(s)`` with

* ``factor(s) = s / W`` while ``s < W`` (SPANet's warm-up, from ``get_linear_schedule_with_warmup``:
  the first optimiser step has rate 0 and only fills the optimiser's moment estimates), and
  afterwards, with ``p = (s - W) / (T - W)``,
* ``C = 0``: ``factor(s) = 1 - p``, from the full rate down to zero;
* ``C >= 1``: ``factor(s) = 0.5 * (1 + cos(pi * frac(C * p)))``: ``C`` equal cosine cycles from
  the full rate down to zero, each restarting at the full rate.

The value 0 is allowed by the one rule table (``config/options_validation.py``) and taken
here as given; nothing else re-checks it.

The factor is a pure function of the step, so a resumed run only needs the step counter
(which the scheduler's state holds) to continue exactly where it stopped.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import torch


def warmup_cosine_factor(step: int, *, total_steps: int, warmup_steps: int, cycles: int) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    if progress >= 1.0:
        return 0.0
    if cycles == 0:
        return 1.0 - progress
    phase = (cycles * progress) % 1.0
    return 0.5 * (1.0 + math.cos(math.pi * phase))


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
    cycles: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step :class:`~torch.optim.lr_scheduler.LambdaLR` following :func:`warmup_cosine_factor`.

    The factor is bound with :func:`functools.partial`, whose (empty) ``__dict__`` is all that
    LambdaLR stores: a checkpoint keeps the step counter, and the shape of the schedule comes
    from the options of the run that loads it (so ``--resume --epochs 30`` stretches it).
    """
    factor = functools.partial(
        warmup_cosine_factor,
        total_steps=int(total_steps),
        warmup_steps=int(warmup_steps),
        cycles=int(cycles),
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def schedule_steps(*, epochs: int, steps_per_epoch: int, warmup_epochs: float) -> tuple[int, int]:
    """``(total_steps, warmup_steps)`` for a run of ``epochs`` epochs of ``steps_per_epoch`` steps.

    ``warmup_steps = round(warmup_epochs x steps_per_epoch)``, as in SPANet, with no cap: a run
    no longer than its warm-up (``--epochs 1`` with SPANet's default
    ``learning_rate_warmup_epochs = 1``) warms up for all of it and never decays, as in SPANet.
    SPANet's float product, or an exact one (a :class:`~fractions.Fraction`) where the float
    overflows, so every finite warm-up the options allow has its step count (``1e308`` epochs: a
    learning rate near 0 throughout).
    """
    steps = max(1, int(steps_per_epoch))
    total = max(1, int(epochs) * steps)
    product = max(0.0, float(warmup_epochs)) * steps
    warmup = round(product) if math.isfinite(product) else round(Fraction(warmup_epochs) * steps)
    return total, warmup
