"""What the network returns: the contract between the network, the losses and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Outputs:
    assignments: dict[str, Tensor]
    """Particle with k products -> (B, N, ..., N) (k object axes) joint log-probabilities over
    ordered k-tuples in the combined object space. Normalised over all valid tuples
    (logsumexp over the k axes = 0); exactly ``-inf`` for tuples using a padded object, the
    same object twice, or an object from the wrong input for an associated product; and
    exactly invariant under the particle's product permutation group."""
    detections: dict[str, Tensor]
    """Particle -> (B,) logits of 'fully reconstructable'."""
    regressions: dict[str, Tensor] = field(default_factory=dict)
    """RegressionTarget.key -> (B,) prediction in *normalised* units (see network.denormalize)."""
    classifications: dict[str, Tensor] = field(default_factory=dict)
    """ClassificationTarget.key -> (B, C) logits."""
    event_vector: Tensor | None = None
    """(B, D) pooled event representation (for event-level heads, embeddings output)."""
    particle_vectors: Tensor | None = None
    """(P, B, D) each particle branch's summary vector, event-file order (embeddings output)."""
    object_vectors: Tensor | None = None
    """(P, B, N, D) each particle branch's object vectors, the ones its assignment reads."""
