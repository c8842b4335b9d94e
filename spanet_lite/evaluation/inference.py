"""One forward pass plus decoding, as numpy: what ``predict``, ``evaluate`` and the CLI share.

:func:`infer` runs the network on one batch of raw inputs and returns a :class:`Predictions`
with everything a user may want per event, all in file units:

* ``assignments``: particle -> (B, k) combined object indices of the best assignment, for
  every particle in every event, whatever its detection probability (SPANet's
  ``TARGETS/<particle>/<product>``); -1 only where no valid tuple is left for it;
* ``assignment_probabilities``: particle -> (B,) SPANet's ``assignment_probability``: the
  probability of the chosen assignment up to the particle's own symmetry, i.e. the order of
  its product group times the probability of the chosen ordered tuple (0 where -1);
* ``detection_probabilities``: particle -> (B,) sigmoid of the detection logit;
* ``marginal_probabilities`` (property): detection times assignment probability;
* ``reported``: particle -> (B, k) the same decoding with detection gating: a particle is
  reported only where its detection probability is at least the threshold, and a particle
  left out blocks no objects (spanet_lite's addition; None when no threshold was given);
* ``regressions``: key -> (B,) de-normalised (raw units) predictions;
* ``classifications``: key -> (B, C) class probabilities (softmax);
* ``embeddings``: SPANet's ``EMBEDDINGS`` keys (``EVENT``, ``<particle>/PARTICLE``,
  ``<particle>/<product>``) -> (B, D) vectors, only when asked for.

The network runs on the inputs trimmed to the object slots the batch uses
(:func:`~spanet_lite.dataset.batch.trim_inputs`), which is exact; decoded indices are mapped
back, so every index above is in the combined object space of the inputs as given. Batches read
from files are trimmed on the host, before the copy to the device (:func:`device_inputs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from spanet_lite.assignment.decoding import decode
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset.batch import SlotMap, kept_slots, trim_inputs, trim_pairs
from spanet_lite.model.outputs import Outputs


@dataclass
class Predictions:
    """What a run predicts for a block of events, as numpy arrays keyed like ``spanet-predict``'s
    datasets (``run.predict`` documents each field): one plain container that the file writer,
    the metrics and a notebook all read, whatever device the network ran on."""

    assignments: dict[str, np.ndarray] = field(default_factory=dict)
    assignment_probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    detection_probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    regressions: dict[str, np.ndarray] = field(default_factory=dict)
    classifications: dict[str, np.ndarray] = field(default_factory=dict)
    reported: dict[str, np.ndarray] | None = None
    embeddings: dict[str, np.ndarray] | None = None

    @property
    def marginal_probabilities(self) -> dict[str, np.ndarray]:
        """particle -> (B,) detection probability times assignment probability (SPANet's marginal)."""
        return {
            p: self.detection_probabilities[p] * self.assignment_probabilities[p]
            for p in self.assignment_probabilities
        }

    def __repr__(self) -> str:
        """What is held, not the arrays (a repr of 50 KB buries a notebook cell): the event
        count, the particles and the keys of each field with one shape, as scikit-hep's objects do."""
        parts = [f"{len(self)} events"]
        for name in ("assignments", "reported", "regressions", "classifications", "embeddings"):
            value = getattr(self, name)
            if value:
                shown = list(value.items())[:4]
                more = f", ... ({len(value)})" if len(value) > 4 else ""
                shapes = {array.shape for array in value.values()}
                if len(shapes) == 1:  # one shape for all: said once
                    listed = ", ".join(key for key, _ in shown) + more + f" {shapes.pop()}"
                else:
                    listed = ", ".join(f"{key} {array.shape}" for key, array in shown) + more
                parts.append(f"{name}: {listed}")
        return f"Predictions({'; '.join(parts)})"

    def __len__(self) -> int:
        for value in (
            self.assignments, self.detection_probabilities, self.regressions, self.classifications,
            self.embeddings or {},
        ):
            for array in value.values():
                return len(array)
        return 0

    @staticmethod
    def concatenate(parts: Sequence[Predictions]) -> Predictions:
        """Join per-batch predictions along the event axis."""
        if not parts:
            return Predictions()
        joined: dict[str, Any] = {}
        for f in fields(Predictions):
            values = [getattr(p, f.name) for p in parts]
            if values[0] is None:
                joined[f.name] = None
            else:
                joined[f.name] = {k: np.concatenate([v[k] for v in values]) for k in values[0]}
        return Predictions(**joined)


def no_events(
    network: Any,
    spec: EventSpec,
    widths: Mapping[str, int],
    pair_counts: Mapping[str, int],
    *,
    threshold: float | None,
    mode: str,
    embeddings: bool = False,
) -> Predictions:
    """Predictions for zero events: every key a non-empty call gives, each array of length 0
    with its trailing shape and dtype, and ``reported`` a dict wherever a threshold applies.

    A notebook indexes ``predictions.assignments["t1"]`` whatever the event count (a selection
    that kept nothing), so the empty answer must look like any other. The network cannot run on
    zero events (no object slot to trim to), so it runs on one blank event, every slot real, and
    the result is cut to length 0: the keys and shapes keep their one home, the network and
    :func:`from_outputs`, instead of a second list here. ``widths``: object slots per object
    input; ``pair_counts``: pair features per RELATIVE input that has them."""
    device = next(network.parameters()).device
    features: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for source in spec.inputs:
        if source.kind == "GLOBAL":
            features[source.name] = np.zeros((1, source.num_features), np.float32)
        else:
            width = max(1, int(widths.get(source.name, 1)))
            features[source.name] = np.zeros((1, width, source.num_features), np.float32)
            masks[source.name] = np.ones((1, width), bool)
    pairs = {name: np.zeros((1, *masks[name].shape[1:] * 2, count), np.float32)
             for name, count in pair_counts.items() if count}
    batch = device_inputs(spec, features, masks, pairs, device)
    one = infer(network, spec, batch.features, batch.masks, threshold=threshold, mode=mode,
                embeddings=embeddings, pairs=batch.pairs, slots=batch.slots)
    return Predictions(**{
        name: None if value is None else {k: v[:0] for k, v in value.items()}
        for name, value in ((item.name, getattr(one, item.name)) for item in fields(Predictions))
    })


def to_tensors(
    features: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """numpy inputs -> float32 features and bool masks on ``device``."""
    tf = {k: torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for k, v in features.items()}
    tm = {k: torch.as_tensor(np.asarray(v, dtype=bool), device=device) for k, v in masks.items()}
    return tf, tm


@dataclass(frozen=True)
class DeviceInputs:
    """One batch's network inputs on the device, already cut to ``slots``, the object slots its
    events use (pass ``slots`` on to :func:`infer` or :func:`trimmed_forward`)."""

    features: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    pairs: dict[str, torch.Tensor]
    slots: SlotMap


def device_inputs(
    spec: EventSpec,
    features: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    pairs: Mapping[str, np.ndarray],
    device: torch.device | str,
) -> DeviceInputs:
    """A batch of raw numpy inputs, trimmed on the host and then copied to ``device``.

    Finding the kept slots in the device copies would read them back to the host, a GPU
    synchronisation per batch; on the host it is free, and only the kept slots are copied."""
    host_features, host_masks = to_tensors(features, masks)
    slots = kept_slots(host_masks, [s.name for s in spec.sequential])
    cut_features, cut_masks = trim_inputs(host_features, host_masks, slots)
    cut_pairs = trim_pairs(to_tensors(pairs, {})[0], slots)

    def move(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: value.to(device) for name, value in tensors.items()}

    return DeviceInputs(move(cut_features), move(cut_masks), move(cut_pairs), slots)


def chosen_probability(
    log_probs: torch.Tensor, chosen: torch.Tensor, symmetry_order: int = 1
) -> torch.Tensor:
    """(B, N, ..., N) log-probabilities and (B, k) choices -> (B,) probability of the choice (0 if -1).

    ``symmetry_order``: the order of the particle's product group. The distribution spreads an
    assignment's probability evenly over its equivalent orderings, so SPANet multiplies by the
    order to get the probability of the assignment itself; 1 gives the ordered tuple's.
    """
    batch = log_probs.shape[0]
    if log_probs.numel() == 0:  # no object slot at all: nothing was chosen
        return torch.zeros(batch, device=log_probs.device)
    flat = log_probs.reshape(batch, -1)
    num_objects = log_probs.shape[1]
    k = chosen.shape[1]
    index = torch.zeros(batch, dtype=torch.long, device=chosen.device)
    for axis in range(k):
        index = index * num_objects + chosen[:, axis].clamp(min=0)
    value = flat.gather(1, index[:, None].to(flat.device))[:, 0].exp() * symmetry_order
    return torch.where((chosen[:, 0] >= 0).to(value.device), value, torch.zeros_like(value))


@torch.inference_mode()
def infer(
    network: Any,
    spec: EventSpec,
    features: Mapping[str, torch.Tensor],
    masks: Mapping[str, torch.Tensor],
    *,
    threshold: float | None = 0.5,
    mode: str = "greedy",
    embeddings: bool = False,
    pairs: Mapping[str, torch.Tensor] | None = None,
    slots: SlotMap | None = None,
) -> Predictions:
    """Network forward on one batch, decoded; see the module docstring for the fields.
    ``pairs``: the RELATIVE inputs' pairwise features (B, N_i, N_i, C_i), if any; ``slots``: the
    inputs are cut to these already (:func:`device_inputs`)."""
    outputs, slots = trimmed_forward(network, spec, features, masks, pairs, slots)
    return from_outputs(
        network, spec, outputs, threshold=threshold, mode=mode, embeddings=embeddings, slots=slots
    )


def trimmed_forward(
    network: Any,
    spec: EventSpec,
    features: Mapping[str, torch.Tensor],
    masks: Mapping[str, torch.Tensor],
    pairs: Mapping[str, torch.Tensor] | None = None,
    slots: SlotMap | None = None,
) -> tuple[Outputs, SlotMap]:
    """The network's outputs on the inputs cut to the slots any event uses, and the map back.

    The outputs' object axes are in the trimmed space: pass ``slots`` to :func:`from_outputs`.
    ``slots`` given: the inputs are cut to them already (:func:`device_inputs`).
    """
    if slots is None:
        slots = kept_slots(masks, [s.name for s in spec.sequential])
    trimmed_features, trimmed_masks = trim_inputs(features, masks, slots)
    if pairs:
        return network(trimmed_features, trimmed_masks, trim_pairs(pairs, slots)), slots
    return network(trimmed_features, trimmed_masks), slots


@torch.inference_mode()
def from_outputs(
    network: Any,
    spec: EventSpec,
    outputs: Outputs,
    *,
    threshold: float | None = 0.5,
    mode: str = "greedy",
    embeddings: bool = False,
    slots: SlotMap | None = None,
) -> Predictions:
    """Decode and convert the raw :class:`Outputs` of one batch (fields: module docstring).

    ``threshold=None``: no gated decoding (``reported`` stays None). ``slots``: the outputs were
    computed on trimmed inputs (:func:`trimmed_forward`); decoded indices are mapped back to the
    untrimmed combined space.
    """
    detections = {p: torch.sigmoid(v.float()) for p, v in outputs.detections.items()}
    chosen = decode(outputs.assignments, spec, mode=mode) if spec.particles else {}
    gated = None
    if threshold is not None and spec.particles:
        gated = decode(outputs.assignments, spec, detections=detections, threshold=threshold, mode=mode)
    regressions = network.denormalize_regressions(dict(outputs.regressions)) if outputs.regressions else {}
    orders = {p.name: p.symmetry.order for p in spec.particles}
    probabilities = {
        p: chosen_probability(outputs.assignments[p].float(), chosen[p], orders[p]) for p in chosen
    }
    if slots is not None:
        chosen = {p: slots.to_original(v) for p, v in chosen.items()}
        if gated is not None:
            gated = {p: slots.to_original(v) for p, v in gated.items()}
    result = Predictions(
        assignments={p: v.cpu().numpy() for p, v in chosen.items()},
        assignment_probabilities={p: v.cpu().numpy() for p, v in probabilities.items()},
        detection_probabilities={p: v.cpu().numpy() for p, v in detections.items()},
        regressions={k: v.float().cpu().numpy() for k, v in regressions.items()},
        classifications={
            k: torch.softmax(v.float(), dim=-1).cpu().numpy() for k, v in outputs.classifications.items()
        },
    )
    if gated is not None:
        result.reported = {p: v.cpu().numpy() for p, v in gated.items()}
    if embeddings:
        result.embeddings = {k: v.float().cpu().numpy() for k, v in embedding_vectors(spec, outputs).items()}
    return result


def embedding_vectors(spec: EventSpec, outputs: Outputs) -> dict[str, torch.Tensor]:
    """SPANet's embedding keys -> (B, D) vectors: ``EVENT`` (the pooled event vector),
    ``<particle>/PARTICLE`` (the particle branch's summary vector) and ``<particle>/<product>``
    (the particle vector plus the object vectors weighted by the product's assignment marginal,
    the same vector the product's regression and classification heads read)."""
    from spanet_lite.model.symmetric_attention import object_marginals

    result: dict[str, torch.Tensor] = {}
    if outputs.event_vector is not None:
        result["EVENT"] = outputs.event_vector
    if outputs.particle_vectors is None or outputs.object_vectors is None:
        return result
    for p, particle in enumerate(spec.particles):
        vector = outputs.particle_vectors[p]
        result[f"{particle.name}/PARTICLE"] = vector
        marginals = object_marginals(outputs.assignments[particle.name].float())  # (B, k, N)
        for j, product in enumerate(particle.product_names):
            result[f"{particle.name}/{product}"] = vector + torch.einsum(
                "bn,bnd->bd", marginals[:, j], outputs.object_vectors[p].float()
            )
    return result
