"""Starting a run from another run's weights: SPANet's ``-sf/--state_dict`` and ``-fsf``.

Fine-tuning in SPANet's sense: build the network from this run's options and event file, copy
in every tensor of another checkpoint whose name *and* shape match, and optionally freeze the
copied parameters so that only the new or changed parts (say, an added regression head) train.
Tensors that do not match are left as initialised and reported, never an error: a partial match
is the point (SPANet loads with ``strict=False`` too). A checkpoint that shares no tensor at all
with the network is an error, because then nothing was started from it.

This restores weights only; the optimiser, schedule and epoch counter start fresh. To continue a
run (weights, optimiser and epoch), resume from its checkpoint instead (``-cf``/``--resume``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from spanet_lite.errors import InputError
from spanet_lite.io import read_checkpoint


@dataclass
class LoadedWeights:
    """What :func:`load_initial_weights` did, for the one summary line the CLI prints."""

    path: Path
    loaded: list[str] = field(default_factory=list)
    """Parameter and buffer names copied from the checkpoint."""
    missing: list[str] = field(default_factory=list)
    """Names of the target with no tensor of the same name and shape in the checkpoint."""
    unused: list[str] = field(default_factory=list)
    """Names in the checkpoint the target does not have (or has with another shape)."""
    frozen: int = 0
    """Number of parameters switched to ``requires_grad=False``."""

    def summary(self) -> str:
        text = (
            f"weights from {self.path}: {len(self.loaded)} tensors loaded, "
            f"{len(self.missing)} left as initialised, {len(self.unused)} in the file unused"
        )
        if self.frozen:
            text += f"; {self.frozen} loaded parameters frozen"
        return text


@dataclass(frozen=True)
class InitialWeights:
    """The weights a run starts from (``-sf``), read before anything else is shown or loaded, so
    that a bad checkpoint is one line at the start rather than after the data."""

    path: Path
    tensors: dict[str, torch.Tensor]
    freeze: bool = False
    """Keep the loaded parameters fixed (``-fsf``)."""


def read_initial_weights(path: str | Path, *, freeze: bool = False) -> InitialWeights:
    """The tensors of the checkpoint at ``path``, to start a run from (see the module docstring)."""
    return InitialWeights(Path(path), read_state_dict(path), freeze)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (``.ckpt``) as written by spanet-train; ``path``
    is a file (``train()`` checks it first: :func:`~spanet_lite.training.plan.check_arguments`)."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise InputError(path, "state_dict", "a checkpoint with a state_dict", "none in the file")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_initial_weights(target: nn.Module, initial: InitialWeights) -> LoadedWeights:
    """Copy the matching tensors of ``initial`` into ``target``; see the module docstring.

    Names are compared as they appear in ``target.state_dict()`` (for the LightningModule:
    ``network.<...>``, as in the checkpoint). ``initial.freeze`` sets ``requires_grad=False`` on
    every loaded parameter, so the optimiser never changes it (weight decay included: parameters
    without a gradient are skipped).
    """
    path, source, freeze = initial.path, initial.tensors, initial.freeze
    own = target.state_dict()
    report = LoadedWeights(path)
    matching: dict[str, torch.Tensor] = {}
    for name, tensor in own.items():
        candidate = source.get(name)
        if candidate is not None and tuple(candidate.shape) == tuple(tensor.shape):
            matching[name] = candidate
            report.loaded.append(name)
        else:
            report.missing.append(name)
    report.unused = [name for name in source if name not in matching]
    if not matching:
        raise InputError(
            path, "state_dict", "weights sharing at least one tensor (name and shape) with this network",
            "none match",
        )
    if freeze:
        trainable = [name for name, _ in target.named_parameters() if name not in matching]
        if not trainable:
            raise InputError(  # spanet-train names its flag (cli.common.flags_for)
                path, "freeze_state_dict", "a network with parameters left to train",
                "every parameter would be loaded and frozen",
            )
    target.load_state_dict(matching, strict=False)
    if freeze:
        for name, parameter in target.named_parameters():
            if name in matching:
                parameter.requires_grad_(False)
                report.frozen += 1
    return report
