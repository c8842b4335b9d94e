"""Decoding: one tuple per particle, no object twice, never a padded or impossible tuple."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from _decoding_helpers import MIXED, assignment_batch
from _evaluation_helpers import TTBAR
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.assignment import numpy_decoder
from spanet_lite.assignment.decoding import decode
from spanet_lite.assignment.torch_decoding import decode_greedy_torch


def test_greedy_takes_the_most_confident_particle_first_and_blocks_its_objects():
    # t1 prefers (0, 1, 2) with p = 0.5; t2 is surer about (0, 3, 4) with p = 0.9.
    # t2 goes first, takes object 0; t1 must then settle for its best tuple without object 0.
    n = 6
    t1 = torch.full((1, n, n, n), 1e-6)
    t1[0, 0, 1, 2] = 0.5
    t1[0, 3, 5, 1] = 0.3  # second choice, but object 3 will be taken by t2
    t1[0, 5, 2, 1] = 0.1  # best tuple free of t2's objects
    t2 = torch.full((1, n, n, n), 1e-6)
    t2[0, 0, 3, 4] = 0.9
    out = decode({"t1": t1.log(), "t2": t2.log()}, TTBAR)
    assert out["t2"].tolist() == [[0, 3, 4]]
    assert out["t1"].tolist() == [[5, 2, 1]]


def test_particle_without_a_valid_tuple_left_is_minus_one_not_padding():
    # Four real objects: the first top takes three, the second cannot be built.
    num_real = torch.tensor([4])
    assignments = assignment_batch(TTBAR, 1, 8, num_real, seed=1)
    out = decode(assignments, TTBAR)
    reported = [p for p in ("t1", "t2") if (out[p] >= 0).all()]
    missing = [p for p in ("t1", "t2") if (out[p] == -1).all()]
    assert len(reported) == 1 and len(missing) == 1
    assert out[reported[0]].max().item() < 4


def test_detection_threshold_switches_particles_off_and_frees_their_objects():
    n = 6
    t1 = torch.full((2, n, n, n), 1e-6)
    t1[:, 0, 1, 2] = 0.9
    t2 = torch.full((2, n, n, n), 1e-6)
    t2[:, 0, 3, 4] = 0.5
    t2[:, 5, 3, 4] = 0.4
    detections = {"t1": torch.tensor([0.9, 0.2]), "t2": torch.tensor([0.8, 0.8])}
    out = decode({"t1": t1.log(), "t2": t2.log()}, TTBAR, detections=detections, threshold=0.5)
    assert out["t1"].tolist() == [[0, 1, 2], [-1, -1, -1]]
    # Event 0: t1 holds object 0, so t2 takes its second choice; event 1: t1 is off, t2 gets object 0.
    assert out["t2"].tolist() == [[5, 3, 4], [0, 3, 4]]


def test_every_decoding_the_options_offer_decodes():
    from spanet_lite.config.options import DECODINGS

    batch = assignment_batch(TTBAR, 1, 6, torch.tensor([6]), 0)
    for mode in DECODINGS:  # the one list validate_options checks the decoding option against
        chosen = decode(batch, TTBAR, mode=mode)
        assert {name: tuple(t.shape) for name, t in chosen.items()} == {"t1": (1, 3), "t2": (1, 3)}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    num_objects=st.integers(4, 9),
    batch=st.integers(1, 12),
    mode=st.sampled_from(["greedy", "exact"]),
    spec=st.sampled_from([TTBAR, MIXED]),
    gated=st.booleans(),
)
def test_decoder_never_reuses_an_object_nor_returns_padding(seed, num_objects, batch, mode, spec, gated):
    generator = torch.Generator().manual_seed(seed)
    num_real = torch.randint(0, num_objects + 1, (batch,), generator=generator)
    assignments = assignment_batch(spec, batch, num_objects, num_real, seed)
    detections = {p.name: torch.rand(batch, generator=generator) for p in spec.particles} if gated else None
    out = decode(assignments, spec, mode=mode, detections=detections, threshold=0.3)
    total = sum(p.num_products for p in spec.particles)
    for event in range(batch):
        used = []
        for particle in spec.particles:
            chosen = out[particle.name][event].tolist()
            assert len(chosen) == particle.num_products
            if detections is not None and detections[particle.name][event] < 0.3:
                assert chosen == [-1] * particle.num_products  # switched off by its detection
            if chosen[0] == -1:
                assert chosen == [-1] * particle.num_products
                continue
            assert all(0 <= i < num_real[event] for i in chosen)  # never a padded object
            assert math.isfinite(assignments[particle.name][(event, *chosen)].item())
            used += chosen
        assert len(used) == len(set(used))  # never an object twice
        # Exact decoding reports every particle whenever there are enough real objects for all.
        if mode == "exact" and detections is None and num_real[event] >= total:
            assert len(used) == total


def brute_force_best(assignments: dict, spec, event: int) -> float:
    """Maximum joint log-probability over all choices of disjoint tuples (all particles reported)."""
    options = []
    for particle in spec.particles:
        table = assignments[particle.name][event]
        finite = torch.nonzero(torch.isfinite(table)).tolist()
        options.append([(tuple(t), table[tuple(t)].item()) for t in finite])
    best = -math.inf
    for combo in itertools.product(*options):
        objects = [i for t, _ in combo for i in t]
        if len(objects) == len(set(objects)):
            best = max(best, sum(s for _, s in combo))
    return best


def test_exact_mode_finds_the_joint_optimum_that_greedy_can_miss():
    # Greedy gives t1 its favourite (0, 1, 2); that leaves t2 only poor tuples.
    # Exact sees that t1's second choice lets t2 keep its favourite and scores higher overall.
    n = 6
    t1 = torch.full((1, n, n, n), 1e-4)
    t1[0, 0, 1, 2] = 0.6
    t1[0, 3, 1, 2] = 0.3
    t2 = torch.full((1, n, n, n), 1e-4)
    t2[0, 0, 4, 5] = 0.55
    assignments = {"t1": t1.log(), "t2": t2.log()}
    greedy = decode(assignments, TTBAR)
    exact = decode(assignments, TTBAR, mode="exact")
    assert greedy["t1"].tolist() == [[0, 1, 2]]
    assert exact["t1"].tolist() == [[3, 1, 2]]
    assert exact["t2"].tolist() == [[0, 4, 5]]


def test_exact_mode_ranks_finely_when_a_particle_is_left_out():
    # b is switched off, so every joint score holds the missing-particle penalty (-1e6); a and c
    # compete for object 0 and the better split (a=1, c=(0, 2)) wins by 0.01 in log-probability,
    # below float32's resolution at 1e6 (0.0625): summed in float32 the two splits tied and the
    # first one (a=0, c=(1, 2), which greedy picks) was taken.
    n = 4
    a = torch.full((1, n), -9.0)
    a[0, 0], a[0, 1] = -0.50, -0.51
    c = torch.full((1, n, n), -9.0)
    c[0, 0, 2], c[0, 1, 2] = -0.50, -0.52
    b = torch.full((1, n, n, n, n), -9.0)
    assignments = {"a": a, "b": b, "c": c}
    detections = {"b": torch.tensor([0.1])}
    exact = decode(assignments, MIXED, detections=detections, mode="exact")
    assert exact["a"].tolist() == [[1]]
    assert exact["c"].tolist() == [[0, 2]]
    assert exact["b"].tolist() == [[-1, -1, -1, -1]]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), num_objects=st.integers(5, 7))
def test_exact_mode_matches_brute_force(seed, num_objects):
    num_real = torch.tensor([num_objects])
    assignments = assignment_batch(TTBAR, 1, num_objects, num_real, seed)
    out = decode(assignments, TTBAR, mode="exact")
    score = sum(assignments[p][(0, *out[p][0].tolist())].item() for p in ("t1", "t2"))
    assert score == pytest.approx(brute_force_best(assignments, TTBAR, 0), abs=1e-4)


def reference_greedy(scores: list[np.ndarray], active: list[bool]) -> list[tuple[int, ...] | None]:
    """The greedy rule for one event, written the slow and obvious way (a plain Python loop).

    Repeatedly take the (particle, tuple) with the highest finite score among particles still
    waiting, whose objects are all free; ties go to the earlier particle, then to the smaller
    tuple (row-major order, as argmax picks them).
    """
    chosen: list[tuple[int, ...] | None] = [None] * len(scores)
    waiting = [j for j, on in enumerate(active) if on]
    used: set[int] = set()
    while waiting:
        best = None
        for j in waiting:
            for index in itertools.product(*map(range, scores[j].shape)):
                value = scores[j][index]
                if math.isfinite(value) and not used & set(index) and (best is None or value > best[0]):
                    best = (value, j, index)
        if best is None:
            break
        _, j, index = best
        chosen[j] = index
        used |= set(index)
        waiting.remove(j)
    return chosen


@pytest.mark.parametrize("gated", [False, True])
def test_numpy_and_torch_decoders_give_the_reference_greedy_answer(gated):
    num_real = torch.tensor([10, 7, 6, 3, 10, 8])
    assignments = assignment_batch(MIXED, 6, 10, num_real, seed=3)
    detections = {"a": torch.tensor([0.9, 0.1, 0.6, 0.9, 0.2, 0.7]), "c": torch.full((6,), 0.4)}
    torch_out = decode(assignments, MIXED, detections=detections if gated else None)
    numpy_out = numpy_decoder.decode(
        {k: v.numpy() for k, v in assignments.items()},
        detections={k: v.numpy() for k, v in detections.items()} if gated else None,
    )
    names = MIXED.particle_names
    switched = torch.tensor([[not gated or float(detections.get(n, torch.ones(6))[e]) >= 0.5 for n in names]
                             for e in range(6)])
    device_out = decode_greedy_torch(assignments, names, switched)  # validation's and a GPU's decoder
    for event in range(6):
        active = switched[event].tolist()
        expected = reference_greedy([assignments[n][event].numpy() for n in names], active)
        for name, want in zip(names, expected):
            width = assignments[name].dim() - 1
            want_row = list(want) if want is not None else [-1] * width
            assert torch_out[name][event].tolist() == want_row, (event, name)
            assert numpy_out[name][event].tolist() == want_row, (event, name)
            assert device_out[name][event].tolist() == want_row, (event, name)


def test_nan_scores_are_never_chosen():
    num_real = torch.tensor([8, 8])
    assignments = assignment_batch(TTBAR, 2, 8, num_real, seed=4)
    best = assignments["t1"][0].reshape(-1).argmax()
    assignments["t1"][0].view(-1)[best] = math.nan
    out = decode(assignments, TTBAR)
    chosen = out["t1"][0].tolist()
    assert math.isfinite(assignments["t1"][(0, *chosen)].item())
    assert decode_greedy_torch(assignments, TTBAR.particle_names)["t1"][0].tolist() == chosen


@pytest.mark.parametrize("mode", ["greedy", "exact"])
def test_empty_batches_and_events_without_enough_objects(mode):
    empty = {p.name: torch.zeros((0,) + (5,) * p.num_products) for p in TTBAR.particles}
    out = decode(empty, TTBAR, mode=mode)
    assert out["t1"].shape == (0, 3)
    two_objects = assignment_batch(TTBAR, 3, 2, torch.tensor([2, 2, 0]), seed=5)  # every tuple impossible
    out = decode(two_objects, TTBAR, mode=mode)
    assert out["t1"].tolist() == out["t2"].tolist() == [[-1, -1, -1]] * 3
    no_slots = {p.name: torch.zeros((2,) + (0,) * p.num_products) for p in TTBAR.particles}
    assert decode(no_slots, TTBAR, mode=mode)["t1"].tolist() == [[-1, -1, -1]] * 2
    if mode == "greedy":  # validation's and a GPU's decoder too
        names = TTBAR.particle_names
        assert decode_greedy_torch(empty, names)["t1"].shape == (0, 3)
        out = decode_greedy_torch(two_objects, names)
        assert out["t1"].tolist() == out["t2"].tolist() == [[-1, -1, -1]] * 3
        assert decode_greedy_torch(no_slots, names)["t2"].tolist() == [[-1, -1, -1]] * 2


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    num_objects=st.integers(1, 8),
    batch=st.integers(1, 9),
    spec=st.sampled_from([TTBAR, MIXED]),
    gated=st.booleans(),
    nans=st.booleans(),
)
def test_the_torch_and_numpy_greedy_decoders_agree_on_ties_nans_and_switched_off_particles(
    seed, num_objects, batch, spec, gated, nans
):
    """The decoder a GPU runs (torch) and the CPU's (numpy) must choose alike, also where scores
    tie (rounded to one decimal: ties within and across particles are common), where a NaN
    stands in a distribution, where no valid tuple is left, and with gating (no event or no
slot at all: test_empty_batches_and_events_without_enough_objects)."""
    generator = torch.Generator().manual_seed(seed)
    num_real = torch.randint(0, num_objects + 1, (batch,), generator=generator)
    assignments = {name: (value * 10).round() / 10
                   for name, value in assignment_batch(spec, batch, num_objects, num_real, seed).items()}
    if nans and batch and num_objects:
        flat = assignments[spec.particle_names[-1]].view(batch, -1)
        flat[torch.arange(batch), flat.argmax(1)] = math.nan  # in place of the best tuple
    active = torch.rand((batch, len(spec.particles)), generator=generator) >= 0.3 if gated else None
    on_device = decode_greedy_torch(assignments, spec.particle_names, active)
    by_numpy = numpy_decoder.decode_greedy(
        [assignments[name].numpy() for name in spec.particle_names],
        active.numpy() if gated else np.ones((batch, len(spec.particles)), dtype=bool),
    )
    for name, chosen in zip(spec.particle_names, by_numpy):
        assert on_device[name].tolist() == chosen.tolist(), name
