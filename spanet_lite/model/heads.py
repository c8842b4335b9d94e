"""Output heads: banks of small independent MLPs evaluated together.

A :class:`HeadBank` holds H independent MLPs of the same shape (e.g. one detection head
per particle, or one head per regression target) as stacked weights, so all of them run
as one ``baddbmm`` per layer. Each head reads its own input vector (event vector,
particle vector or product vector, see ``network.py``)::

    y_h = W_out act(... act(W_1 LN(x_h)))        # ``layers`` hidden layers of width D

No BatchNorm anywhere: an event's outputs never depend on the rest of its batch.
"""

from __future__ import annotations

from torch import Tensor, nn

from spanet_lite.model.encoder import StackedLayerNorm, StackedLinear, activation


class HeadBank(nn.Module):
    """H independent MLPs: (H, B, D) -> (H, B, out)."""

    def __init__(self, heads: int, dim: int, out_features: int, layers: int, act: str = "gelu") -> None:
        super().__init__()
        self.norm = StackedLayerNorm(heads, dim)
        self.hidden = nn.ModuleList(StackedLinear(heads, dim, dim) for _ in range(max(layers, 0)))
        self.output = StackedLinear(heads, dim, out_features)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.output(x)
