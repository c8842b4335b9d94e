"""Evaluation metrics: assignments (symmetry-aware), regressions, classifications, detections.

Every function takes optional per-event ``weights`` (physics weights; 1 where absent) and
returns plain floats, ``nan`` where a quantity has no events to be computed from.

Assignment vocabulary, as SPANet users know it
-----------------------------------------------
* A particle is **reconstructable** in an event when every one of its products is matched
  to an object (``target_masks``).
* A particle is **correct** when its predicted tuple equals the true one up to the
  particle's product symmetry (``q1 <-> q2`` in a top is the same answer). The event
  symmetry (``t1 <-> t2``) is applied to the whole event: the event counts with the element
  of the event group under which the most reconstructable particles are correct.
* **event purity** (``event_purity``): among events in which *every* particle is
  reconstructable, the weighted fraction in which every particle is correct. This is the
  headline number of the SPANet papers.
* ``event_purity_all``: among events with at least one reconstructable particle, the
  fraction in which every reconstructable particle is correct.
* **particle efficiency** (``particle_efficiency/<p>``): correct / reconstructable, for
  particle ``p``: how many of the particles that could be found were found.
* **particle purity** (``particle_purity/<p>``): correct / reported, where reported means
  the decoder gave ``p`` a tuple (it was detected and had objects left): how many of the
  particles we claim are right.
* ``event_fraction/full``, ``/partial``, ``/none``: the weighted fractions of events where all,
  some, or none of the particles are reconstructable.

Tables: :func:`assignment_tables` splits events by number of jets (rows ``==m``,
``==m+1``, ``>=m+2`` and ``all``, ``m`` = number of jet products; what counts as a jet:
:mod:`~spanet_lite.evaluation.jets`) and by the number of reconstructable particles, with the
proportion of events in each row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.evaluation.jets import jet_products

ArrayLike = object  # numpy array or torch tensor


def as_numpy(value: ArrayLike) -> np.ndarray:
    """Tensors (any device) and arrays alike -> numpy."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()  # type: ignore[attr-defined]
    return np.asarray(value)


def _weights(weights: ArrayLike | None, size: int) -> np.ndarray:
    if weights is None:
        return np.ones(size, dtype=np.float64)
    w = as_numpy(weights).astype(np.float64).reshape(size)
    return np.where(np.isfinite(w), w, 0.0)


def weighted_fraction(passed: np.ndarray, selected: np.ndarray, weights: np.ndarray) -> float:
    """sum(w where passed & selected) / sum(w where selected); nan if nothing is selected."""
    denominator = float(weights[selected].sum())
    if denominator == 0.0:
        return math.nan
    return float(weights[selected & passed].sum()) / denominator


# ----------------------------------------------------------------------------- assignments
@dataclass
class AssignmentOutcome:
    """Per-event, per-particle facts that every assignment metric is built from.

    All arrays are (B, P) bool in event-file particle order, except ``num_jets`` (B,).
    ``correct`` and ``reconstructable`` are expressed in the frame of the *predicted*
    particles after the best event-symmetry element has been applied.
    """

    particles: tuple[str, ...]
    reconstructable: np.ndarray
    correct: np.ndarray
    reported: np.ndarray
    weights: np.ndarray
    num_jets: np.ndarray | None


def match_outcome(
    predictions: Mapping[str, ArrayLike],
    targets: Mapping[str, ArrayLike],
    target_masks: Mapping[str, ArrayLike],
    spec: EventSpec,
    *,
    weights: ArrayLike | None = None,
    num_jets: ArrayLike | None = None,
) -> AssignmentOutcome:
    """Compare predictions with truth under the particle and event symmetries."""
    names = spec.particle_names
    pred = [as_numpy(predictions[p]).astype(np.int64) for p in names]
    true = [as_numpy(targets[p]).astype(np.int64) for p in names]
    mask = np.stack([as_numpy(target_masks[p]).astype(bool).reshape(-1) for p in names], axis=1)
    batch = mask.shape[0]
    # matches[i, j]: predicted particle i equals true particle j up to i's product symmetry.
    matches: dict[tuple[int, int], np.ndarray] = {}
    for group in spec.event_symmetry.orbits():
        for i in group:
            perms = spec.particles[i].symmetry.elements
            for j in group:
                hit = np.zeros(batch, dtype=bool)
                for perm in perms:
                    hit |= (pred[i][:, list(perm)] == true[j]).all(axis=1)
                matches[i, j] = hit
    best_correct = np.zeros(mask.shape, dtype=bool)
    best_recon = mask
    best_count = np.full(batch, -1)
    for element in spec.event_symmetry.elements:
        # Predicted particle i is compared with true particle element[i].
        recon = mask[:, list(element)]
        correct = np.stack([matches[i, element[i]] for i in range(len(names))], axis=1) & recon
        count = correct.sum(axis=1)
        better = count > best_count  # ties keep the earlier element (the identity comes first)
        best_correct = np.where(better[:, None], correct, best_correct)
        best_recon = np.where(better[:, None], recon, best_recon)
        best_count = np.maximum(best_count, count)
    reported = np.stack([(p >= 0).all(axis=1) for p in pred], axis=1)
    jets = None if num_jets is None else as_numpy(num_jets).astype(np.int64).reshape(batch)
    return AssignmentOutcome(tuple(names), best_recon, best_correct, reported, _weights(weights, batch), jets)


def _outcome_metrics(outcome: AssignmentOutcome, selected: np.ndarray | None = None) -> dict[str, float]:
    """Purities, efficiencies and category fractions for the events in ``selected``."""
    recon, correct, w = outcome.reconstructable, outcome.correct, outcome.weights
    batch = recon.shape[0]
    sel = np.ones(batch, dtype=bool) if selected is None else selected
    full = np.asarray(recon.all(axis=1))
    some = np.asarray(recon.any(axis=1))
    all_right = np.asarray((correct | ~recon).all(axis=1))
    result = {
        "event_purity": weighted_fraction(all_right, sel & full, w),
        "event_purity_all": weighted_fraction(all_right, sel & some, w),
        "event_fraction/full": weighted_fraction(full, sel, w),
        "event_fraction/partial": weighted_fraction(some & ~full, sel, w),
        "event_fraction/none": weighted_fraction(~some, sel, w),
    }
    for j, name in enumerate(outcome.particles):
        result[f"particle_efficiency/{name}"] = weighted_fraction(correct[:, j], sel & recon[:, j], w)
        result[f"particle_purity/{name}"] = weighted_fraction(correct[:, j], sel & outcome.reported[:, j], w)
    return result


def assignment_metrics(
    predictions: Mapping[str, ArrayLike],
    targets: Mapping[str, ArrayLike],
    target_masks: Mapping[str, ArrayLike],
    spec: EventSpec,
    *,
    weights: ArrayLike | None = None,
    num_jets: ArrayLike | None = None,
) -> dict[str, float]:
    """Headline assignment metrics (see the module docstring for the definitions).

    ``predictions`` and ``targets``: particle -> (B, k) combined object indices, -1 = none.
    ``target_masks``: particle -> (B,) bool, fully reconstructable. ``num_jets`` (B,), when
    given, adds the proportion and event purity of the jet-multiplicity rows of
    :func:`assignment_tables` as flat keys (e.g. ``jets==6/event_purity``); the full tables
    come from :func:`assignment_tables`.
    """
    outcome = match_outcome(predictions, targets, target_masks, spec, weights=weights, num_jets=num_jets)
    result = _outcome_metrics(outcome)
    if outcome.num_jets is not None:
        for row, values in jet_table(outcome, spec).items():
            if row != "all":
                result[f"jets{row}/proportion"] = values["proportion"]
                result[f"jets{row}/event_purity"] = values["event_purity"]
    return result


def total_products(spec: EventSpec) -> int:
    """m: the number of objects a fully reconstructed event uses."""
    return sum(p.num_products for p in spec.particles)


def jet_rows(spec: EventSpec, num_jets: np.ndarray) -> dict[str, np.ndarray]:
    """Row label -> (B,) selection for ``==m``, ``==m+1``, ``>=m+2``, ``all``."""
    m = jet_products(spec)
    return {
        f"=={m}": num_jets == m,
        f"=={m + 1}": num_jets == m + 1,
        f">={m + 2}": num_jets >= m + 2,
        "all": np.ones(num_jets.shape, dtype=bool),
    }


def jet_table(outcome: AssignmentOutcome, spec: EventSpec) -> dict[str, dict[str, float]]:
    """Rows by number of jets: proportion of events, event purity, per-particle efficiency.

    Events with fewer than ``m`` jets cannot be fully reconstructable and appear only in ``all``.
    """
    assert outcome.num_jets is not None
    w = outcome.weights
    everything = np.ones(w.shape, dtype=bool)
    table = {}
    for label, selected in jet_rows(spec, outcome.num_jets).items():
        metrics = _outcome_metrics(outcome, selected)
        row = {"proportion": weighted_fraction(selected, everything, w), **metrics}
        table[label] = row
    return table


def particle_count_table(outcome: AssignmentOutcome) -> dict[str, dict[str, float]]:
    """Rows by number of reconstructable particles (0..P, then all) with proportions and purities."""
    w = outcome.weights
    count = outcome.reconstructable.sum(axis=1)
    everything = np.ones(w.shape, dtype=bool)
    table = {}
    for n in range(len(outcome.particles) + 1):
        selected = count == n
        proportion = weighted_fraction(selected, everything, w)
        table[str(n)] = {"proportion": proportion, **_outcome_metrics(outcome, selected)}
    return table


def assignment_tables(
    predictions: Mapping[str, ArrayLike],
    targets: Mapping[str, ArrayLike],
    target_masks: Mapping[str, ArrayLike],
    spec: EventSpec,
    *,
    num_jets: ArrayLike,
    weights: ArrayLike | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Both tables: ``{"by_jets": {row: metrics}, "by_particles": {row: metrics}}``."""
    outcome = match_outcome(predictions, targets, target_masks, spec, weights=weights, num_jets=num_jets)
    return {"by_jets": jet_table(outcome, spec), "by_particles": particle_count_table(outcome)}


# ----------------------------------------------------------------------------- regressions
def weighted_quantile(
    values: np.ndarray, quantiles: np.ndarray | list[float], weights: np.ndarray
) -> np.ndarray:
    """Quantiles of a weighted sample (midpoint rule on the cumulative weight)."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cumulative = np.cumsum(w) - 0.5 * w
    cumulative /= w.sum()
    return np.interp(np.asarray(quantiles, dtype=np.float64), cumulative, v)


def regression_metrics(
    predictions: ArrayLike, truth: ArrayLike, *, weights: ArrayLike | None = None
) -> dict[str, float]:
    """Residual summary of one regression target, in the target's own units.

    ``bias`` = weighted mean of (prediction - truth); ``rms`` = sqrt of the weighted mean
    squared residual; ``width68`` = the width of the central 68% interval of the residuals
    (16th to 84th percentile, 2 sigma for a Gaussian); ``within10`` = weighted fraction with
    relative error |prediction - truth| / |truth| < 10% (events with truth 0 excluded);
    ``count`` = events used (finite truth and prediction, positive weight).
    """
    pred = as_numpy(predictions).astype(np.float64).reshape(-1)
    true = as_numpy(truth).astype(np.float64).reshape(-1)
    w = _weights(weights, pred.size)
    keep = np.isfinite(pred) & np.isfinite(true) & (w > 0)
    nan = {"bias": math.nan, "rms": math.nan, "width68": math.nan, "within10": math.nan, "count": 0.0}
    if not keep.any():
        return nan
    residual, true, w = (pred - true)[keep], true[keep], w[keep]
    low, high = weighted_quantile(residual, [0.16, 0.84], w)
    nonzero = true != 0
    within = np.abs(residual[nonzero]) < 0.1 * np.abs(true[nonzero])
    return {
        "bias": float(np.average(residual, weights=w)),
        "rms": float(np.sqrt(np.average(residual**2, weights=w))),
        "width68": float(high - low),
        "within10": float(np.average(within, weights=w[nonzero])) if nonzero.any() else math.nan,
        "count": float(keep.sum()),
    }


# -------------------------------------------------------------------------- classification
def roc_curve(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ROC: (signal efficiency, background efficiency) for every threshold, from (0, 0).

    ``labels`` are bool (True = signal). Tied scores move together (one point per distinct score).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    w = np.ones(s.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    signal = np.cumsum(np.where(y, w, 0.0))
    background = np.cumsum(np.where(y, 0.0, w))
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    signal, background = signal[last_of_tie], background[last_of_tie]
    total_s, total_b = signal[-1] if signal.size else 0.0, background[-1] if background.size else 0.0
    tpr = np.r_[0.0, signal / total_s] if total_s > 0 else np.r_[0.0, np.full(signal.shape, math.nan)]
    fpr = np.r_[0.0, background / total_b] if total_b > 0 else np.r_[0.0, np.full(background.shape, math.nan)]
    return tpr, fpr


def roc_auc(tpr: np.ndarray, fpr: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids in background efficiency)."""
    if tpr.size < 2 or np.isnan(tpr).any() or np.isnan(fpr).any():
        return math.nan
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def background_rejection(tpr: np.ndarray, fpr: np.ndarray, signal_efficiency: float) -> float:
    """1 / background efficiency at the given signal efficiency (linear interpolation).

    ``inf`` when no background survives at that working point.
    """
    if tpr.size < 2 or np.isnan(tpr).any() or np.isnan(fpr).any():
        return math.nan
    # Several thresholds can give the same signal efficiency; the best working point is the
    # first (lowest background efficiency) of them.
    tpr_unique, first = np.unique(tpr, return_index=True)
    background = float(np.interp(signal_efficiency, tpr_unique, fpr[first]))
    return math.inf if background <= 0.0 else 1.0 / background


def classification_metrics(
    probabilities: ArrayLike, labels: ArrayLike, *, weights: ArrayLike | None = None, signal_class: int = 1
) -> dict[str, float]:
    """Accuracy, ROC AUC and background rejection at 50% and 80% signal efficiency.

    ``probabilities`` (B, C); ``labels`` (B,) with -1 = no label (skipped). The ROC treats
    ``signal_class`` as signal and every other class as background, scored by that class's
    probability (for two classes: the usual signal-vs-background discriminant).
    """
    probs = as_numpy(probabilities).astype(np.float64)
    y = as_numpy(labels).astype(np.int64).reshape(-1)
    w = _weights(weights, y.size)
    keep = (y >= 0) & (w > 0)
    result = {"accuracy": math.nan, "roc_auc": math.nan, "rejection@50": math.nan, "rejection@80": math.nan}
    if not keep.any():
        return result
    probs, y, w = probs[keep], y[keep], w[keep]
    result["accuracy"] = float(np.average(probs.argmax(axis=1) == y, weights=w))
    if probs.shape[1] > signal_class:
        tpr, fpr = roc_curve(probs[:, signal_class], y == signal_class, w)
        result["roc_auc"] = roc_auc(tpr, fpr)
        result["rejection@50"] = background_rejection(tpr, fpr, 0.5)
        result["rejection@80"] = background_rejection(tpr, fpr, 0.8)
    return result


# ------------------------------------------------------------------------------- detection
def calibration_bins(
    probabilities: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, num_bins: int = 10
) -> dict[str, np.ndarray]:
    """Reliability diagram data: per probability bin, mean predicted probability, observed
    frequency and total weight (equal-width bins on [0, 1])."""
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, num_bins - 1)
    total = np.bincount(which, weights=weights, minlength=num_bins)
    predicted = np.bincount(which, weights=weights * probabilities, minlength=num_bins)
    observed = np.bincount(which, weights=weights * outcomes, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "edges": edges,
            "weight": total,
            "predicted": np.where(total > 0, predicted / total, np.nan),
            "observed": np.where(total > 0, observed / total, np.nan),
        }


def detection_truth(
    predictions: Mapping[str, ArrayLike],
    targets: Mapping[str, ArrayLike],
    target_masks: Mapping[str, ArrayLike],
    spec: EventSpec,
) -> dict[str, np.ndarray]:
    """Which particles the detection head should call present, under the event symmetry.

    With ``t1 <-> t2`` symmetric, "is t1 present?" depends on which top the network calls t1.
    As in training, the labelling comes from the assignment: the event-symmetry element under
    which the most particles are assigned correctly (the identity when none or on ties), so a
    detection probability is judged against the particle its own assignment went for.
    Returns particle -> (B,) bool.
    """
    outcome = match_outcome(predictions, targets, target_masks, spec)
    return {name: outcome.reconstructable[:, j] for j, name in enumerate(outcome.particles)}


def detection_metrics(
    probabilities: ArrayLike, present: ArrayLike, *, weights: ArrayLike | None = None, threshold: float = 0.5
) -> dict[str, float]:
    """How well the detection head says whether a particle is fully reconstructable.

    ``accuracy`` at ``threshold``; ``ece`` = expected calibration error, the weight-averaged
    |observed frequency - mean predicted probability| over 10 probability bins (0 = perfectly
    calibrated); ``brier`` = weighted mean squared difference of probability and outcome.
    """
    p = as_numpy(probabilities).astype(np.float64).reshape(-1)
    y = as_numpy(present).astype(bool).reshape(-1).astype(np.float64)
    w = _weights(weights, p.size)
    if w.sum() <= 0:
        return {"accuracy": math.nan, "ece": math.nan, "brier": math.nan}
    bins = calibration_bins(p, y, w)
    filled = bins["weight"] > 0
    gap = np.abs(bins["observed"][filled] - bins["predicted"][filled])
    ece = float(np.sum(bins["weight"][filled] * gap) / w.sum())
    return {
        "accuracy": float(np.average((p >= threshold) == (y > 0.5), weights=w)),
        "ece": ece,
        "brier": float(np.average((p - y) ** 2, weights=w)),
    }
