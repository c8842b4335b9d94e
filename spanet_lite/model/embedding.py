"""Per-input embeddings: normalised features -> tokens of width ``hidden_dim``.

Each input (SEQUENTIAL or GLOBAL) has its own *embedding stack*, with SPANet's meaning of
``initial_embedding_dim`` and ``num_embedding_layers``: a first layer from the features to
``initial_embedding_dim``, then layers that each double the width while the doubled width
stays below ``hidden_dim`` (at most ``num_embedding_layers`` of them), then a last layer to
``hidden_dim``. With SPANet's defaults (16, 10, hidden 128) the widths are
``F -> 16 -> 32 -> 64 -> 128``: 4 layers although the key says 10. The first layer is
``act(W x)``; the further width-changing layers are ``act(LN(W x))`` (SPANet's blocks
normalise too); a last layer of equal width is the residual block ``x + act(W LN(x))``.
A learned *input-type* vector is added so the encoder knows which input a token came from
(SPANet instead concatenates a ``position_embedding_dim`` vector; see ``NO_EFFECT``).
There is no positional encoding, so everything downstream is
equivariant to the order of objects within an input.

Token layout per event (T = N + G + 1)::

    [ objects of SEQUENTIAL input 1 | ... | input S ]  [ GLOBAL 1 ... GLOBAL G ]  [ event ]
      N = sum of padded widths, the combined object index space

The last token is a learned *event token*: it is always real, so no attention row is
ever fully masked (an event without objects still has a well-defined output), and its
encoder output is the pooled event vector for event-level heads.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.model.encoder import StackedResidualBlock, activation


def embedding_widths(hidden_dim: int, initial_dim: int, max_doublings: int) -> list[int]:
    """Output widths of the stack's layers: ``[16, 32, 64, 128]`` for (128, 16, 10).

    SPANet's rule (``EmbeddingStack``): double while the doubled width stays below
    ``hidden_dim``, at most ``max_doublings`` times, then always one last layer to ``hidden_dim``.
    """
    widths = [initial_dim]
    for _ in range(max_doublings):
        if 2 * widths[-1] >= hidden_dim:
            break
        widths.append(2 * widths[-1])
    return [*widths, hidden_dim]


class InputMLP(nn.Module):
    """(..., F) -> (..., D) through the doubling embedding stack (see the module docstring)."""

    def __init__(
        self, features: int, dim: int, initial_dim: int, max_doublings: int, act: str, dropout: float
    ) -> None:
        super().__init__()
        widths = embedding_widths(dim, initial_dim, max_doublings)
        self.first = nn.Linear(features, widths[0])
        self.act = activation(act)
        self.widen = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths[:-1]))
        self.widen_norms = nn.ModuleList(nn.LayerNorm(b) for b in widths[1:-1])
        same = widths[-2] == dim
        self.last = None if same else nn.Linear(widths[-2], dim)
        self.last_norm = None if same else nn.LayerNorm(dim)
        self.blocks = nn.ModuleList([StackedResidualBlock(1, dim, act, dropout)] if same else [])
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[:-1]
        y = self.act(self.first(x))
        for layer, norm in zip(self.widen, self.widen_norms, strict=True):
            y = self.act(norm(layer(y)))
        if self.last is not None and self.last_norm is not None:
            y = self.act(self.last_norm(self.last(y)))
        y = y.reshape(1, -1, self.dim)  # (1, M, D)
        for block in self.blocks:
            y = block(y)
        return y.view(*shape, self.dim)  # not -1: ambiguous for an input with no object slots


class InputEmbedding(nn.Module):
    """Normalised features of every input -> (tokens (B, T, D), token mask (B, T), object mask (B, N))."""

    def __init__(
        self,
        spec: EventSpec,
        dim: int,
        initial_dim: int,
        max_doublings: int,
        act: str = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.sequential = [s.name for s in spec.sequential]
        self.global_inputs = [s.name for s in spec.global_inputs]
        self.mlps = nn.ModuleDict(
            {
                s.name: InputMLP(s.num_features, dim, initial_dim, max_doublings, act, dropout)
                for s in spec.inputs
            }
        )
        # One row per input (SEQUENTIAL then GLOBAL, event-file order), the last row is the event token.
        self.type_embedding = nn.Parameter(torch.randn(len(spec.inputs) + 1, dim) * 0.02)

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        tokens = []
        for i, name in enumerate(self.sequential):
            tokens.append(self.mlps[name](features[name]) + self.type_embedding[i])  # (B, N_i, D)
        offset = len(self.sequential)
        for i, name in enumerate(self.global_inputs):
            tokens.append((self.mlps[name](features[name]) + self.type_embedding[offset + i]).unsqueeze(1))
        batch = tokens[0].shape[0]
        tokens.append(self.type_embedding[-1].expand(batch, 1, -1))
        object_mask = torch.cat([masks[name] for name in self.sequential], dim=1)  # (B, N)
        always = torch.ones(batch, len(self.global_inputs) + 1, dtype=torch.bool, device=object_mask.device)
        return torch.cat(tokens, dim=1), torch.cat([object_mask, always], dim=1), object_mask
