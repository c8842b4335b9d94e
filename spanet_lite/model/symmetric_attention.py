"""Symmetric tensor attention: the joint distribution over a particle's k-tuples of objects.

For a particle with k products, each object ``i`` of the particle's branch gives k
vectors ``q_1(i) ... q_k(i)`` (one linear map to ``k x A``). The score of an *ordered*
tuple is a rank-A multilinear form (a CP-factorised k-th order attention tensor)::

    S[i_1, ..., i_k] = A^(-1/2) sum_a q_1(i_1)_a q_2(i_2)_a ... q_k(i_k)_a

built with broadcast products and one ``bmm``: O(B N^k A) time, O(B N^(k-1) A + B N^k)
memory, for this particle only. The biases of the linear map let the form also express
lower-order (pair and single-object) terms.

Symmetry under the product group G (``ParticleSpec.symmetry.elements``, complete groups
and explicit-cycle groups alike) is imposed by averaging over the group::

    S_sym[t] = 1/|G| sum_{g in G} S[g(t)]

In real arithmetic this is exactly invariant. In floating point, a sum of two terms is
exactly symmetric (IEEE addition commutes) but longer sums are reordered by g, so for
|G| > 2 every tuple then reads the value of one fixed representative of its orbit (an
``index_select`` with a cached index): the output is *bitwise* invariant.

Invalid tuples get exactly ``-inf``: a padded object, the same object twice, or an object
outside the input an associated product must come from. (If symmetric products name
different inputs, each position accepts the union of the inputs of its orbit so that the
mask stays symmetric.) The result is a log-softmax over all valid flattened tuples; an
event with no valid tuple at all (fewer than k objects) gets ``-inf`` everywhere.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spanet_lite.config.event_spec import ParticleSpec

TABLE_CACHE_SIZE = 32  # input layouts whose static tables a particle keeps (see static_tables)


class SymmetricTensorAttention(nn.Module):
    """Branch object vectors (B, N, D) -> joint log-probabilities (B, N, ..., N) with k object axes."""

    def __init__(self, particle: ParticleSpec, sequential: list[str], dim: int) -> None:
        super().__init__()
        self.k = particle.num_products
        self.elements = particle.symmetry.elements
        self.attention_dim = dim if self.k > 1 else 1
        self.norm = nn.LayerNorm(dim)
        self.project = nn.Linear(dim, self.k * self.attention_dim)
        # Which SEQUENTIAL inputs (by position) each product position may take objects from.
        allowed: list[set[int]] = []
        orbit_of = {j: orbit for orbit in particle.symmetry.orbits() for j in orbit}
        for j in range(self.k):
            names = [particle.products[m].input for m in orbit_of[j]]
            if any(name is None for name in names):
                allowed.append(set(range(len(sequential))))
            else:
                allowed.append({sequential.index(name) for name in names if name is not None})
        self.allowed_inputs = allowed
        self._cache: dict[tuple, tuple[Tensor, Tensor | None]] = {}

    def static_tables(self, widths: tuple[int, ...], device: torch.device) -> tuple[Tensor, Tensor | None]:
        """(N^k,) bool: tuples valid before looking at padding; (N^k,) orbit representative or None.

        Depends only on the input widths, so it is computed once per layout and cached. Batches
        are trimmed to the slots they use, so several layouts occur; the cache keeps the
        ``TABLE_CACHE_SIZE`` most recently used (each is ~9 N^k bytes).

        The tables are built outside inference mode even when the caller is in it (Lightning's
        validation, ``evaluate``): a cached inference tensor cannot be saved for backward, so a
        training step whose layout validation met first would fail (``canon`` in the eager
        network, any table in the compiled graph, which saves its inputs).
        """
        key = (widths, str(device))
        if key in self._cache:
            self._cache[key] = self._cache.pop(key)  # now the most recently used
            return self._cache[key]
        with torch.inference_mode(False):
            n, k = sum(widths), self.k
            slot_input = torch.repeat_interleave(torch.arange(len(widths)), torch.tensor(widths))  # (N,)
            grid = torch.stack(torch.meshgrid(*[torch.arange(n)] * k, indexing="ij"), -1).reshape(-1, k)
            valid = torch.ones(grid.shape[0], dtype=torch.bool)
            for j in range(k):
                allowed = [int(slot_input[i]) in self.allowed_inputs[j] for i in range(n)]
                ok = torch.tensor(allowed, dtype=torch.bool)  # bool also with no slot (n = 0)
                valid &= ok[grid[:, j]]
                for m in range(j + 1, k):
                    valid &= grid[:, j] != grid[:, m]
            canon = None
            if len(self.elements) > 2:
                strides = torch.tensor([n ** (k - 1 - j) for j in range(k)])
                flat = [(grid[:, list(g)] * strides).sum(1) for g in self.elements]
                canon = torch.stack(flat, 0).min(0).values.to(device)
            self._cache[key] = (valid.to(device), canon)
            while len(self._cache) > TABLE_CACHE_SIZE:
                del self._cache[next(iter(self._cache))]  # the least recently used layout
        return self._cache[key]

    def forward(self, objects: Tensor, object_mask: Tensor, tables: tuple[Tensor, Tensor | None]) -> Tensor:
        """``objects`` (B, N, D), ``object_mask`` (B, N) True = real, ``tables`` the
        :meth:`static_tables` of the inputs' widths (sum N). The caller builds them, eagerly:
        a compiled network takes them as inputs rather than breaking its graph to build them."""
        B, N, _ = objects.shape
        k, A = self.k, self.attention_dim
        q = self.project(self.norm(objects))  # (B, N, k A)
        if k == 1:
            scores = q.view(B, N)
        else:
            q = q.view(B, N, k, A).permute(2, 0, 3, 1).contiguous()  # (k, B, A, N)
            # Outer product over positions 1..k-1 with the rank index A leading, then one bmm
            # against position 0: (B, N, A) x (B, A, N^(k-1)). On CPU this layout is markedly
            # faster than the alternatives (MKL is slow for narrow outputs, and A-major keeps
            # the backward of the outer product a contiguous reduction).
            outer = q[k - 1] * (1.0 / math.sqrt(A))  # (B, A, N)
            for j in range(k - 2, 0, -1):
                outer = (q[j].unsqueeze(3) * outer.unsqueeze(2)).reshape(B, A, -1)  # (B, A, N^(k-j))
            scores = torch.bmm(q[0].transpose(1, 2), outer).view(B, *[N] * k)  # (B, N, ..., N)
            if len(self.elements) > 1:
                total = scores
                for g in self.elements[1:]:
                    total = total + scores.permute(0, *[1 + a for a in g])
                scores = total * (1.0 / len(self.elements))
        static_valid, canon = tables
        flat = scores.reshape(B, -1)  # (B, N^k)
        if canon is not None:
            flat = flat.index_select(1, canon)
        valid = object_mask
        for _ in range(1, k):
            valid = (valid.unsqueeze(-1) & object_mask.unsqueeze(1)).reshape(B, -1)  # (B, N^(j+1))
        valid = valid & static_valid
        # Rows without any valid tuple are filled with 0 instead of -inf so that the
        # log-softmax stays finite there; the final fill makes every invalid entry -inf.
        fill = torch.where(valid.any(1, keepdim=True), float("-inf"), 0.0)  # (B, 1)
        log_probs = torch.log_softmax(torch.where(valid, flat, fill), 1)
        return log_probs.masked_fill(~valid, float("-inf")).view(B, *[N] * k)


def object_marginals(log_probs: Tensor) -> Tensor:
    """(B, N, ..., N) joint log-probabilities -> (B, k, N): P(product j is object i).

    Invalid tuples contribute at most ~2e-35 each (see the clamp below).
    """
    # exp(-inf) and underflowing exp take a slow path on CPU; clamping at -80 keeps every
    # result a normal float (e^-80 ~ 2e-35, negligible next to any real probability).
    probs = log_probs.clamp_min(-80.0).exp()
    k = probs.dim() - 1
    if k == 1:
        return probs.unsqueeze(1)
    axes = list(range(1, k + 1))
    return torch.stack([probs.sum(dim=[a for a in axes if a != 1 + j]) for j in range(k)], 1)
