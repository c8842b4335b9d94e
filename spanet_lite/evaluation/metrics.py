"""Evaluation metrics beyond assignments: regressions, classifications, detections.

Assignment metrics (event purity and its tables) live in :mod:`spanet_lite.assignment.metrics`,
which training uses too. Every function takes optional per-event ``weights`` (physics weights;
1 where absent) and returns plain floats, ``nan`` where a quantity has no events to be
computed from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from spanet_lite.assignment.metrics import ArrayLike, as_numpy, event_weights, match_outcome
from spanet_lite.config.event_spec import EventSpec


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
    predictions: ArrayLike, truth: ArrayLike, *, weights: ArrayLike | None = None, logarithm: bool = False
) -> dict[str, float]:
    """Residual summary of one regression target, in the target's own units.

    ``bias`` = weighted mean of (prediction - truth); ``rms`` = sqrt of the weighted mean
    squared residual; ``width68`` = the width of the central 68% interval of the residuals
    (16th to 84th percentile, 2 sigma for a Gaussian); ``within10`` = weighted fraction with
    relative error |prediction - truth| / |truth| < 10% (events with truth 0 excluded); with
    ``logarithm`` (a target that is ln of a quantity, such as ``log_invariant_mass``) the relative
    error of that quantity, |exp(prediction - truth) - 1| < 10%, since 10% of ln(m / GeV) ~ 6 is a
    factor of 1.9 in m; ``count`` = events used (finite truth and prediction, positive weight).
    """
    pred = as_numpy(predictions).astype(np.float64).reshape(-1)
    true = as_numpy(truth).astype(np.float64).reshape(-1)
    w = event_weights(weights, pred.size)
    keep = np.isfinite(pred) & np.isfinite(true) & (w > 0)
    nan = {"bias": math.nan, "rms": math.nan, "width68": math.nan, "within10": math.nan, "count": 0.0}
    if not keep.any():
        return nan
    residual, true, w = (pred - true)[keep], true[keep], w[keep]
    low, high = weighted_quantile(residual, [0.16, 0.84], w)
    if logarithm:  # the quantity's own relative error: every event has one
        counted = np.ones_like(true, dtype=bool)
        within = np.abs(np.expm1(residual)) < 0.1
    else:  # an event with truth 0 has no relative error
        counted = true != 0
        within = np.abs(residual[counted]) < 0.1 * np.abs(true[counted])
    return {
        "bias": float(np.average(residual, weights=w)),
        "rms": float(np.sqrt(np.average(residual**2, weights=w))),
        "width68": float(high - low),
        "within10": float(np.average(within, weights=w[counted])) if counted.any() else math.nan,
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
    """1 / background efficiency at the given signal efficiency, on the ROC curve of
    :func:`roc_curve` (its points in falling threshold, joined by straight lines).

    Several thresholds can give the same signal efficiency; where one of them hits it exactly the
    best working point is the first (lowest background efficiency) of them. Between two points
    the line joins consecutive ones: the last below the efficiency and the first at or above it.
    (Interpolating from the first point of the lower plateau instead made up a working point that
    no cut on the score gives, above the curve: 1/eps_B of 6 where every cut gives 3.)
    ``inf`` when no background survives at that working point.
    """
    if tpr.size < 2 or np.isnan(tpr).any() or np.isnan(fpr).any():
        return math.nan
    upper = min(int(np.searchsorted(tpr, signal_efficiency, side="left")), tpr.size - 1)
    if upper == 0 or tpr[upper] <= signal_efficiency:
        background = float(fpr[upper])
    else:
        lower = upper - 1
        step = (signal_efficiency - tpr[lower]) / (tpr[upper] - tpr[lower])
        background = float(fpr[lower] + step * (fpr[upper] - fpr[lower]))
    return math.inf if background <= 0.0 else 1.0 / background


def confusion_matrix(
    predicted: np.ndarray, labels: np.ndarray, weights: np.ndarray, num_classes: int
) -> np.ndarray:
    """(C, C) weighted counts: row = true class, column = predicted class."""
    flat = labels * num_classes + predicted
    counts = np.bincount(flat, weights=weights, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def classification_metrics(
    probabilities: ArrayLike, labels: ArrayLike, *, weights: ArrayLike | None = None, signal_class: int = 1
) -> dict[str, object]:
    """Accuracy and confusion matrix for any number of classes, plus ROC figures.

    ``probabilities`` (B, C); ``labels`` (B,) with -1 = no label (skipped). ``confusion``: (C, C)
    weighted counts, row = true class, column = most probable class.

    * Two classes: ``roc_auc`` and background rejection at 50% / 80% signal efficiency treat
      ``signal_class`` as signal, scored by its probability (the usual discriminant).
    * More classes: no class is "the signal". ``per_class`` gives each class's one-vs-rest ROC
      AUC (scored by that class's probability); ``roc_auc`` is their unweighted mean (macro
      average); the rejections are not defined (nan).
    """
    probs = as_numpy(probabilities).astype(np.float64)
    y = as_numpy(labels).astype(np.int64).reshape(-1)
    w = event_weights(weights, y.size)
    num_classes = probs.shape[1] if probs.ndim == 2 else 0
    keep = (y >= 0) & (y < max(num_classes, 1)) & (w > 0)
    result: dict[str, object] = {
        "accuracy": math.nan, "roc_auc": math.nan, "rejection@50": math.nan, "rejection@80": math.nan,
        "num_classes": num_classes,
    }
    if not keep.any():
        return result
    probs, y, w = probs[keep], y[keep], w[keep]
    chosen = probs.argmax(axis=1)
    result["accuracy"] = float(np.average(chosen == y, weights=w))
    result["confusion"] = confusion_matrix(chosen, y, w, num_classes).tolist()
    if num_classes == 2 and probs.shape[1] > signal_class:
        tpr, fpr = roc_curve(probs[:, signal_class], y == signal_class, w)
        result["roc_auc"] = roc_auc(tpr, fpr)
        result["rejection@50"] = background_rejection(tpr, fpr, 0.5)
        result["rejection@80"] = background_rejection(tpr, fpr, 0.8)
    elif num_classes > 2:
        per_class = {}
        for c in range(num_classes):
            positive = y == c
            auc = math.nan
            if positive.any() and not positive.all():
                auc = roc_auc(*roc_curve(probs[:, c], positive, w))
            per_class[str(c)] = {"roc_auc": auc, "fraction": float(np.average(positive, weights=w))}
        result["per_class"] = per_class
        finite = [v["roc_auc"] for v in per_class.values() if not math.isnan(v["roc_auc"])]
        result["roc_auc"] = float(np.mean(finite)) if finite else math.nan
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
    w = event_weights(weights, p.size)
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
