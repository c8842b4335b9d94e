"""Per-input embeddings: normalised features -> tokens of width ``hidden_dim``.

Each input (SEQUENTIAL or GLOBAL) has its own MLP of ``num_embedding_layers`` layers:
a linear map from its features to ``hidden_dim`` with the activation, then residual blocks
``x + act(W LN(x))``. A learned *input-type* vector is added so the encoder knows which
input a token came from. There is no positional encoding, so everything downstream is
equivariant to the order of objects within an input.

Token layout per event (T = N + G + 1)::

    [ objects of SEQUENTIAL input 1 | ... | input S ]  [ GLOBAL 1 ... GLOBAL G ]  [ event ]
      N = sum of padded widths, the combined object index space

The last token is a learned *event token*: it is always real, so no attention row is
ever fully masked (an event without objects still has a well-defined output), and its
encoder output is the pooled event vector for event-level heads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.model.encoder import StackedResidualBlock, activation


class InputMLP(nn.Module):
    """(..., F) -> (..., D): ``act(W x)`` then ``layers - 1`` residual blocks."""

    def __init__(self, features: int, dim: int, layers: int, act: str, dropout: float) -> None:
        super().__init__()
        self.first = nn.Linear(features, dim)
        self.act = activation(act)
        self.blocks = nn.ModuleList(
            StackedResidualBlock(1, dim, act, dropout) for _ in range(max(layers, 1) - 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[:-1]
        y = self.act(self.first(x)).reshape(1, -1, self.first.out_features)  # (1, M, D)
        for block in self.blocks:
            y = block(y)
        return y.view(*shape, -1)


class InputEmbedding(nn.Module):
    """Normalised features of every input -> (tokens (B, T, D), token mask (B, T), object mask (B, N))."""

    def __init__(
        self, spec: EventSpec, dim: int, layers: int, act: str = "gelu", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.sequential = [s.name for s in spec.sequential]
        self.global_inputs = [s.name for s in spec.global_inputs]
        self.mlps = nn.ModuleDict(
            {s.name: InputMLP(s.num_features, dim, layers, act, dropout) for s in spec.inputs}
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
