"""Assignment decoding with numpy alone: one tuple of objects per particle, no object used twice.

This module imports nothing but numpy, so it can be copied next to an exported ONNX model
and used where neither torch nor spanet_lite is installed. ``spanet_lite.assignment.decoding``
wraps the same functions for torch tensors and event specs.

Inputs are the network's per-particle joint log-probabilities (or probabilities, with
``probabilities=True``, as SPANet's export writes them by default): for a particle with ``k``
products an array of shape ``(B, N, ..., N)`` (``k`` object axes) over ordered tuples in the
combined object space, ``-inf`` on tuples that are impossible (a padded object, an object
used twice, an object from the wrong input). Outputs are ``(B, k)`` int64 object indices in
the same space, ``-1`` where the particle is not reported.

Two modes:

* ``greedy`` (default): repeatedly take the most confident remaining (particle, tuple) pair
  over all particles still unassigned, then block its objects for the rest of the event.
  A particle whose every remaining tuple uses a blocked or invalid object is reported as
  ``-1``. Cost ``O(P^2 N^k)`` per event, vectorised over events.
* ``exact``: maximise the joint log-probability ``sum_p log P_p(t_p)`` over all choices of
  mutually disjoint tuples. Reporting a particle always beats leaving it out (each missing
  particle costs :data:`MISSING_PENALTY`), so the decoder only leaves a particle out when no
  disjoint tuple is left for it. It enumerates the ``T`` best tuples of every particle, and
  proves the optimum: if the best disjoint combination found scores at least as high as any
  combination that could use a tuple ranked below ``T`` (bounded by that tuple's score plus
  the best scores of the other particles), it is the global optimum; otherwise ``T`` grows
  for the events that need it. Events whose proof would need more than ``max_combinations``
  joint combinations fall back to greedy (their count is returned by :func:`decode_exact`).
  Exact decoding suits events with a few particles (two or three); for the full hadronic
  ttbar case it agrees with greedy in nearly all events and is several times slower.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

MISSING_PENALTY = -1.0e6
"""Score of leaving an active particle out in exact mode; far below any real log-probability."""

_FLOOR = -1.0e5
"""Finite log-probabilities are clipped from below here so that MISSING_PENALTY always dominates."""


def decode(
    assignments: Mapping[str, np.ndarray],
    *,
    detections: Mapping[str, np.ndarray] | None = None,
    threshold: float = 0.5,
    mode: str = "greedy",
    probabilities: bool = False,
) -> dict[str, np.ndarray]:
    """Decode one event batch: particle -> (B, k) int64 object indices, -1 = not reported.

    ``detections`` (particle -> (B,) probability that the particle is present) switches a
    particle off in an event when its probability is below ``threshold``; switched-off
    particles neither get a tuple nor block objects. Particle order is the mapping's order.
    ``probabilities``: the assignments are probabilities (a SPANet-convention export without
    ``--output-log-transform``; 0 = impossible), not log-probabilities. Detections are always
    probabilities (``np.exp`` a ``_detection_log_probability`` first).
    """
    names = list(assignments)
    arrays = [np.asarray(assignments[name]) for name in names]
    if probabilities:
        with np.errstate(divide="ignore"):
            arrays = [np.log(array) for array in arrays]
    if not arrays:
        return {}
    batch = arrays[0].shape[0]
    active = np.ones((batch, len(names)), dtype=bool)
    if detections is not None:
        for j, name in enumerate(names):
            if name in detections:
                active[:, j] = np.asarray(detections[name]).reshape(batch) >= threshold
    if mode == "greedy":
        chosen = decode_greedy(arrays, active)
    elif mode == "exact":
        chosen, _ = decode_exact(arrays, active)
    else:
        raise ValueError(f"decoding mode must be 'greedy' or 'exact', got {mode!r}")
    return dict(zip(names, chosen))


def _flatten(array: np.ndarray, *, check_nan: bool = True) -> tuple[np.ndarray, int, int]:
    """(B, N, ..., N) -> (B, N**k) float scores with NaN treated as impossible; also k and N."""
    batch = array.shape[0]
    k = array.ndim - 1
    num_objects = array.shape[1] if k else 0
    flat = np.asarray(array, dtype=np.float32).reshape(batch, num_objects**k)
    if num_objects == 0:  # no object slots at all: one impossible tuple keeps the shapes regular
        return np.full((batch, 1), -np.inf, dtype=np.float32), k, 1
    if check_nan and np.isnan(flat).any():
        flat = np.where(np.isnan(flat), -np.inf, flat)
    return flat, k, num_objects


def unravel(flat_index: np.ndarray, k: int, num_objects: int) -> np.ndarray:
    """(B,) index into the flattened N**k tuple axis -> (B, k) object indices."""
    digits = [(flat_index // num_objects ** (k - 1 - axis)) % num_objects for axis in range(k)]
    return np.stack(digits, axis=-1).astype(np.int64)


def _tuple_blocked(blocked: np.ndarray, k: int) -> np.ndarray:
    """(B, N) blocked objects -> (B, N**k): does each ordered k-tuple use a blocked object?"""
    batch, num_objects = blocked.shape
    result = np.zeros((batch,) + (num_objects,) * k, dtype=bool)
    for axis in range(k):
        shape = [batch] + [1] * k
        shape[axis + 1] = num_objects
        result |= blocked.reshape(shape)
    return result.reshape(batch, -1)


def decode_greedy(arrays: Sequence[np.ndarray], active: np.ndarray) -> list[np.ndarray]:
    """Greedy decoding; see the module docstring. ``active`` is (B, P) bool.

    Each particle's best tuple is found once; after objects are blocked it is searched again
    only in the events where that best tuple uses a blocked object.
    """
    # numpy's argmax returns the first NaN, so a NaN anywhere in a row shows up as a NaN best
    # score; only those rows are cleaned (checking every entry would cost as much as decoding).
    flats = [_flatten(a, check_nan=False) for a in arrays]
    batch = active.shape[0]
    num_particles = len(flats)
    num_objects = max(n for _, _, n in flats)
    results = [np.full((batch, k), -1, dtype=np.int64) for _, k, _ in flats]
    blocked = np.zeros((batch, num_objects), dtype=bool)
    open_ = active.copy()  # particle still waiting for a tuple in this event
    rows = np.arange(batch)
    best_score = np.full((batch, num_particles), -np.inf, dtype=np.float32)
    best_objects = []  # per particle (B, k): objects of its current best tuple
    for j, (flat, k, n) in enumerate(flats):
        index = flat.argmax(axis=1)
        score = flat[rows, index]
        if np.isnan(score).any():
            flat = np.where(np.isnan(flat), -np.inf, flat)
            flats[j] = (flat, k, n)
            index = flat.argmax(axis=1)
            score = flat[rows, index]
        best_score[:, j] = np.where(open_[:, j], score, -np.inf)
        best_objects.append(unravel(index, k, n))
    for _ in range(num_particles):
        choice = best_score.argmax(axis=1)  # (B,) particle with the most confident tuple
        found = best_score[rows, choice] > -np.inf
        if not found.any():
            break
        for j in range(num_particles):
            take = found & (choice == j)
            if not take.any():
                continue
            results[j][take] = best_objects[j][take]
            blocked[np.nonzero(take)[0][:, None], best_objects[j][take]] = True
            open_[take, j] = False
        # Events where no open particle has a valid tuple left keep -1 for all of them.
        open_ &= found[:, None]
        best_score[~open_] = -np.inf
        for j, (flat, k, n) in enumerate(flats):
            stale = open_[:, j] & blocked[rows[:, None], best_objects[j]].any(axis=1)
            if not stale.any():
                continue
            events = np.nonzero(stale)[0]
            scores = flat[events]  # a copy (fancy indexing), masked in place
            scores[_tuple_blocked(blocked[events], k)] = -np.inf
            index = scores.argmax(axis=1)
            best_score[events, j] = scores[np.arange(events.size), index]
            best_objects[j][events] = unravel(index, k, n)
    return results


def decode_exact(
    arrays: Sequence[np.ndarray],
    active: np.ndarray,
    *,
    initial_candidates: int = 8,
    max_combinations: int = 4_000_000,
) -> tuple[list[np.ndarray], int]:
    """Exact joint decoding; returns the choices and the number of events that fell back to greedy."""
    flats = [_flatten(a) for a in arrays]
    batch = active.shape[0]
    num_particles = len(flats)
    results = [np.full((batch, k), -1, dtype=np.int64) for _, k, _ in flats]
    if batch == 0:
        return results, 0
    # Candidate lists sorted by descending score, once for all events.
    order = [np.argsort(-flat, axis=1, kind="stable") for flat, _, _ in flats]
    ranked = [np.take_along_axis(flat, o, axis=1) for (flat, _, _), o in zip(flats, order)]
    for r, j in zip(ranked, range(num_particles)):
        r[~active[:, j]] = -np.inf
        np.maximum(r, _FLOOR, out=r, where=np.isfinite(r))
    sizes = [flat.shape[1] for flat, _, _ in flats]
    pending = np.arange(batch)
    candidates = initial_candidates
    fallback = np.zeros(0, dtype=np.int64)
    while pending.size:
        counts = [min(candidates, m) for m in sizes]
        per_event = int(np.prod([c + 1 for c in counts]))
        if per_event > max_combinations:
            fallback = pending
            break
        chunk = max(1, max_combinations // per_event)
        unresolved = []
        for start in range(0, pending.size, chunk):
            events = pending[start : start + chunk]
            proven = _exact_chunk(events, flats, order, ranked, counts, sizes, results)
            unresolved.append(events[~proven])
        pending = np.concatenate(unresolved)
        if all(c == m for c, m in zip(counts, sizes)):
            break  # every tuple was enumerated: nothing left unproven
        candidates *= 4
    if fallback.size:
        greedy = decode_greedy([a[fallback] for a in arrays], active[fallback])
        for j in range(num_particles):
            results[j][fallback] = greedy[j]
    return results, int(fallback.size)


def _exact_chunk(events, flats, order, ranked, counts, sizes, results) -> np.ndarray:
    """Best disjoint combination over the top ``counts`` candidates of each particle, for ``events``.

    Writes the choice into ``results`` and returns (b,) bool: the choice is provably optimal.
    """
    num_particles = len(flats)
    b = events.size
    scores, objects = [], []
    for j, ((_, k, n), o, r, c) in enumerate(zip(flats, order, ranked, counts)):
        # float64: a sum holding MISSING_PENALTY (-1e6) keeps only ~0.06 of resolution in float32,
        # so with a particle left out (switched off, or no tuple left) the others' choices would
        # be ranked by rounded scores and the joint maximum missed.
        top = r[events, :c].astype(np.float64)  # (b, c), -inf where invalid or switched off
        missing = np.full((b, 1), MISSING_PENALTY, dtype=np.float64)
        scores.append(np.concatenate([top, missing], axis=1))  # (b, c + 1); last = not reported
        obj = unravel(o[events, :c].reshape(-1), k, n).reshape(b, c, k)
        # "Not reported" uses no object: a negative sentinel unique to this particle never collides.
        none = np.full((b, 1, k), -(j + 2), dtype=np.int64)
        objects.append(np.concatenate([obj, none], axis=1))  # (b, c + 1, k)
    joint = np.zeros((b, *(c + 1 for c in counts)), dtype=np.float64)
    for j in range(num_particles):
        shape = [b] + [1] * num_particles
        shape[j + 1] = counts[j] + 1
        joint = joint + scores[j].reshape(shape)
    for p in range(num_particles):
        for q in range(p + 1, num_particles):
            # (b, cp+1, cq+1): do the two candidate tuples share an object?
            clash = (objects[p][:, :, None, :, None] == objects[q][:, None, :, None, :]).any(axis=(3, 4))
            shape = [b] + [1] * num_particles
            shape[p + 1] = counts[p] + 1
            shape[q + 1] = counts[q] + 1
            joint = np.where(clash.reshape(shape), -np.inf, joint)
    flat_joint = joint.reshape(b, -1)
    best_flat = flat_joint.argmax(axis=1)
    best = flat_joint[np.arange(b), best_flat]
    picks = np.unravel_index(best_flat, joint.shape[1:])
    # Optimality: any combination using particle p's candidate ranked counts[p] (0-based) or lower
    # scores at most that candidate's score plus every other particle's best option.
    best_option = [np.maximum(s.max(axis=1), MISSING_PENALTY) for s in scores]
    total_best = np.sum(best_option, axis=0)
    proven = np.ones(b, dtype=bool)
    for j in range(num_particles):
        if counts[j] >= sizes[j]:
            continue
        next_score = ranked[j][events, counts[j]]
        bound = next_score + total_best - best_option[j]
        proven &= ~(bound > best)
    for j in range(num_particles):
        pick = picks[j]
        chosen = pick < counts[j]
        row = np.nonzero(chosen)[0]
        values = np.full((b, objects[j].shape[2]), -1, dtype=np.int64)
        values[row] = objects[j][row, pick[row]]
        # A candidate with -inf score is never chosen over "not reported" (finite penalty).
        results[j][events] = values
    return proven
