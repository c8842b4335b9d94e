"""Pre-norm transformer encoders, optionally *stacked*: P independent copies run as one.

The shared encoder is a stack with ``P = 1``; the per-particle branch encoders are one
stack with ``P`` = number of particles, so the branches of all particles cost the same
number of tensor operations as a single encoder (one ``baddbmm`` per linear map, one
fused ``scaled_dot_product_attention`` call per layer over ``P x B`` sequences). At the
batch sizes of this problem (32 events of ~10-20 objects) a CPU step is dominated by
per-operation overhead, not arithmetic, so this matters more than FLOPs.

Layer (pre-norm, as in GPT-2/nanoGPT; SPANet's ``NormFirst``)::

    x = x + Dropout(Attention(LN1(x)))        # keys masked by the padding mask
    x = x + Dropout(W2 act(W1 LN2(x)))        # feed-forward width round(transformer_dim_scale x D)

The options were validated (``config.options_validation``): ``hidden_dim`` divides into the
heads, activation names exist; nothing here checks them again.

Padded tokens never influence real ones: the attention bias is ``-inf`` on padded keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATION_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "elu": F.elu,
    "tanh": torch.tanh,
    "leaky_relu": F.leaky_relu,
    "selu": F.selu,
}
"""The function behind each name of ``config.options.ACTIVATIONS`` (a test keeps the two equal)."""


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function of a validated activation option."""
    return ACTIVATION_FUNCTIONS[name]


def padding_bias(token_mask: Tensor, copies: int = 1) -> Tensor:
    """(B, T) bool mask, True = real -> (copies x B, 1, 1, T) additive attention bias (0 / -inf).

    This is the one place where the mask convention (True = real) is inverted for attention.
    """
    bias = torch.zeros(token_mask.shape, dtype=torch.float32, device=token_mask.device)
    bias = bias.masked_fill(~token_mask, float("-inf"))[:, None, None, :]
    if copies > 1:
        bias = bias.expand(copies, *bias.shape).reshape(copies * bias.shape[0], *bias.shape[1:])
    return bias


class StackedLinear(nn.Module):
    """P independent affine maps applied at once: (P, M, in) -> (P, M, out).

    Initialised like ``nn.Linear`` (uniform in +-1/sqrt(in)) per copy.
    """

    def __init__(self, copies: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(copies, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(copies, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedLayerNorm(nn.Module):
    """P independent LayerNorms over the last axis of (P, M, D)."""

    def __init__(self, copies: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(copies, 1, dim))
        self.bias = nn.Parameter(torch.zeros(copies, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        dim = self.weight.shape[-1]  # a constant, so ONNX export keeps the layer norm static
        if self.weight.shape[0] == 1:
            return F.layer_norm(x, (dim,), self.weight.view(dim), self.bias.view(dim))
        return torch.addcmul(self.bias, F.layer_norm(x, (dim,)), self.weight)


class StackedEncoderLayer(nn.Module):
    """One pre-norm transformer layer, P independent copies. Input/output (P, B, T, D)."""

    def __init__(
        self,
        copies: int,
        dim: int,
        heads: int,
        act: str = "gelu",
        dropout: float = 0.0,
        feedforward_scale: float = 2.0,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.act = activation(act)
        self.norm1 = StackedLayerNorm(copies, dim)
        self.qkv = StackedLinear(copies, dim, 3 * dim)
        self.out = StackedLinear(copies, dim, dim)
        self.norm2 = StackedLayerNorm(copies, dim)
        width = max(1, round(feedforward_scale * dim))  # SPANet: int(round(transformer_dim_scale * D))
        self.ff1 = StackedLinear(copies, dim, width)
        self.ff2 = StackedLinear(copies, width, dim)

    def _drop(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout, self.training) if self.dropout > 0 else x

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """``x`` (P, B, T, D); ``bias`` (P x B, 1, 1, T) from :func:`padding_bias`."""
        P, B, T, D = x.shape
        H = self.heads
        x = x.reshape(P, B * T, D)
        qkv = self.qkv(self.norm1(x)).view(P * B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)  # (3, PB, H, T, d)
        if bias.dtype != qkv.dtype:  # mixed precision: the additive mask must match the queries
            bias = bias.to(qkv.dtype)
        attended = F.scaled_dot_product_attention(
            qkv[0], qkv[1], qkv[2], attn_mask=bias, dropout_p=self.dropout if self.training else 0.0
        )  # (PB, H, T, d)
        attended = attended.transpose(1, 2).reshape(P, B * T, D)
        x = x + self._drop(self.out(attended))
        x = x + self._drop(self.ff2(self.act(self.ff1(self.norm2(x)))))
        return x.view(P, B, T, D)


class StackedEncoder(nn.Module):
    """``layers`` stacked encoder layers followed by a final LayerNorm. (P, B, T, D) -> same."""

    def __init__(
        self,
        copies: int,
        dim: int,
        heads: int,
        layers: int,
        act: str = "gelu",
        dropout: float = 0.0,
        feedforward_scale: float = 2.0,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            StackedEncoderLayer(copies, dim, heads, act, dropout, feedforward_scale) for _ in range(layers)
        )
        self.norm = StackedLayerNorm(copies, dim)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, bias)
        P, B, T, D = x.shape
        return self.norm(x.reshape(P, B * T, D)).view(P, B, T, D)


class StackedResidualBlock(nn.Module):
    """``x + Dropout(act(W LN(x)))`` on (P, M, D), P independent copies: the one residual MLP block."""

    def __init__(self, copies: int, dim: int, act: str = "gelu", dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = StackedLayerNorm(copies, dim)
        self.linear = StackedLinear(copies, dim, dim)
        self.act = activation(act)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self.linear(self.norm(x)))
        return x + (F.dropout(y, self.dropout, self.training) if self.dropout > 0 else y)
