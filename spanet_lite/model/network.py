"""SpanetNetwork: raw features in, :class:`Outputs` out.

Data flow for a batch of B events (D = ``hidden_dim``, N = combined object slots,
P = particles, T = N + GLOBAL inputs + 1 event token)::

    raw features --FeatureNormalizer--> InputEmbedding --> tokens (B, T, D)
    [pair features (physics and/or RELATIVE) --PairBias--> U (B, H, N, N), added to the
     attention logits of every encoder layer (model/pairs.py)]
      --shared encoder (num_encoder_layers)--> x (B, T, D); event vector = x[:, -1]
      --P branch encoders, stacked (num_branch_encoder_layers)--> (P, B, T, D)
         objects (P, B, N, D) --num_branch_embedding_layers residual blocks-->
            --SymmetricTensorAttention per particle--> assignments[p] (B, N, ..., N)
         particle vector (P, B, D) = the branch's event token
            --detection heads--> detections[p] (B,) logits

Regression and classification heads read, per target: the event vector (EVENT targets),
the particle vector (``PARTICLE`` targets), or a *product vector* (product targets)::

    product vector(p, j) = particle vector(p) + sum_i P(product j of p is object i) * object_p(i)

with the product marginals of the network's own assignment distribution (detached, so
regression losses do not pull on the assignment). Symmetric products have equal
marginals, hence equal product vectors; their targets are ambiguous anyway.

The options were validated (``config.options_validation``); nothing here checks them again.

Option mapping (SPANet names): ``initial_embedding_dim`` and ``num_embedding_layers`` = each
input's doubling embedding stack (``model/embedding.py``, SPANet's rule);
``transformer_dim_scale`` = feed-forward width of every transformer layer / ``hidden_dim``;
``num_encoder_layers`` = shared encoder depth; ``num_branch_encoder_layers`` = per-particle
encoder depth; ``num_branch_embedding_layers`` = residual blocks on the branch's object
vectors before the tensor attention; ``num_detector_layers`` / ``num_regression_layers`` /
``num_classification_layers`` = hidden layers of each head; ``transformer_activation`` in the
encoders, ``linear_activation`` in MLPs and heads; ``dropout`` everywhere in training mode.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset.pair_features import physics_columns
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.model.embedding import InputEmbedding
from spanet_lite.model.encoder import StackedEncoder, StackedResidualBlock, padding_bias
from spanet_lite.model.heads import HeadBank
from spanet_lite.model.normalization import FeatureNormalizer, RegressionNormalizer
from spanet_lite.model.outputs import Outputs
from spanet_lite.model.pairs import PairBias, attention_bias
from spanet_lite.model.symmetric_attention import SymmetricTensorAttention, object_marginals


class LayoutTables(NamedTuple):
    """Index tables that depend only on a batch's input widths, not on its values.

    The eager network builds them itself. A compiled one is handed them (built eagerly by
    :meth:`SpanetNetwork.layout_tables`), so that building them, which reads Python integers,
    neither breaks its graph nor pins the widths to constants.
    """

    assignments: tuple[tuple[Tensor, Tensor | None], ...]
    """Per particle: :meth:`SymmetricTensorAttention.static_tables`."""
    upper_pairs: Tensor | None
    """(2, N (N + 1) / 2) the object pairs a <= b (``torch.triu_indices``) when the pair MLP
    runs on those only (``PairBias.mirrors``: training with physics pair features)."""


HeadSource = tuple[int, int | None] | None
"""Where a head reads its input: None = event vector, (p, None) = particle p, (p, j) = product j of p."""


class SpanetNetwork(nn.Module):
    """The whole network; see the module docstring for the data flow."""

    def __init__(self, spec: EventSpec, options: Options, statistics: DatasetStatistics) -> None:
        super().__init__()
        self.spec = spec
        self.options = options
        self.statistics = statistics
        dim, heads, dropout = options.hidden_dim, options.num_attention_heads, options.dropout
        t_act, l_act = options.transformer_activation, options.linear_activation
        scale = options.transformer_dim_scale
        self.sequential = [s.name for s in spec.sequential]
        particles = len(spec.particles)

        self.feature_normalizer = FeatureNormalizer(spec, statistics, options.normalize_features)
        self.regression_normalizer = RegressionNormalizer(spec, statistics)
        self.embedding = InputEmbedding(
            spec, dim, options.initial_embedding_dim, options.num_embedding_layers, l_act, dropout
        )
        self.encoder = StackedEncoder(1, dim, heads, options.num_encoder_layers, t_act, dropout, scale)
        self.branches = StackedEncoder(
            particles, dim, heads, options.num_branch_encoder_layers, t_act, dropout, scale
        )
        self.branch_blocks = nn.ModuleList(
            StackedResidualBlock(particles, dim, l_act, dropout)
            for _ in range(options.num_branch_embedding_layers)
        )
        self.attention = nn.ModuleList(
            SymmetricTensorAttention(p, self.sequential, dim) for p in spec.particles
        )
        self.detector = HeadBank(particles, dim, 1, options.num_detector_layers, l_act)
        self.regression_keys = [t.key for t in spec.regressions]
        self.regression_sources = [self._source(t.particle, t.product) for t in spec.regressions]
        self.regression_heads = (
            HeadBank(len(self.regression_keys), dim, 1, options.num_regression_layers, l_act)
            if self.regression_keys
            else None
        )
        self.classification_keys = [t.key for t in spec.classifications]
        self.classification_sources = [self._source(t.particle, t.product) for t in spec.classifications]
        self.num_classes = []
        for key in self.classification_keys:
            if key not in statistics.num_classes:
                raise ValueError(f"statistics.num_classes has no entry for classification target {key!r}")
            self.num_classes.append(max(int(statistics.num_classes[key]), 1))
        self.classification_heads = (
            HeadBank(
                len(self.classification_keys),
                dim,
                max(self.num_classes),
                options.num_classification_layers,
                l_act,
            )
            if self.classification_keys
            else None
        )
        # Built after the other layers so that turning pairs on leaves their initial weights as they were.
        physics = physics_columns(spec, options.pair_features)
        self.pair_bias = (
            PairBias(spec, statistics, heads, physics, options.normalize_features)
            if physics is not None or any(statistics.pair_features.values())
            else None
        )

    def _source(self, particle: str | None, product: str | None) -> HeadSource:
        if particle is None:
            return None
        p = self.spec.particle_names.index(particle)
        if product == "PARTICLE":
            return (p, None)
        return (p, self.spec.particles[p].product_names.index(product))

    # ---------------------------------------------------------------- forward
    def layout_tables(self, masks: dict[str, Tensor]) -> LayoutTables:
        """The :class:`LayoutTables` of a batch with these (B, N_i) masks (cached per widths)."""
        widths = tuple(int(masks[name].shape[1]) for name in self.sequential)
        device = next(iter(masks.values())).device
        n = sum(widths)
        mirrors = self.pair_bias is not None and self.pair_bias.mirrors
        return LayoutTables(
            tuple(attention.static_tables(widths, device) for attention in self.attention),
            torch.triu_indices(n, n, device=device) if mirrors else None,
        )

    def forward(
        self,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        pairs: dict[str, Tensor] | None = None,
        tables: LayoutTables | None = None,
    ) -> Outputs:
        """Raw features (object inputs (B, N_i, F_i), GLOBAL (B, F_g)), bool masks (B, N_i) and the
        RELATIVE inputs' raw pairwise features (B, N_i, N_i, C_i) -> Outputs. ``tables``: the
        batch's :meth:`layout_tables`, for a compiled network (built here when not given)."""
        masks = {name: masks[name].bool() for name in self.sequential}
        if tables is None:
            tables = self.layout_tables(masks)
        pair_bias = None
        if self.pair_bias is not None:
            pair_bias = self.pair_bias(features, masks, pairs or {}, tables.upper_pairs)
        normalized = self.feature_normalizer(features, masks)
        tokens, token_mask, object_mask = self.embedding(normalized, masks)  # (B, T, D), (B, T), (B, N)
        B, T, D = tokens.shape
        N = object_mask.shape[1]
        P = len(self.spec.particles)

        x = self.encoder(tokens.unsqueeze(0), attention_bias(padding_bias(token_mask), pair_bias, T))[0]
        event_vector = x[:, -1]  # (B, D)
        if P == 0:
            return self._heads(event_vector, None, None, {}, Outputs({}, {}, event_vector=event_vector))

        bias = attention_bias(padding_bias(token_mask, P), pair_bias, T, P)
        branch = self.branches(x.unsqueeze(0).expand(P, B, T, D).contiguous(), bias)  # (P, B, T, D)
        particle_vectors = branch[:, :, -1]  # (P, B, D)
        objects = branch[:, :, :N].reshape(P, B * N, D)
        for block in self.branch_blocks:
            objects = block(objects)
        objects = objects.view(P, B, N, D)

        assignments = {
            particle.name: attention(objects[p], object_mask, tables.assignments[p])
            for p, (particle, attention) in enumerate(zip(self.spec.particles, self.attention, strict=True))
        }
        logits = self.detector(particle_vectors).squeeze(-1)  # (P, B)
        detections = {name: logits[p] for p, name in enumerate(self.spec.particle_names)}
        outputs = Outputs(
            assignments, detections, event_vector=event_vector,
            particle_vectors=particle_vectors, object_vectors=objects,
        )
        return self._heads(event_vector, particle_vectors, objects, assignments, outputs)

    def _heads(
        self,
        event_vector: Tensor,
        particle_vectors: Tensor | None,
        objects: Tensor | None,
        assignments: dict[str, Tensor],
        outputs: Outputs,
    ) -> Outputs:
        """Fill ``outputs.regressions`` and ``outputs.classifications`` from each head's source vector."""
        cache: dict[int, Tensor] = {}  # particle -> (B, k, N) product marginals, computed on first use

        def source_vector(source: HeadSource) -> Tensor:
            if source is None:
                return event_vector
            assert particle_vectors is not None and objects is not None
            p, j = source
            if j is None:
                return particle_vectors[p]
            if p not in cache:
                cache[p] = object_marginals(assignments[self.spec.particles[p].name].detach())  # (B, k, N)
            return particle_vectors[p] + torch.einsum("bn,bnd->bd", cache[p][:, j], objects[p])

        if self.regression_heads is not None:
            inputs = torch.stack([source_vector(s) for s in self.regression_sources])  # (R, B, D)
            values = self.regression_heads(inputs).squeeze(-1)  # (R, B)
            outputs.regressions = {key: values[r] for r, key in enumerate(self.regression_keys)}
        if self.classification_heads is not None:
            inputs = torch.stack([source_vector(s) for s in self.classification_sources])  # (C, B, D)
            values = self.classification_heads(inputs)  # (C, B, max classes)
            outputs.classifications = {
                key: values[c, :, : self.num_classes[c]] for c, key in enumerate(self.classification_keys)
            }
        return outputs

    # -------------------------------------------------------------- targets
    def normalize_regressions(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raw regression targets (file units) -> the network's normalised units."""
        return self.regression_normalizer.normalize(values)

    def denormalize_regressions(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Normalised regression outputs -> file units."""
        return self.regression_normalizer.denormalize(values)
