"""Symmetric tensor attention: exact product symmetry, exact masking, normalisation."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.config import parse_event_spec
from spanet_lite.model.symmetric_attention import SymmetricTensorAttention, object_marginals

# (products, PERMUTATIONS entry) for k = 1..4: complete groups and explicit-cycle groups.
GROUPS = [
    (["a"], None),
    (["a", "b"], "[[a, b]]"),
    (["a", "b", "c"], "[[a, b]]"),
    (["a", "b", "c"], "[[a, b, c]]"),  # complete S3 (order 6)
    (["a", "b", "c"], "[[[a, b, c]]]"),  # explicit 3-cycle (order 3)
    (["a", "b", "c", "d"], "[[[a, b], [c, d]]]"),  # double transposition (order 2)
    (["a", "b", "c", "d"], "[[a, b], [c, d]]"),  # two independent swaps (order 4)
    (["a", "b", "c", "d"], "[[a, b, c, d]]"),  # complete S4 (order 24)
    (["a", "b", "c", "d"], "[[[a, b, c, d]]]"),  # explicit 4-cycle (order 4)
]


def particle(products: list[str], permutations: str | None):
    perm = f"PERMUTATIONS:\n  p: {permutations}\n" if permutations else ""
    inputs = "INPUTS:\n  SEQUENTIAL:\n    Jets: {pt: none}\n    Leptons: {pt: none}\n"
    text = f"{inputs}EVENT:\n  p: [{', '.join(products)}]\n{perm}"
    return parse_event_spec(text).particle("p")


def run(products, permutations, n, seed, widths=None):
    torch.manual_seed(seed)
    spec_particle = particle(products, permutations)
    attention = SymmetricTensorAttention(spec_particle, ["Jets", "Leptons"], 8)
    widths = widths or (n, 0)
    total = sum(widths)
    objects = torch.randn(3, total, 8)
    mask = torch.rand(3, total) < 0.8
    mask[:, :3] = True
    with torch.no_grad():
        return spec_particle, attention(objects, mask, attention.static_tables(widths, objects.device)), mask


@settings(max_examples=12, deadline=None)
@given(case=st.sampled_from(GROUPS), n=st.integers(4, 6), seed=st.integers(0, 10_000))
def test_output_is_bitwise_invariant_under_every_group_element(case, n, seed):
    products, permutations = case
    spec_particle, log_probs, _ = run(products, permutations, n, seed)
    assert log_probs.shape == (3, *[n] * len(products))
    for element in spec_particle.symmetry.elements:
        permuted = log_probs.permute(0, *[1 + a for a in element])
        assert torch.equal(permuted, log_probs), element


@settings(max_examples=10, deadline=None)
@given(case=st.sampled_from(GROUPS), n=st.integers(4, 6), seed=st.integers(0, 10_000))
def test_invalid_tuples_are_exactly_minus_infinity_and_the_rest_sums_to_one(case, n, seed):
    products, permutations = case
    k = len(products)
    _, log_probs, mask = run(products, permutations, n, seed)
    for b in range(3):
        for t in itertools.product(range(n), repeat=k):
            valid = len(set(t)) == k and all(bool(mask[b, i]) for i in t)
            value = float(log_probs[(b, *t)])
            assert (value == -math.inf) != valid, (t, value)
    total = torch.logsumexp(log_probs.reshape(3, -1), 1)
    enough = mask.sum(1) >= k
    torch.testing.assert_close(total[enough], torch.zeros(int(enough.sum())), atol=1e-5, rtol=0)
    assert torch.isneginf(total[~enough]).all()


def test_the_group_orders_match_the_declared_groups():
    assert [particle(p, g).symmetry.order for p, g in GROUPS] == [1, 2, 2, 6, 3, 2, 4, 24, 4]


def test_associated_product_only_takes_objects_of_its_input():
    text = """
INPUTS:
  SEQUENTIAL:
    Jets: {pt: none}
    Leptons: {pt: none}
EVENT:
  lt: [{b: Jets}, {l: Leptons}, nu]
"""
    spec_particle = parse_event_spec(text).particle("lt")
    attention = SymmetricTensorAttention(spec_particle, ["Jets", "Leptons"], 8)
    widths = (4, 2)
    tables = attention.static_tables(widths, torch.device("cpu"))
    log_probs = attention(torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool), tables)
    finite = torch.isfinite(log_probs)
    assert not finite[:, 4:, :, :].any()  # b from Leptons
    assert not finite[:, :, :4, :].any()  # l from Jets
    assert finite[:, 1, 5, 2].all() and finite[:, 0, 4, 5].all()  # nu may be anywhere else


def test_event_with_fewer_objects_than_products_gets_no_probability_and_no_nan():
    attention = SymmetricTensorAttention(particle(["a", "b", "c"], "[[a, b]]"), ["Jets", "Leptons"], 8)
    objects = torch.randn(2, 5, 8, requires_grad=True)
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    log_probs = attention(objects, mask, attention.static_tables((5, 0), objects.device))
    assert torch.isneginf(log_probs[0]).all()
    assert torch.isfinite(torch.logsumexp(log_probs[1].reshape(-1), 0))
    log_probs[1, 0, 1, 2].backward()
    assert torch.isfinite(objects.grad).all()


def test_tables_first_built_in_inference_mode_still_train():
    """Lightning validates under ``torch.inference_mode`` and the tables are cached per layout: a
    training step whose layout validation met first saves the orbit index for backward."""
    attention = SymmetricTensorAttention(particle(["a", "b", "c"], "[[a, b, c]]"), ["Jets", "Leptons"], 8)
    objects = torch.randn(2, 5, 8, requires_grad=True)
    mask = torch.ones(2, 5, dtype=torch.bool)
    with torch.inference_mode():
        attention(objects.detach(), mask, attention.static_tables((5, 0), objects.device))
    log_probs = attention(objects, mask, attention.static_tables((5, 0), objects.device))
    log_probs[0, 0, 1, 2].backward()
    assert objects.grad is not None and torch.isfinite(objects.grad).all()


def test_marginals_of_a_symmetric_pair_are_equal_and_sum_to_one():
    _, log_probs, mask = run(["a", "b"], "[[a, b]]", 5, 0)
    marginals = object_marginals(log_probs)  # (B, 2, N)
    torch.testing.assert_close(marginals[:, 0], marginals[:, 1])
    torch.testing.assert_close(marginals.sum(-1), torch.ones(3, 2))
    assert (marginals[:, 0][~mask] < 1e-30).all()


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_score_of_a_tuple_is_the_group_average_of_the_multilinear_form(k):
    """The documented formula, checked on one tuple against a direct computation."""
    products = list("abcd")[:k]
    permutations = f"[[{', '.join(products)}]]" if k > 1 else None
    torch.manual_seed(k)
    spec_particle = particle(products, permutations)
    attention = SymmetricTensorAttention(spec_particle, ["Jets", "Leptons"], 8)
    n = k + 2
    objects = torch.randn(1, n, 8)
    mask = torch.ones(1, n, dtype=torch.bool)
    log_probs = attention(objects, mask, attention.static_tables((n, 0), objects.device))
    q = attention.project(attention.norm(objects))[0]  # (N, k A)

    def raw(t):
        if k == 1:
            return q[t[0], 0]
        parts = q.view(n, k, -1)
        return torch.stack([parts[t[j], j] for j in range(k)]).prod(0).sum() / math.sqrt(parts.shape[-1])

    def symmetric(t):
        return torch.stack([raw([t[g[j]] for j in range(k)]) for g in spec_particle.symmetry.elements]).mean()

    tuples = [t for t in itertools.product(range(n), repeat=k) if len(set(t)) == k]
    scores = torch.stack([symmetric(t) for t in tuples])
    expected = torch.log_softmax(scores, 0)
    got = torch.stack([log_probs[(0, *t)] for t in tuples])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
