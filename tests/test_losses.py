"""Losses: hand-computed values, EVENT-symmetry invariance, masking, NaN handling, weights."""

from __future__ import annotations

import math

import pytest
import torch
from _model_helpers import TTBAR_YAML, random_batch, small_options, spec_from, statistics_for
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.config.options import Options
from spanet_lite.config.options_validation import validate_options
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.errors import InputError
from spanet_lite.model.network import SpanetNetwork
from spanet_lite.model.normalization import RegressionNormalizer
from spanet_lite.model.outputs import Outputs
from spanet_lite.training.losses import compute_losses

PAIRS = spec_from("""
INPUTS:
  SEQUENTIAL:
    Jets: {pt: none}
EVENT:
  t1: [q1, q2]
  t2: [q1, q2]
PERMUTATIONS:
  EVENT: [[t1, t2]]
  t1: [[q1, q2]]
  t2: [[q1, q2]]
REGRESSIONS:
  EVENT: [[ht, laplacian]]
  t1: [{PARTICLE: [mass]}]
  t2: [{PARTICLE: [mass]}]
CLASSIFICATIONS:
  EVENT: [signal]
""")
STATS = DatasetStatistics(
    regression_center={"EVENT/ht": 1.0, "t1/PARTICLE/mass": 1.0, "t2/PARTICLE/mass": 1.0},
    regression_scale={"EVENT/ht": 2.0, "t1/PARTICLE/mass": 2.0, "t2/PARTICLE/mass": 2.0},
    num_classes={"EVENT/signal": 3},
)


class Normaliser:
    """The part of the network the losses use."""

    def __init__(self) -> None:
        self.normalizer = RegressionNormalizer(PAIRS, STATS)

    def normalize_regressions(self, values):
        return self.normalizer.normalize(values)


def value(x: torch.Tensor) -> float:
    return float(x.detach())


def pair_log_probs(unordered: dict[tuple[int, int], float]) -> torch.Tensor:
    """(1, 3, 3) symmetric log-probabilities from probabilities of unordered pairs of 3 objects."""
    table = torch.full((1, 3, 3), -math.inf)
    for (i, j), p in unordered.items():
        table[0, i, j] = table[0, j, i] = math.log(p / 2)
    return table.requires_grad_()


# P(t1 = {0,1}) = 0.6, {0,2} = 0.3, {1,2} = 0.1;  P(t2 = {0,1}) = 0.1, {0,2} = 0.2, {1,2} = 0.7
T1 = {(0, 1): 0.6, (0, 2): 0.3, (1, 2): 0.1}
T2 = {(0, 1): 0.1, (0, 2): 0.2, (1, 2): 0.7}


def hand_outputs() -> Outputs:
    return Outputs(
        assignments={"t1": pair_log_probs(T1), "t2": pair_log_probs(T2)},
        detections={
            "t1": torch.tensor([0.0], requires_grad=True),
            "t2": torch.tensor([2.0], requires_grad=True),
        },
        regressions={
            "EVENT/ht": torch.tensor([1.5]),
            "t1/PARTICLE/mass": torch.tensor([0.0]),
            "t2/PARTICLE/mass": torch.tensor([1.0]),
        },
        classifications={"EVENT/signal": torch.tensor([[0.0, 1.0, 2.0]])},
    )


def hand_batch(t1=(1, 0), t2=(2, 1), present=(True, True), **extra) -> Batch:
    targets = {"t1": torch.tensor([t1]), "t2": torch.tensor([t2])}
    masks = {"t1": torch.tensor([present[0]]), "t2": torch.tensor([present[1]])}
    regressions = {
        "EVENT/ht": torch.tensor([6.0]),
        "t1/PARTICLE/mass": torch.tensor([1.0]),
        "t2/PARTICLE/mass": torch.tensor([3.0]),
    }
    return Batch(
        {"Jets": torch.zeros(1, 3, 1)},
        {"Jets": torch.ones(1, 3, dtype=torch.bool)},
        targets,
        masks,
        regressions=regressions,
        classifications={"EVENT/signal": torch.tensor([2])},
        **extra,
    )


ALL_TERMS = dict(detection_loss_scale=1.0, regression_loss_scale=1.0, classification_loss_scale=1.0)
"""SPANet's defaults train the assignment only; these tests weigh every term."""


def losses(outputs=None, batch=None, **options):
    return compute_losses(
        outputs or hand_outputs(),
        batch or hand_batch(),
        Normaliser(),
        PAIRS,
        Options(**{**ALL_TERMS, **options}),
    )


def test_assignment_loss_is_the_nll_of_the_unordered_assignment_under_the_best_pairing():
    terms = losses().terms
    # identity pairing: -log 0.6 - log 0.7 = 0.867; swapped: -log 0.1 - log 0.1 = 4.605 -> min = identity
    assert value(terms["assignment_loss/t1"]) == pytest.approx(-math.log(0.6) / 2, rel=1e-6)
    assert value(terms["assignment_loss/t2"]) == pytest.approx(-math.log(0.7) / 2, rel=1e-6)
    assert value(terms["assignment_loss"]) == pytest.approx((-math.log(0.6) - math.log(0.7)) / 2, rel=1e-6)


def test_target_order_within_a_symmetric_particle_does_not_matter():
    a = losses(batch=hand_batch(t1=(0, 1), t2=(1, 2))).terms["assignment_loss"]
    b = losses(batch=hand_batch(t1=(1, 0), t2=(2, 1))).terms["assignment_loss"]
    assert value(a) == value(b)


@pytest.mark.parametrize("mode", ["mean", "softmin"])
def test_mean_and_softmin_combine_both_pairings(mode):
    identity = -math.log(0.6) - math.log(0.7)
    swapped = -2 * math.log(0.1)
    if mode == "mean":
        expected = (identity + swapped) / 2
    else:
        w = [math.exp(-identity), math.exp(-swapped)]
        expected = (w[0] * identity + w[1] * swapped) / sum(w)
    assert value(losses(combine_pair_loss=mode).terms["assignment_loss"]) == pytest.approx(
        expected / 2, rel=1e-5
    )


def test_absent_particle_is_excluded_from_assignment_but_trained_by_detection():
    terms = losses(batch=hand_batch(t2=(2, -1), present=(True, False))).terms
    assert value(terms["assignment_loss"]) == pytest.approx(-math.log(0.6), rel=1e-6)
    assert value(terms["assignment_loss/t2"]) == 0.0
    bce_t1, bce_t2 = math.log(2), math.log(1 + math.exp(2.0))  # logits 0 (label 1) and 2 (label 0)
    assert value(terms["detection_loss"]) == pytest.approx((bce_t1 + bce_t2) / 2, rel=1e-6)


def test_focal_gamma_scales_each_nll_by_one_minus_probability_to_the_gamma():
    terms = losses(focal_gamma=2.0).terms
    expected = (0.4**2 * -math.log(0.6) + 0.3**2 * -math.log(0.7)) / 2
    assert value(terms["assignment_loss"]) == pytest.approx(expected, rel=1e-5)


def test_weights_multiply_into_assignment_and_normalise():
    batch = hand_batch(
        event_weights=torch.tensor([3.0]),
        assignment_weights=torch.tensor([0.5]),
        particle_weights={"t2": torch.tensor([2.0])},
    )
    terms = losses(batch=batch).terms
    w1, w2 = 3.0 * 0.5, 3.0 * 0.5 * 2.0
    expected = (w1 * -math.log(0.6) + w2 * -math.log(0.7)) / (w1 + w2)
    assert value(terms["assignment_loss"]) == pytest.approx(expected, rel=1e-6)


def test_regression_classification_and_overlap_terms_by_hand():
    terms = losses().terms
    # ht laplacian: target (6-1)/2 = 2.5, prediction 1.5 -> |1|
    # masses gaussian: t1 (1-1)/2 = 0 vs 0, t2 (3-1)/2 = 1 vs 1
    assert value(terms["regression_loss/EVENT/ht"]) == pytest.approx(1.0)
    assert value(terms["regression_loss/t1/PARTICLE/mass"]) == 0.0
    assert value(terms["regression_loss/t2/PARTICLE/mass"]) == 0.0
    assert value(terms["classification_loss/EVENT/signal"]) == pytest.approx(
        -math.log(math.exp(2) / (1 + math.e + math.exp(2))), rel=1e-6
    )
    # usage t1: (0.9, 0.7, 0.4); t2: (0.3, 0.8, 0.9) -> overlap 0.27 + 0.56 + 0.36
    assert value(losses(overlap_loss_scale=1.0).terms["overlap_loss"]) == pytest.approx(1.19, rel=1e-5)
    assert "overlap_loss" not in terms and "kl_loss" not in terms  # scale 0: not computed, as in SPANet


def test_spanet_kl_term_by_hand():
    # Unordered-pair distributions P = (0.6, 0.3, 0.1), Q = (0.1, 0.2, 0.7), mixture M = (0.35, 0.25, 0.4).
    kl_pm = 0.6 * math.log(0.6 / 0.35) + 0.3 * math.log(0.3 / 0.25) + 0.1 * math.log(0.1 / 0.4)
    kl_qm = 0.1 * math.log(0.1 / 0.35) + 0.2 * math.log(0.2 / 0.25) + 0.7 * math.log(0.7 / 0.4)
    js = (kl_pm + kl_qm) / 2  # 0.2306
    # SPANet: exp(-JS^2) per event, times 2 x (sum of particle weights) / (reconstructable particles)
    assert value(losses(kl_loss_scale=1.0).terms["kl_loss"]) == pytest.approx(
        2 * 2 * math.exp(-(js**2)) / 2, rel=1e-6
    )
    assert value(losses(kl_loss_scale=1.0).terms["kl_loss"]) == pytest.approx(1.8964, abs=1e-4)
    # a particle that is not reconstructable switches its pairs off (the count still has t1)
    assert value(losses(batch=hand_batch(present=(True, False)), kl_loss_scale=1.0).terms["kl_loss"]) == 0.0


def test_spanet_kl_term_is_weighted_by_event_and_balancing_weights_not_by_the_files_particle_weights():
    unweighted = value(losses(kl_loss_scale=1.0).terms["kl_loss"])
    balanced = hand_batch(event_weights=torch.tensor([3.0]), assignment_weights=torch.tensor([0.5]))
    assert value(losses(batch=balanced, kl_loss_scale=1.0).terms["kl_loss"]) == pytest.approx(
        1.5 * unweighted, rel=1e-6
    )
    # SPANet's TARGETS/<particle>/WEIGHT weighs the assignment and detection terms only
    particle_weighted = hand_batch(particle_weights={"t2": torch.tensor([2.0])})
    terms = losses(batch=particle_weighted, kl_loss_scale=1.0).terms
    assert value(terms["kl_loss"]) == pytest.approx(unweighted, rel=1e-6)
    assert value(terms["assignment_loss"]) != pytest.approx(value(losses().terms["assignment_loss"]))


def test_spanet_kl_gradient_flows_through_the_mixture_only():
    outputs = hand_outputs()
    losses(outputs=outputs, kl_loss_scale=1.0).terms["kl_loss"].backward()
    grad = outputs.assignments["t1"].grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_event_transpositions_of_the_event_group():
    from spanet_lite.training.losses import event_transpositions

    assert event_transpositions(((0, 1), (1, 0))) == [(0, 1)]
    # the cyclic group of three particles: (0 1 2) = (0 2)(0 1)
    assert event_transpositions(((0, 1, 2), (1, 2, 0), (2, 0, 1))) == [(0, 1), (0, 2)]
    assert event_transpositions(((0, 1, 2),)) == []


def test_total_is_the_scaled_sum_of_the_family_terms():
    scales = dict(
        assignment_loss_scale=2.0,
        detection_loss_scale=0.5,
        regression_loss_scale=3.0,
        classification_loss_scale=0.25,
        kl_loss_scale=0.1,
        overlap_loss_scale=0.2,
    )
    result = losses(**scales)
    expected = sum(scale * value(result.terms[key.replace("_scale", "")]) for key, scale in scales.items())
    assert value(result.total) == pytest.approx(expected, rel=1e-6)
    result.total.backward()


ASSIGNMENT_ONLY = dict(detection_loss_scale=0.0, regression_loss_scale=0.0, classification_loss_scale=0.0)
"""SPANet's default objective: the assignment term alone."""


def test_spanets_default_total_equals_ours_on_full_unweighted_events_and_not_on_partial_ones():
    # SPANet: mean over particles of sum_b m w nll / max(1, N_p) (docs/migrating_from_spanet.md).
    full = losses(**ASSIGNMENT_ONLY).total
    assert value(full) == pytest.approx((-math.log(0.6) - math.log(0.7)) / 2, rel=1e-6)
    # Only t1 reconstructable: SPANet's mean still counts t2 (as 0), so it is half of ours here.
    partial = losses(batch=hand_batch(present=(True, False)), **ASSIGNMENT_ONLY).total
    spanet = (-math.log(0.6) / 1 + 0.0 / 1) / 2
    assert value(partial) == pytest.approx(2 * spanet, rel=1e-6)


def test_missing_regression_targets_contribute_exactly_zero_and_no_nan_gradient():
    batch = hand_batch()
    batch.regressions = {key: torch.tensor([float("nan")]) for key in batch.regressions}
    batch.classifications = {"EVENT/signal": torch.tensor([-1])}
    outputs = hand_outputs()
    prediction = torch.tensor([0.3], requires_grad=True)
    outputs.regressions["EVENT/ht"] = prediction
    outputs.classifications["EVENT/signal"] = outputs.classifications["EVENT/signal"].requires_grad_()
    result = losses(outputs=outputs, batch=batch)
    assert value(result.terms["regression_loss"]) == 0.0
    assert value(result.terms["classification_loss"]) == 0.0
    result.total.backward()
    assert value(prediction.grad) == 0.0
    assert torch.isfinite(outputs.classifications["EVENT/signal"].grad).all()


def test_particle_regressions_follow_the_chosen_event_pairing():
    """Swap the truth particles: the best pairing swaps too, so each mass is compared with its partner."""
    outputs = hand_outputs()
    outputs.assignments = {"t1": pair_log_probs(T2), "t2": pair_log_probs(T1)}  # now the swap is best
    terms = losses(outputs=outputs).terms
    # output t1 (prediction 0) is compared with t2's target (1), output t2 (prediction 1) with t1's (0)
    assert value(terms["regression_loss/t1/PARTICLE/mass"]) == pytest.approx(1.0)
    assert value(terms["regression_loss/t2/PARTICLE/mass"]) == pytest.approx(1.0)


def test_unknown_combine_pair_loss_is_an_options_error():
    with pytest.raises(InputError, match="combine_pair_loss"):
        validate_options(Options(combine_pair_loss="max"))


def swap_truth(batch: Batch) -> Batch:
    """Relabel t1 <-> t2 in every target of the batch."""

    def swap(d):
        out = dict(d)
        for a, b in (("t1", "t2"), ("t2", "t1")):
            for key, value in d.items():
                if key.split("/")[0] == a:
                    out[b + key[len(a) :]] = value
        return out

    return Batch(
        batch.features,
        batch.masks,
        swap(batch.targets),
        swap(batch.target_masks),
        swap(batch.particle_weights),
        swap(batch.regressions),
        swap(batch.classifications),
        batch.event_weights,
        batch.assignment_weights,
        batch.classification_weights,
        batch.assignment_event_mask,
    )


TTBAR = spec_from(TTBAR_YAML)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), mode=st.sampled_from(["min", "softmin", "mean"]))
def test_relabelling_t1_and_t2_leaves_every_family_term_unchanged(seed, mode):
    torch.manual_seed(seed)
    options = small_options(combine_pair_loss=mode, kl_loss_scale=1.0, overlap_loss_scale=1.0)
    net = SpanetNetwork(TTBAR, options, statistics_for(TTBAR)).eval()
    batch = random_batch(TTBAR, 4, {"Jets": 7}, torch.Generator().manual_seed(seed))
    batch.particle_weights = {"t1": torch.rand(4), "t2": torch.rand(4)}
    with torch.no_grad():
        outputs = net(batch.features, batch.masks)
        a = compute_losses(outputs, batch, net, TTBAR, options)
        b = compute_losses(outputs, swap_truth(batch), net, TTBAR, options)
    for key in (
        "assignment_loss",
        "detection_loss",
        "regression_loss",
        "classification_loss",
        "kl_loss",
        "overlap_loss",
    ):
        assert value(b.terms[key]) == pytest.approx(value(a.terms[key]), rel=1e-5, abs=1e-6), key
    assert value(b.total) == pytest.approx(value(a.total), rel=1e-5)


def test_network_losses_are_finite_and_every_term_is_named():
    options = small_options()
    net = SpanetNetwork(TTBAR, options, statistics_for(TTBAR))
    batch = random_batch(TTBAR, 6, {"Jets": 7}, torch.Generator().manual_seed(0))
    result = compute_losses(net(batch.features, batch.masks), batch, net, TTBAR, options)
    expected = {
        "assignment_loss",
        "detection_loss",
        "regression_loss",
        "classification_loss",
        "assignment_loss/t1",
        "assignment_loss/t2",
        "detection_loss/t1",
        "detection_loss/t2",
        "regression_loss/EVENT/ht",
        "regression_loss/t1/PARTICLE/mass",
        "regression_loss/t1/b/pt",
        "regression_loss/t2/PARTICLE/mass",
        "regression_loss/t2/b/pt",
        "classification_loss/EVENT/signal",
        "classification_loss/t1/PARTICLE/charge",
        "classification_loss/t2/PARTICLE/charge",
    }
    assert set(result.terms) == expected
    result.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_a_network_without_particles_trains_its_regression_and_classification_targets():
    """With no particles the event group's table came out (0, 1) instead of (1, 0): no pairing
    was left for an EVENT regression, and torch.stack failed on an empty list (a traceback from
    spanet-train for an event file of regression and classification targets only)."""
    spec = spec_from(
        "INPUTS:\n  SEQUENTIAL:\n    Jets: {pt: log_normalize, eta: normalize}\nEVENT:\n"
        "REGRESSIONS:\n  EVENT: [[mass, log_gaussian]]\nCLASSIFICATIONS:\n  EVENT: [signal]\n"
    )
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    options = small_options()
    network = SpanetNetwork(spec, options, statistics_for(spec))
    batch = random_batch(spec, 8, {"Jets": 6}, generator)
    result = compute_losses(network(batch.features, batch.masks), batch, network, spec, options)
    assert value(result.terms["assignment_loss"]) == 0.0
    assert value(result.terms["regression_loss/EVENT/mass"]) > 0.0
    assert math.isfinite(value(result.total))


def test_a_batch_of_negative_weight_events_divides_by_the_weights_magnitudes():
    """NLO samples have negative event weights (a warning, not an error); a batch whose weights
    summed to 0 or less was divided by the 1e-30 floor: every term of order -1e30. And the
    EVENT pairing is the one the event's outputs fit best whatever its weight's sign (min of a
    negative-weighted loss chose the worst pairing)."""
    negative = losses(batch=hand_batch(event_weights=torch.tensor([-1.0])), overlap_loss_scale=1.0).terms
    positive = losses(overlap_loss_scale=1.0).terms
    families = ("assignment_loss", "detection_loss", "regression_loss", "classification_loss", "overlap_loss")
    for name in families:
        assert value(negative[name]) == pytest.approx(-value(positive[name]), rel=1e-6), name
