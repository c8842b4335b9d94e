"""From per-particle joint distributions to one tuple of objects per particle.

The network gives, for every particle, log-probabilities over ordered tuples of objects
(``Outputs.assignments``). Decoding picks one tuple per particle such that no object is
used twice in an event, for any number of products ``k``, and never returns a padded or
otherwise impossible tuple: a particle left without a valid tuple is reported as ``-1``.

Modes (``mode=``):

* ``"greedy"`` (default, fast): the most confident remaining (particle, tuple) pair over all
  unassigned particles wins, its objects are blocked, repeat.
* ``"exact"``: maximise the joint probability of the whole event over compatible tuples,
  with a proof of optimality per event (see :mod:`spanet_lite.assignment.numpy_decoder`).
  Meant for events with few particles; events whose proof would need too many combinations
  fall back to greedy with a :class:`~spanet_lite.errors.SpanetWarning`. Use it to check how
  much greedy loses (for ttbar: almost nothing), or when a particle's best tuple often
  steals the objects another particle needs.

Detection gating: with ``detections`` (particle -> (B,) probability that the particle is
present), a particle is reported only where its probability is at least ``threshold``
(0.5 when not given); switched-off particles do not block objects.

The work happens in numpy (:mod:`~spanet_lite.assignment.numpy_decoder`), vectorised over
events, so the torch and the ONNX paths decode identically; greedy decoding of tensors on an
accelerator stays there (:mod:`~spanet_lite.assignment.torch_decoding`, the same answers).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from spanet_lite.assignment import numpy_decoder
from spanet_lite.assignment.torch_decoding import decode_greedy_torch
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options_validation import check_decoding
from spanet_lite.errors import SpanetWarning


def decode(
    assignments: Mapping[str, Tensor],
    spec: EventSpec,
    *,
    detections: Mapping[str, Tensor] | None = None,
    threshold: float | None = None,
    mode: str = "greedy",
) -> dict[str, Tensor]:
    """Decode a batch: particle -> (B, k) int64 combined object indices, -1 = not reported.

    ``assignments`` maps every particle of ``spec`` to its (B, N, ..., N) log-probabilities.
    Particles are considered in event-file order (it only matters for exact ties). ``mode`` is
    one of the ``decoding`` option's names; any other is an InputError (a misspelt mode must not
    quietly run another decoder).
    """
    check_decoding(mode, "mode")
    names = [name for name in spec.particle_names if name in assignments]
    missing = set(spec.particle_names) - set(names)
    if missing:
        raise KeyError(f"no assignment distribution for particle(s) {sorted(missing)}")
    first = assignments[names[0]]
    device = first.device
    if mode == "greedy" and decodes_on_device(first):
        batch = first.shape[0]
        active = torch.ones((batch, len(names)), dtype=torch.bool, device=device)
        if detections is not None:
            cut = 0.5 if threshold is None else float(threshold)
            switched = [_detections_on(detections[name], device).reshape(batch) >= cut
                        if name in detections
                        else active[:, j] for j, name in enumerate(names)]
            active = torch.stack(switched, 1)
        return decode_greedy_torch(assignments, names, active)
    arrays = [_to_numpy(assignments[name]) for name in names]
    batch = arrays[0].shape[0]
    active = np.ones((batch, len(names)), dtype=bool)
    if detections is not None:
        cut = 0.5 if threshold is None else float(threshold)
        for j, name in enumerate(names):
            if name in detections:
                active[:, j] = _to_numpy(detections[name]).reshape(batch) >= cut
    if mode == "greedy":
        chosen = numpy_decoder.decode_greedy(arrays, active)
    else:  # "exact", the only other name check_decoding lets through
        chosen, fallback = numpy_decoder.decode_exact(arrays, active)
        if fallback:
            warnings.warn(
                f"exact decoding: {fallback} of {batch} events were too large to prove optimal "
                "and were decoded greedily",
                SpanetWarning,
                stacklevel=2,
            )
    return {name: torch.from_numpy(values).to(device) for name, values in zip(names, chosen)}


def decodes_on_device(tensor: Tensor | np.ndarray) -> bool:
    """Greedy decoding runs where the network ran when that is an accelerator: copying the
    (B, N^k) distributions to the host cost more than the network on a GPU. On the CPU the numpy
    decoder is used, which re-searches only the events whose best tuple was taken."""
    return isinstance(tensor, Tensor) and tensor.device.type != "cpu"


def _detections_on(values: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """Detection probabilities on ``device``, compared with the threshold as the host compares
    them (:func:`_to_numpy`): a tensor in float32, an array as it is. A bfloat16 or float16
    tensor compared as it was rounded the threshold to its own precision (0.7 to 0.69921875)."""
    if isinstance(values, Tensor):
        return values.detach().to(device, torch.float32)
    return torch.as_tensor(values, device=device)


def _to_numpy(tensor: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(tensor, np.ndarray):
        return tensor
    return tensor.detach().to("cpu", torch.float32).numpy()
