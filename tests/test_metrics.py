"""Metric values on hand-built predictions, with the symmetries SPANet users rely on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _evaluation_helpers import TTBAR
from _model_helpers import ttbar_yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.assignment.metrics import assignment_metrics, assignment_tables
from spanet_lite.config import parse_event_spec
from spanet_lite.evaluation.metrics import (
    background_rejection,
    classification_metrics,
    detection_metrics,
    regression_metrics,
    roc_curve,
)
from spanet_lite.evaluation.units import is_logarithm

NO_EVENT_SYMMETRY = parse_event_spec(ttbar_yaml("{pt: none}", event_symmetry=False))

TRUTH = {"t1": [0, 1, 2], "t2": [3, 4, 5]}


def evaluate(predictions: list[dict], truths: list[dict] | None = None, spec=TTBAR, **kwargs):
    truths = truths or [TRUTH] * len(predictions)
    pred = {p: torch.tensor([e[p] for e in predictions]) for p in ("t1", "t2")}
    true = {p: torch.tensor([e[p] for e in truths]) for p in ("t1", "t2")}
    masks = {p: (true[p] >= 0).all(dim=1) for p in true}
    return assignment_metrics(pred, true, masks, spec, **kwargs)


def test_exact_match_is_pure():
    metrics = evaluate([TRUTH])
    assert metrics["event_purity"] == 1.0
    assert metrics["particle_efficiency/t1"] == 1.0


def test_swapped_light_quarks_inside_a_top_are_still_correct():
    metrics = evaluate([{"t1": [1, 0, 2], "t2": [4, 3, 5]}])
    assert metrics["event_purity"] == 1.0


def test_swapping_the_two_tops_is_still_correct_only_with_event_symmetry():
    swapped = [{"t1": [3, 4, 5], "t2": [1, 0, 2]}]
    assert evaluate(swapped)["event_purity"] == 1.0
    assert evaluate(swapped)["particle_purity/t2"] == 1.0
    assert evaluate(swapped, spec=NO_EVENT_SYMMETRY)["event_purity"] == 0.0


def test_b_quark_swapped_with_a_light_quark_is_wrong():
    metrics = evaluate([{"t1": [0, 2, 1], "t2": [3, 4, 5]}])
    assert metrics["event_purity"] == 0.0
    assert metrics["particle_efficiency/t1"] == 0.0
    assert metrics["particle_efficiency/t2"] == 1.0


def test_purity_and_efficiency_on_a_mixed_sample():
    truths = [TRUTH, TRUTH, TRUTH, {"t1": [0, 1, 2], "t2": [-1, 4, 5]}]
    predictions = [
        {"t1": [1, 0, 2], "t2": [3, 4, 5]},  # right (quark swap)
        {"t1": [3, 4, 5], "t2": [0, 1, 2]},  # right (top swap)
        {"t1": [0, 2, 1], "t2": [3, 4, 5]},  # t1 wrong
        {"t1": [0, 1, 2], "t2": [6, 7, 8]},  # t2 not reconstructable: only t1 counts
    ]
    metrics = evaluate(predictions, truths, num_jets=torch.tensor([6, 7, 8, 6]))
    assert metrics["event_purity"] == pytest.approx(2 / 3)  # over the three full events
    assert metrics["event_purity_all"] == pytest.approx(3 / 4)  # every reconstructable one right
    assert metrics["event_fraction/full"] == pytest.approx(3 / 4)
    assert metrics["event_fraction/partial"] == pytest.approx(1 / 4)
    assert metrics["particle_efficiency/t1"] == pytest.approx(3 / 4)
    assert metrics["particle_efficiency/t2"] == pytest.approx(3 / 3)
    # t2 reported in all four events, right in the three where it exists.
    assert metrics["particle_purity/t2"] == pytest.approx(3 / 4)
    assert metrics["jets==6/proportion"] == pytest.approx(1 / 2)
    assert metrics["jets==6/event_purity"] == 1.0  # only the first event is full there
    assert metrics["jets>=8/event_purity"] == 0.0


def test_weights_change_the_averages():
    predictions = [TRUTH, {"t1": [0, 2, 1], "t2": [3, 4, 5]}]
    metrics = evaluate(predictions, weights=torch.tensor([3.0, 1.0]))
    assert metrics["event_purity"] == pytest.approx(3 / 4)


def test_not_reported_particles_lower_efficiency_but_not_purity():
    predictions = [TRUTH, {"t1": [-1, -1, -1], "t2": [3, 4, 5]}]
    metrics = evaluate(predictions)
    assert metrics["particle_efficiency/t1"] == pytest.approx(1 / 2)
    assert metrics["particle_purity/t1"] == 1.0


def test_tables_have_the_rows_spanet_users_know():
    predictions = [TRUTH] * 3
    truths = [TRUTH, {"t1": [0, 1, 2], "t2": [-1, -1, -1]}, {"t1": [-1, 1, 2], "t2": [-1, 4, 5]}]
    pred = {p: torch.tensor([e[p] for e in predictions]) for p in ("t1", "t2")}
    true = {p: torch.tensor([e[p] for e in truths]) for p in ("t1", "t2")}
    masks = {p: (true[p] >= 0).all(dim=1) for p in true}
    tables = assignment_tables(pred, true, masks, TTBAR, num_jets=torch.tensor([6, 9, 7]))
    assert list(tables["by_jets"]) == ["==6", "==7", ">=8", "all"]
    assert [tables["by_jets"][r]["proportion"] for r in ("==6", "==7", ">=8")] == pytest.approx([1 / 3] * 3)
    assert list(tables["by_particles"]) == ["0", "1", "2"]
    assert [row["proportion"] for row in tables["by_particles"].values()] == pytest.approx([1 / 3] * 3)
    assert tables["by_particles"]["1"]["event_purity_all"] == 1.0
    assert math.isnan(tables["by_particles"]["0"]["event_purity_all"])


def test_regression_metrics_on_known_residuals():
    truth = np.array([10.0, 10.0, 10.0, 10.0, -20.0])
    prediction = np.array([10.5, 9.0, 11.5, 10.0, -17.0])  # relative errors 5%, 10%, 15%, 0%, 15%
    metrics = regression_metrics(prediction, truth)
    residual = prediction - truth
    assert metrics["bias"] == pytest.approx(residual.mean())
    assert metrics["rms"] == pytest.approx(np.sqrt((residual**2).mean()))
    assert metrics["within10"] == pytest.approx(2 / 5)  # strictly below 10%
    assert metrics["count"] == 5


def test_within10_of_a_logarithm_is_judged_on_the_quantity_not_on_its_log():
    """ln(m / GeV) ~ 6.2: a prediction 1.5x the true mass is 7% off in ln m, 50% off in m."""
    truth = np.log(np.array([500.0, 500.0, 500.0, 500.0]))
    prediction = truth + np.log(np.array([1.5, 1.05, 0.95, 0.7]))
    assert regression_metrics(prediction, truth)["within10"] == 1.0  # what the table said before
    assert regression_metrics(prediction, truth, logarithm=True)["within10"] == pytest.approx(2 / 4)
    assert is_logarithm("EVENT/log_invariant_mass", "ln(m / GeV)")
    assert is_logarithm("EVENT/log_invariant_mass", None)  # SPANet's file: no units, the name tells
    assert not is_logarithm("EVENT/neutrino_pz", "GeV") and not is_logarithm("EVENT/neutrino_pz", None)
    assert not is_logarithm("EVENT/log_mass", "GeV")  # a unit given wins over the name


def test_regression_width68_is_two_sigma_for_a_gaussian_and_ignores_nan():
    rng = np.random.default_rng(0)
    truth = rng.normal(100.0, 5.0, 200_000)
    prediction = truth + rng.normal(1.0, 2.0, truth.size)
    truth[:10] = np.nan
    metrics = regression_metrics(prediction, truth)
    assert metrics["width68"] == pytest.approx(4.0, rel=0.02)
    assert metrics["bias"] == pytest.approx(1.0, abs=0.02)
    assert metrics["count"] == truth.size - 10


def test_roc_of_a_perfect_and_of_a_useless_classifier():
    labels = np.array([0, 0, 1, 1])
    perfect = classification_metrics(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]]), labels)
    assert perfect["roc_auc"] == 1.0
    assert perfect["accuracy"] == 1.0
    assert math.isinf(perfect["rejection@50"])
    flat = classification_metrics(np.full((4, 2), 0.5), labels)
    assert flat["roc_auc"] == pytest.approx(0.5)
    assert flat["rejection@80"] == pytest.approx(1 / 0.8)  # a coin keeps 80% of everything


def test_background_rejection_at_fixed_signal_efficiency():
    # Scores: signal 4, 3; background 3.5, 2, 1. At 50% signal efficiency (first signal
    # accepted) no background passes; at 100% (cut at 3) one of three backgrounds passes.
    scores = np.array([4.0, 3.0, 3.5, 2.0, 1.0])
    labels = np.array([1, 1, 0, 0, 0])
    probabilities = np.stack([1 - scores / 5, scores / 5], axis=1)
    metrics = classification_metrics(probabilities, labels)
    tpr, fpr = roc_curve(scores, labels == 1)
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1, 1]
    assert fpr.tolist() == pytest.approx([0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert background_rejection(tpr, fpr, 1.0) == pytest.approx(3.0)
    # 75%: the cut must pass the background at 3.5 before the second signal (3), so every cut
    # keeping 75% of the signal keeps 1/3 of the background; 6 (1/6, interpolated from the first
    # point of the 50% plateau) was no working point of this score.
    assert background_rejection(tpr, fpr, 0.75) == pytest.approx(3.0)
    assert metrics["roc_auc"] == pytest.approx(5 / 6)  # 5 of 6 signal/background pairs ordered right
    assert math.isinf(metrics["rejection@50"])


def test_background_rejection_follows_the_roc_curve_between_its_points():
    """Between two signal efficiencies the ROC runs through consecutive points; the rejection was
    interpolated from the lowest background efficiency of the lower plateau instead, above every
    cut on the score (here 3.33 at 80%, where each cut that keeps 80% of the signal keeps half
    of the background)."""
    tpr, fpr = roc_curve(np.array([0.9, 0.4, 0.6, 0.1]), np.array([True, True, False, False]))
    assert background_rejection(tpr, fpr, 0.8) == pytest.approx(2.0)
    assert math.isinf(background_rejection(tpr, fpr, 0.5))  # the first point at 50% passes no background
    assert background_rejection(tpr, fpr, 0.25) == pytest.approx(math.inf)
    assert background_rejection(tpr, fpr, 1.0) == pytest.approx(2.0)


def test_classification_respects_weights_and_skips_missing_labels():
    probabilities = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    labels = np.array([1, 1, -1])
    metrics = classification_metrics(probabilities, labels, weights=np.array([1.0, 3.0, 5.0]))
    assert metrics["accuracy"] == pytest.approx(1 / 4)


def test_detection_accuracy_and_calibration():
    probabilities = np.array([0.95, 0.95, 0.05, 0.05])
    present = np.array([True, True, False, False])
    metrics = detection_metrics(probabilities, present)
    assert metrics["accuracy"] == 1.0
    assert metrics["ece"] == pytest.approx(0.05)
    overconfident = detection_metrics(np.array([0.95, 0.95]), np.array([True, False]))
    assert overconfident["ece"] == pytest.approx(0.45)
    assert overconfident["accuracy"] == 0.5


# ------------------------------------------------------------------ neutrino baseline
LEPTONIC = parse_event_spec(
    """
INPUTS:
  SEQUENTIAL:
    Momenta: {pt: none, eta: none, sin_phi: none, cos_phi: none, mass: none, etag: none, utag: none}
  GLOBAL:
    Met: {met: none, sin_phi: none, cos_phi: none}
EVENT:
  lt: [b]
REGRESSIONS:
  EVENT: [neutrino_px, neutrino_pz, neutrino_eta, other]
"""
)


def test_baseline_finds_the_tagged_lepton_and_satisfies_the_w_mass():
    from spanet_lite.evaluation.baseline import compute_baseline, plan_baseline

    plan = plan_baseline(LEPTONIC)
    assert plan.usable, plan.reason
    assert plan.targets == {"EVENT/neutrino_px": "px", "EVENT/neutrino_pz": "pz", "EVENT/neutrino_eta": "eta"}
    # Slot 0: a jet with a larger pt; slot 1: the muon (utag) with pt 40 along x; slot 2 padding.
    # columns: pt, eta, sin_phi, cos_phi, mass, etag, utag
    objects = np.array([[[90.0, 0.3, 1.0, 0.0, 10.0, 0, 0], [40.0, 0.5, 0.0, 1.0, 0.1057, 0, 1], [0] * 7]])
    mask = np.array([[True, True, False]])
    met = np.array([[30.0, 1.0, 0.0]])  # 30 GeV along +y
    values = compute_baseline(plan, LEPTONIC, {"Momenta": objects, "Met": met}, {"Momenta": mask})
    assert values["EVENT/neutrino_px"][0] == pytest.approx(0.0, abs=1e-9)
    lepton = np.array([40.0, 0.0, 40.0 * np.sinh(0.5)])
    lepton_e = np.sqrt(lepton @ lepton + 0.1057**2)
    nu = np.array([0.0, 30.0, values["EVENT/neutrino_pz"][0]])
    w_mass2 = (lepton_e + np.linalg.norm(nu)) ** 2 - np.sum((lepton + nu) ** 2)
    assert np.sqrt(w_mass2) == pytest.approx(80.4, rel=1e-6)
    assert values["EVENT/neutrino_eta"][0] == pytest.approx(np.arcsinh(nu[2] / 30.0))


def test_baseline_reads_features_by_the_pair_features_names_and_puts_sin_cos_on_the_circle():
    """``pt_gev`` and ``m`` are the lepton's pt and mass, as for the pair features, and sin/cos
    features off the unit circle (standardised, rounded) give the direction they point in."""
    from spanet_lite.evaluation.baseline import compute_baseline, plan_baseline

    aliases = parse_event_spec(
        """
INPUTS:
  SEQUENTIAL:
    Momenta: {pt_gev: none, eta: none, sin_phi: none, cos_phi: none, m: none, etag: none, utag: none}
  GLOBAL:
    Met: {met: none, sin_phi: none, cos_phi: none}
EVENT:
  lt: [b]
REGRESSIONS:
  EVENT: [neutrino_px, neutrino_pz, neutrino_eta, other]
"""
    )
    plan = plan_baseline(aliases)
    assert plan.usable, plan.reason
    # columns: pt, eta, sin_phi, cos_phi, mass, etag, utag; the muon (slot 1) has a large mass
    objects = np.array([[[90.0, 0.3, 0.6, 0.8, 10.0, 0, 0], [40.0, 0.5, 0.28, 0.96, 30.0, 0, 1], [0] * 7]])
    mask = np.array([[True, True, False]])
    met = np.array([[30.0, 0.8, -0.6]])
    expected = compute_baseline(plan_baseline(LEPTONIC), LEPTONIC, {"Momenta": objects, "Met": met},
                                {"Momenta": mask})
    scaled, scaled_met = objects.copy(), met.copy()
    scaled[..., 2:4] *= 2.5
    scaled_met[..., 1:] *= 0.4
    got = compute_baseline(plan, aliases, {"Momenta": scaled, "Met": scaled_met}, {"Momenta": mask})
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-12)


def test_baseline_units_follow_the_targets_by_a_power_of_ten():
    from spanet_lite.evaluation.baseline import matched_baseline, plan_baseline

    plan = plan_baseline(LEPTONIC)
    rng = np.random.default_rng(1)
    truth_gev = rng.normal(0, 50, 100)
    px, pz, eta = "EVENT/neutrino_px", "EVENT/neutrino_pz", "EVENT/neutrino_eta"
    baseline = {px: truth_gev * 1.3, pz: truth_gev, eta: truth_gev}
    truth = {px: truth_gev / 100, pz: truth_gev / 100, eta: truth_gev}
    matched, divisor = matched_baseline(plan, baseline, truth)
    assert divisor == 100.0
    np.testing.assert_allclose(matched["EVENT/neutrino_pz"], truth_gev / 100)
    np.testing.assert_allclose(matched["EVENT/neutrino_eta"], truth_gev)  # eta has no unit


def test_baseline_is_skipped_with_a_reason_when_there_is_no_met():
    from spanet_lite.evaluation.baseline import plan_baseline

    spec = parse_event_spec(
        """
INPUTS:
  SEQUENTIAL:
    Momenta: {pt: none, eta: none, phi: none, etag: none}
EVENT:
  lt: [b]
REGRESSIONS:
  EVENT: [neutrino_pz]
"""
    )
    plan = plan_baseline(spec)
    assert not plan.usable
    assert "MET" in plan.describe()


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    swap_tops=st.booleans(),
    swap_q1=st.booleans(),
    swap_q2=st.booleans(),
)
def test_any_symmetry_of_a_correct_answer_is_still_correct(seed, swap_tops, swap_q1, swap_q2):
    rng = np.random.default_rng(seed)
    objects = rng.permutation(12)[:6]
    truth = {"t1": objects[:3].tolist(), "t2": objects[3:].tolist()}
    first, second = list(truth["t1"]), list(truth["t2"])
    if swap_q1:
        first[0], first[1] = first[1], first[0]
    if swap_q2:
        second[0], second[1] = second[1], second[0]
    prediction = {"t1": second, "t2": first} if swap_tops else {"t1": first, "t2": second}
    metrics = evaluate([prediction], [truth])
    assert metrics["event_purity"] == 1.0
    assert metrics["particle_efficiency/t1"] == metrics["particle_efficiency/t2"] == 1.0
    # Moving the b quark anywhere else breaks it, whatever the symmetry.
    broken = {p: [v[2], v[1], v[0]] for p, v in prediction.items()}
    assert evaluate([broken], [truth])["event_purity"] == 0.0


def test_detection_is_judged_against_the_particle_its_assignment_went_for():
    from spanet_lite.evaluation.metrics import detection_truth

    # One reconstructable top, stored as t2; the network assigns its jets to t1. With t1 <-> t2
    # symmetric, "t1 present" is the right call; without the symmetry the file's labels stand.
    prediction = {"t1": torch.tensor([[3, 4, 5]]), "t2": torch.tensor([[0, 1, 2]])}
    targets = {"t1": torch.tensor([[-1, -1, -1]]), "t2": torch.tensor([[3, 4, 5]])}
    masks = {p: (t >= 0).all(dim=1) for p, t in targets.items()}
    truth = detection_truth(prediction, targets, masks, TTBAR)
    assert truth["t1"].tolist() == [True] and truth["t2"].tolist() == [False]
    assert detection_metrics(np.array([0.9]), truth["t1"])["accuracy"] == 1.0
    unchanged = detection_truth(prediction, targets, masks, NO_EVENT_SYMMETRY)
    assert unchanged["t1"].tolist() == [False] and unchanged["t2"].tolist() == [True]


def test_symmetric_particle_targets_are_judged_against_the_particle_its_assignment_went_for():
    from spanet_lite.assignment.metrics import match_outcome, paired_truth
    from spanet_lite.config.event_spec import ClassificationTarget, RegressionTarget

    # Event 0: the network calls the file's t2 "t1" (and t1 "t2"); event 1: the file's labels.
    # A regression or classification head of t1 then speaks of the file's t2 in event 0, as in
    # training's loss; without the event symmetry, or for EVENT targets, the file's labels stand.
    prediction = {"t1": np.array([[3, 4, 5], [0, 1, 2]]), "t2": np.array([[0, 1, 2], [3, 4, 5]])}
    targets = {"t1": np.array([[0, 1, 2], [0, 1, 2]]), "t2": np.array([[3, 4, 5], [3, 4, 5]])}
    masks = {p: (t >= 0).all(axis=1) for p, t in targets.items()}
    declared = [RegressionTarget("pt", particle=p, product="PARTICLE") for p in ("t1", "t2")]
    declared += [RegressionTarget("e", particle=p, product="b") for p in ("t1", "t2")]
    declared.append(RegressionTarget("x"))
    truth = {"t1/PARTICLE/pt": np.array([10.0, 11.0]), "t2/PARTICLE/pt": np.array([20.0, 21.0]),
             "t1/b/e": np.array([1.0, 2.0]), "t2/b/e": np.array([3.0, 4.0]), "EVENT/x": np.array([5.0, 6.0])}
    element = match_outcome(prediction, targets, masks, TTBAR).element
    paired = paired_truth(element, TTBAR, truth, declared)
    assert paired["t1/PARTICLE/pt"].tolist() == [20.0, 11.0]
    assert paired["t2/PARTICLE/pt"].tolist() == [10.0, 21.0]
    assert paired["t1/b/e"].tolist() == [3.0, 2.0] and paired["t2/b/e"].tolist() == [1.0, 4.0]
    assert paired["EVENT/x"].tolist() == [5.0, 6.0]
    assert truth["t1/PARTICLE/pt"].tolist() == [10.0, 11.0]  # the caller's arrays are untouched
    labels = {"t1/PARTICLE/kind": np.array([0, 1]), "t2/PARTICLE/kind": np.array([2, 3])}
    kinds = [ClassificationTarget("kind", particle=p, product="PARTICLE") for p in ("t1", "t2")]
    paired_labels = paired_truth(element, TTBAR, labels, kinds)
    assert paired_labels["t1/PARTICLE/kind"].tolist() == [2, 1]
    alone = match_outcome(prediction, targets, masks, NO_EVENT_SYMMETRY).element
    unchanged = paired_truth(alone, NO_EVENT_SYMMETRY, truth, declared)
    assert unchanged["t1/PARTICLE/pt"].tolist() == [10.0, 11.0]
