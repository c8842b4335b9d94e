"""Random assignment distributions for the decoding tests (test_decoding.py and
test_decoding_on_device.py; the latter runs on the GPU machines, which lack hypothesis)."""

from __future__ import annotations

import itertools
import math

import torch

from spanet_lite.config import parse_event_spec

MIXED = parse_event_spec(
    """
INPUTS:
  SEQUENTIAL:
    Jets: {pt: none}
EVENT:
  a: [x]
  b: [x, y, z, w]
  c: [x, y]
"""
)


def joint_log_probs(logits: torch.Tensor, num_real: torch.Tensor) -> torch.Tensor:
    """(B, N, ..., N) logits -> log-probabilities with -inf on repeated or padded objects."""
    batch, num_objects, k = logits.shape[0], logits.shape[1], logits.dim() - 1
    grids = torch.meshgrid(*[torch.arange(num_objects)] * k, indexing="ij")
    invalid = torch.zeros((num_objects,) * k, dtype=torch.bool)
    for a, b in itertools.combinations(range(k), 2):
        invalid |= grids[a] == grids[b]
    invalid = invalid.expand(batch, *invalid.shape).clone()
    padded = torch.arange(num_objects)[None, :] >= num_real[:, None]  # (B, N)
    for axis in range(k):
        shape = [batch] + [1] * k
        shape[axis + 1] = num_objects
        invalid |= padded.reshape(shape)
    flat = logits.masked_fill(invalid, -math.inf).reshape(batch, -1)
    return torch.log_softmax(flat, dim=1).reshape(logits.shape)


def assignment_batch(spec, batch: int, num_objects: int, num_real: torch.Tensor, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        p.name: joint_log_probs(
            torch.randn((batch,) + (num_objects,) * p.num_products, generator=generator), num_real
        )
        for p in spec.particles
    }
