"""Symmetry-aware assignment metrics: event purity, particle purity and efficiency, tables.

Training (validation purity) and evaluation (``spanet-test``) both read these, so they live
below both. Every function takes optional per-event ``weights`` (physics weights; 1 where
absent) and returns plain floats, ``nan`` where a quantity has no events to be computed from.

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
:mod:`~spanet_lite.assignment.jets`) and by the number of reconstructable particles, with the
proportion of events in each row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from spanet_lite.assignment.jets import jet_products
from spanet_lite.config.event_spec import ClassificationTarget, EventSpec, RegressionTarget, target_key

ArrayLike = object  # numpy array or torch tensor


def as_numpy(value: ArrayLike) -> np.ndarray:
    """Tensors (any device) and arrays alike -> numpy."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()  # type: ignore[attr-defined]
    return np.asarray(value)


def event_weights(weights: ArrayLike | None, size: int) -> np.ndarray:
    """Per-event weights as float64; 1 where none are given, 0 where a weight is not finite."""
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


@dataclass
class AssignmentOutcome:
    """Per-event, per-particle facts that every assignment metric is built from.

    All arrays are (B, P) bool in event-file particle order, except ``num_jets`` (B,).
    ``correct`` and ``reconstructable`` are expressed in the frame of the *predicted*
    particles after the best event-symmetry element has been applied; ``element`` (B,) is that
    element's position in ``spec.event_symmetry.elements`` (predicted particle i stands for true
    particle ``elements[element][i]``).
    """

    particles: tuple[str, ...]
    reconstructable: np.ndarray
    correct: np.ndarray
    reported: np.ndarray
    weights: np.ndarray
    num_jets: np.ndarray | None
    element: np.ndarray


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
    best_element = np.zeros(batch, dtype=np.int64)
    for position, element in enumerate(spec.event_symmetry.elements):
        # Predicted particle i is compared with true particle element[i].
        recon = mask[:, list(element)]
        correct = np.stack([matches[i, element[i]] for i in range(len(names))], axis=1) & recon
        count = correct.sum(axis=1)
        better = count > best_count  # ties keep the earlier element (the identity comes first)
        best_correct = np.where(better[:, None], correct, best_correct)
        best_recon = np.where(better[:, None], recon, best_recon)
        best_element = np.where(better, position, best_element)
        best_count = np.maximum(best_count, count)
    reported = np.stack([(p >= 0).all(axis=1) for p in pred], axis=1)
    jets = None if num_jets is None else as_numpy(num_jets).astype(np.int64).reshape(batch)
    weights_ = event_weights(weights, batch)
    return AssignmentOutcome(tuple(names), best_recon, best_correct, reported, weights_, jets, best_element)


def paired_truth(
    element: np.ndarray,
    spec: EventSpec,
    truth: Mapping[str, ArrayLike],
    declared: Sequence[RegressionTarget | ClassificationTarget],
) -> dict[str, np.ndarray]:
    """Regression or classification truth (``declared`` target key -> (B,) values) in the frame
    of the predicted particles, under the event symmetry; ``element`` is
    :attr:`AssignmentOutcome.element` of the same events (the caller's one :func:`match_outcome`
    serves its regressions and classifications alike).

    As for detection (:func:`~spanet_lite.evaluation.metrics.detection_truth`) and in training's
    loss, an EVENT-symmetric particle's output stands for the true particle its assignment went
    for: with ``h1 <-> h2`` symmetric and the network calling the file's h2 ``h1``,
    ``h1/PARTICLE/pt`` is compared with the file's ``h2/PARTICLE/pt``. EVENT-level targets keep
    their own truth.
    """
    paired = {key: as_numpy(values) for key, values in truth.items()}
    elements = spec.event_symmetry.elements
    if len(elements) <= 1:
        return paired
    names = spec.particle_names
    for target in declared:
        if target.particle is None or target.key not in truth:
            continue
        p = names.index(target.particle)
        products = spec.particles[p].product_names
        column = None if target.product == "PARTICLE" else products.index(target.product)
        out = np.array(as_numpy(truth[target.key]), copy=True)
        for position, perm in enumerate(elements):
            q = spec.particles[perm[p]]
            level = "PARTICLE" if column is None else q.product_names[column]
            other = target_key(target.name, q.name, level)
            rows = element == position
            if other != target.key and other in truth and rows.any():
                out[rows] = as_numpy(truth[other])[rows]
        paired[target.key] = out
    return paired


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
