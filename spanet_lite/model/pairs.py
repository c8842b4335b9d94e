"""Pairwise features as attention bias (ParT's interaction mechanism, arXiv:2202.03772).

Every object pair ``(a, b)`` of the combined object space gets a feature vector: the physics
pair features (``pair_features: physics``, :mod:`spanet_lite.dataset.pair_features`) over all pairs,
and each RELATIVE input's pairwise features inside that input's block (0 elsewhere). A small
MLP shared by all pairs maps the normalised vector to one number per attention head, which is
added to the attention logits of every encoder layer (shared and branch encoders)::

    logits[h, a, b] = q_a . k_b / sqrt(d) + U[h, a, b] + (0 or -inf for padded keys)

``U`` is 0 wherever ``a`` or ``b`` is padding, a GLOBAL input's token or the event token, so
padding never reaches real objects and an event without pairs is unchanged. The MLP's last
layer starts at zero: a fresh network is exactly the network without pair features, and it
learns how much to use them. A permutation of objects permutes ``U`` alike (features are
computed per pair), so the encoder stays permutation-equivariant and the symmetric tensor
attention downstream keeps its exact symmetry.

Why not SPANet's own RELATIVE embedding (per-object attention over the pair row, Qiu et al.)?
The bias gives every encoder layer the pair information at the cost of one (B, N, N, H)
tensor per batch; SPANet embeds pairs once, before the encoder. The input layout and its
transforms are SPANet's; only the way the network reads the pairs differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset.pair_features import PAIR_FEATURE_NAMES, Columns, combined_pair_features
from spanet_lite.dataset.statistics import DatasetStatistics

PAIR_HIDDEN = 32


class PairBias(nn.Module):
    """Raw features (and RELATIVE pair tensors) -> (B, H, N, N) additive attention bias."""

    def __init__(
        self,
        spec: EventSpec,
        statistics: DatasetStatistics,
        heads: int,
        columns: dict[str, Columns] | None,
        normalize: bool = True,
    ) -> None:
        """``columns``: where the physics pair features' inputs are (``physics_columns``), None = off."""
        super().__init__()
        self.sequential = [s.name for s in spec.sequential]
        self.columns = columns
        physics = columns is not None
        self.relative = [name for name, names in statistics.pair_features.items() if names]
        width = 0
        mean: list[float] = []
        std: list[float] = []
        log: list[bool] = []
        if physics:
            width += len(PAIR_FEATURE_NAMES)
            mean += statistics.physics_pair_mean or [0.0] * len(PAIR_FEATURE_NAMES)
            std += statistics.physics_pair_std or [1.0] * len(PAIR_FEATURE_NAMES)
            log += [False] * len(PAIR_FEATURE_NAMES)  # the physics features are logs already
        for name in self.relative:
            names = statistics.pair_features[name]
            by_name = {f.name: f for f in spec.input(name).features}
            width += len(names)
            mean += statistics.pair_mean.get(name, [0.0] * len(names))
            std += statistics.pair_std.get(name, [1.0] * len(names))
            log += [by_name[n].log for n in names]
        self.width = width
        mean_t = torch.tensor(mean, dtype=torch.float32) if normalize else torch.zeros(width)
        std_t = torch.tensor(std, dtype=torch.float32) if normalize else torch.ones(width)
        self.register_buffer("mean", mean_t, persistent=False)
        self.register_buffer(
            "inv_std", 1.0 / torch.where(std_t > 0, std_t, torch.ones_like(std_t)), persistent=False
        )
        self.register_buffer("log", torch.tensor(log, dtype=torch.bool), persistent=False)
        self.has_log = any(log)
        self.mlp = nn.Sequential(
            nn.Linear(width, PAIR_HIDDEN),
            nn.GELU(),
            nn.Linear(PAIR_HIDDEN, PAIR_HIDDEN),
            nn.GELU(),
            nn.Linear(PAIR_HIDDEN, heads),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def features(
        self, features: dict[str, Tensor], masks: dict[str, Tensor], pairs: dict[str, Tensor]
    ) -> Tensor:
        """(B, N, N, width) normalised pair features over the combined object space; a RELATIVE
        input's features are 0 outside its own block (after normalising, so 0 means "no pair")."""
        parts = []
        if self.columns is not None:
            parts.append(combined_pair_features(features, masks, self.columns))
        widths = [int(masks[name].shape[1]) for name in self.sequential]
        total = sum(widths)
        for name in self.relative:
            i = self.sequential.index(name)
            before = sum(widths[:i])
            after = total - before - widths[i]
            start = sum(p.shape[-1] for p in parts)
            if name not in pairs:
                raise ValueError(f"this network reads the pairwise features of RELATIVE input {name!r}: "
                                 f"pass pairs={{{name!r}: (B, N, N, C) raw features}}")
            x = pairs[name].float()
            stop = start + x.shape[-1]
            if self.has_log:
                x = torch.where(self.log[start:stop], torch.log1p(x), x)
            x = (x - self.mean[start:stop]) * self.inv_std[start:stop]
            parts.append(F.pad(x, (0, 0, before, after, before, after)))
        if self.columns is not None:
            n = len(PAIR_FEATURE_NAMES)
            parts[0] = (parts[0] - self.mean[:n]) * self.inv_std[:n]
        return torch.cat(parts, dim=-1)

    def forward(
        self,
        features: dict[str, Tensor],
        masks: dict[str, Tensor],
        pairs: dict[str, Tensor],
        upper: Tensor | None = None,
    ) -> Tensor:
        """(B, H, N, N) attention bias; ``upper``: ``torch.triu_indices(N, N)`` when the caller
        built it already (see :meth:`_symmetric_mlp`)."""
        object_mask = torch.cat([masks[name] for name in self.sequential], dim=1)  # (B, N)
        x = self.features(features, masks, pairs)
        real = object_mask[:, :, None] & object_mask[:, None, :]  # (B, N, N)
        x = torch.where(real[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        bias = self._symmetric_mlp(x, upper) if self.mirrors else self.mlp(x)
        return (bias * real[..., None]).permute(0, 3, 1, 2)  # (B, H, N, N)

    @property
    def mirrors(self) -> bool:
        """Whether :meth:`forward` runs the MLP on the pairs a <= b only (:meth:`_symmetric_mlp`)."""
        return self.training and not self.relative

    def _symmetric_mlp(self, x: Tensor, upper: Tensor | None = None) -> Tensor:
        """``self.mlp(x)`` for pair features symmetric in (a, b), as the physics ones are: the MLP
        runs on the pairs a <= b only and the result is mirrored, which halves the cost of the
        largest tensors of a training step with small networks and large batches. Used in
        training only: inference keeps the plain form, which exports to ONNX as it is."""
        n = x.shape[1]
        rows, cols = upper if upper is not None else torch.triu_indices(n, n, device=x.device)
        half = self.mlp(x[:, rows, cols])  # (B, n (n + 1) / 2, H)
        full = half.new_zeros(x.shape[0], n, n, half.shape[-1])
        full[:, rows, cols] = half
        full[:, cols, rows] = half
        return full


def attention_bias(padding: Tensor, pair_bias: Tensor | None, tokens: int, copies: int = 1) -> Tensor:
    """Padding bias (copies x B, 1, 1, T) plus the pair bias (B, H, N, N) placed on the object
    tokens (the first N of T) -> (copies x B, H, T, T); the padding bias alone without pairs."""
    if pair_bias is None:
        return padding
    n = pair_bias.shape[-1]
    placed = F.pad(pair_bias, (0, tokens - n, 0, tokens - n))  # (B, H, T, T)
    if copies > 1:
        placed = placed.unsqueeze(0).expand(copies, *placed.shape).reshape(-1, *placed.shape[1:])
    return placed + padding
