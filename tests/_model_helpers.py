"""Tiny topologies, statistics, options and random batches for the model and loss tests."""

from __future__ import annotations

import torch

from spanet_lite.config import EventSpec, parse_event_spec
from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.statistics import DatasetStatistics


def ttbar_yaml(jets: str, *, global_inputs: str = "", event_symmetry: bool = True, more: str = "") -> str:
    """The all-hadronic ttbar event file (two tops t -> q1 q2 b, q1 <-> q2 within each) whose
    ``Jets`` input has the features ``jets``; optionally GLOBAL inputs (one ``name: {...}`` per
    line), without the [t1, t2] EVENT symmetry, and with ``more`` sections appended."""
    lines = ["INPUTS:", "  SEQUENTIAL:", f"    Jets: {jets}"]
    if global_inputs:
        lines += ["  GLOBAL:", *(f"    {line}" for line in global_inputs.strip().splitlines())]
    lines += ["EVENT:", "  t1: [q1, q2, b]", "  t2: [q1, q2, b]", "PERMUTATIONS:"]
    if event_symmetry:
        lines.append("  EVENT: [[t1, t2]]")
    lines += ["  t1: [[q1, q2]]", "  t2: [[q1, q2]]"]
    return "\n".join(lines) + "\n" + more


TTBAR_YAML = ttbar_yaml(
    "{mass: log_normalize, pt: log_normalize, eta: normalize, btag: none}",
    global_inputs="Met: {met: log_normalize, phi: normalize}",
    more="""REGRESSIONS:
  EVENT: [[ht, log_gaussian]]
  t1: [{PARTICLE: [[mass, laplacian]]}, {b: [pt]}]
  t2: [{PARTICLE: [[mass, laplacian]]}, {b: [pt]}]
CLASSIFICATIONS:
  EVENT: [signal]
  t1: [{PARTICLE: [charge]}]
  t2: [{PARTICLE: [charge]}]
""",
)

# Two SEQUENTIAL inputs, an associated product, and a 3-element product group.
MIXED_YAML = """
INPUTS:
  SEQUENTIAL:
    Jets: {pt: log_normalize, eta: normalize}
    Leptons: {pt: log_normalize, eta: normalize}
EVENT:
  lt: [{b: Jets}, {l: Leptons}]
  tri: [a, b, c]
PERMUTATIONS:
  tri: [[a, b, c]]
"""


def spec_from(yaml_text: str) -> EventSpec:
    return parse_event_spec(yaml_text, source="<test>")


def statistics_for(spec: EventSpec, classes: int = 3) -> DatasetStatistics:
    """Hand-made statistics: every feature mean 0.5 / std 2, regressions centered at 1 scaled by 2."""
    return DatasetStatistics(
        feature_mean={i.name: [0.5] * i.num_features for i in spec.inputs},
        feature_std={i.name: [2.0] * i.num_features for i in spec.inputs},
        regression_center={t.key: 1.0 for t in spec.regressions},
        regression_scale={t.key: 2.0 for t in spec.regressions},
        num_classes={t.key: classes for t in spec.classifications},
        max_objects={i.name: 6 for i in spec.sequential},
    )


def small_options(**changes) -> Options:
    """A narrow, shallow network: fast enough for property tests."""
    base = dict(
        hidden_dim=16,
        num_attention_heads=2,
        num_embedding_layers=2,
        num_encoder_layers=1,
        num_branch_encoder_layers=1,
        num_branch_embedding_layers=1,
        num_detector_layers=1,
        num_regression_layers=1,
        num_classification_layers=1,
        detection_loss_scale=1.0,
        regression_loss_scale=1.0,
        classification_loss_scale=1.0,
        partial_events=True,
    )
    base.update(changes)
    return Options(**base)


def random_inputs(
    spec: EventSpec, batch: int, widths: dict[str, int], generator: torch.Generator, min_objects: int = 1
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Raw positive features and masks with real objects first (padding may hold garbage)."""
    features, masks = {}, {}
    for spec_input in spec.sequential:
        n = widths[spec_input.name]
        x = torch.rand(batch, n, spec_input.num_features, generator=generator) * 5
        counts = torch.randint(min(min_objects, n), n + 1, (batch, 1), generator=generator)
        masks[spec_input.name] = torch.arange(n)[None] < counts
        features[spec_input.name] = torch.where(
            masks[spec_input.name][..., None], x, torch.full_like(x, -7.0)
        )
    for spec_input in spec.global_inputs:
        features[spec_input.name] = torch.rand(batch, spec_input.num_features, generator=generator) * 5
    return features, masks


def random_batch(
    spec: EventSpec, batch: int, widths: dict[str, int], generator: torch.Generator, classes: int = 3
) -> Batch:
    """A batch with distinct random targets among real objects (unassociated products only)."""
    features, masks = random_inputs(spec, batch, widths, generator, min_objects=6)
    combined = torch.cat([masks[s.name] for s in spec.sequential], 1)
    targets, target_masks = {}, {}
    for particle in spec.particles:
        rows = []
        for b in range(batch):
            real = torch.nonzero(combined[b]).squeeze(1)
            rows.append(real[torch.randperm(len(real), generator=generator)[: particle.num_products]])
        targets[particle.name] = torch.stack(rows)
        target_masks[particle.name] = torch.rand(batch, generator=generator) < 0.8
        targets[particle.name][~target_masks[particle.name], -1] = -1
    regressions = {t.key: torch.randn(batch, generator=generator) * 3 for t in spec.regressions}
    classifications = {
        t.key: torch.randint(-1, classes, (batch,), generator=generator) for t in spec.classifications
    }
    return Batch(
        features, masks, targets, target_masks, regressions=regressions, classifications=classifications
    )
