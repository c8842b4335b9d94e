"""Balancing weights: SPANet's "effective number of samples" weights, fitted on the training split.

The three options keep SPANet's formulas (``spanet/dataset/jet_reconstruction_dataset.py``),
which follow Cui et al. 2019 (arXiv:1901.05555): a class with ``n_c`` events gets

    w_c = (1 - beta) / (1 - beta ** n_c),   beta = 1 - 1/n

with ``n`` the number of training events (after filtering); ``n_c = 0`` gives 0. ``w_c`` is
``1/n_c`` for rare classes and flattens towards ``1/(0.63 n)`` for a class holding all events.

``balance_particles`` (only with ``partial_events: true``, as in SPANet; with ``false`` every
training event is full and the option has no effect)
    An event's *pattern* is which particles are fully reconstructable (a bit per particle,
    from ``target_masks``); patterns the EVENT symmetry maps onto each other form one class
    (SPANet's equivalence classes: the orbits of all ``2^P`` patterns, present or not).
    Counts get ``+1`` (so an empty class has ``n_c = 1``, weight 1), and the weights are
    normalised to ``K w_c / sum_c w_c`` over all ``K`` classes.

``balance_jets``
    Classes are SPANet's vector counts (:meth:`EventBlock.num_vectors`: real objects of every
    input, each GLOBAL input adding one), ``0 .. max``; normalised to
    ``(max - min + 1) w_j / sum_j w_j``.

``balance_classifications``
    Per classification target, over its labelled events (label ``>= 0``; SPANet has no
    missing labels): classes ``0 .. max label``, normalised to ``C w_l / sum_l w_l`` with
    ``C = max label + 1``. An event with label ``-1`` gets weight 0 whether balancing is on
    or off, so missing labels never enter the loss; with balancing off, labelled events get 1.

``assignment_weights = w_particles * w_jets`` (each 1 when its option is off) multiplies the
assignment and detection losses; ``classification_weights`` the classification loss. Our
losses are weighted means (divided by the sum of the weights), so only the *ratios* of these
weights matter here; SPANet divides its assignment and detection sums by the number of
reconstructable particles instead, so there their overall size scales the loss too (see
docs/migrating_from_spanet.md, "Loss total"). The weights are computed for the training split
only; validation and testing batches carry ones, so their losses estimate the unbalanced loss.
Event physics weights are separate (``Batch.event_weights``) and are not counted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset.reader import EventBlock


@dataclass
class BalanceTables:
    """Lookup tables fitted on the training split, applied block by block."""

    pattern_codes: np.ndarray | None = None
    """Sorted canonical pattern codes (``sum_i target_mask_i << i``), one per class, or None when off."""
    pattern_weights: np.ndarray | None = None
    jet_weights: np.ndarray | None = None
    """Index = number of real objects -> weight; None when off."""
    class_weights: dict[str, np.ndarray] = field(default_factory=dict)
    """Classification key -> weight per label (index = label); empty when off."""


def _canonical(codes: np.ndarray, spec: EventSpec) -> np.ndarray:
    """Each pattern code replaced by the smallest code of its orbit under the EVENT symmetry."""
    canonical = None
    for element in spec.event_symmetry.elements:
        mapped = np.zeros(len(codes), dtype=np.int64)
        for bit, source in enumerate(element):
            mapped |= ((codes >> source) & 1) << bit
        canonical = mapped if canonical is None else np.minimum(canonical, mapped)
    assert canonical is not None
    return canonical


def pattern_codes(target_masks: dict[str, np.ndarray], spec: EventSpec) -> np.ndarray:
    """(n,) int64: bit ``i`` set when particle ``i`` (event-file order) is fully reconstructable,
    canonicalised under the EVENT symmetry (the smallest code over the group's elements), so
    that "only t1" and "only t2" of symmetric tops are one pattern."""
    codes = np.zeros(len(next(iter(target_masks.values()))), dtype=np.int64)
    for bit, particle in enumerate(spec.particles):
        codes |= target_masks[particle.name].astype(np.int64) << bit
    return _canonical(codes, spec)


def effective_number_weights(counts: np.ndarray, total: int) -> np.ndarray:
    """Cui et al.'s ``(1 - beta) / (1 - beta ** counts)`` with ``beta = 1 - 1/total``; 0 where
    ``counts`` is 0 (SPANet sets those infinite weights to 0)."""
    beta = 1.0 - 1.0 / total
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(divide="ignore"):
        weights = (1.0 - beta) / (1.0 - beta**counts)
    return np.where(counts > 0, weights, 0.0)


def particle_balance(codes: np.ndarray, spec: EventSpec) -> tuple[np.ndarray, np.ndarray]:
    """SPANet's ``compute_particle_balance``: sorted class codes (one per EVENT-symmetry orbit
    of all ``2^P`` patterns) and their weights ``K w_c / sum w`` with counts ``+1``."""
    classes = np.unique(_canonical(np.arange(2 ** len(spec.particles), dtype=np.int64), spec))
    counts = np.array([np.count_nonzero(codes == c) for c in classes]) + 1
    weights = effective_number_weights(counts, len(codes))
    return classes, len(classes) * weights / weights.sum()


def count_balance(values: np.ndarray, normaliser: int) -> np.ndarray:
    """Dense table over ``0 .. max(values)``: effective-number weights of each value's count,
    scaled to ``normaliser * w / sum w``."""
    weights = effective_number_weights(np.bincount(values), len(values))
    return normaliser * weights / weights.sum()


def fit_balance(
    spec: EventSpec,
    options: Options,
    *,
    target_masks: dict[str, np.ndarray],
    num_objects: np.ndarray,
    classifications: dict[str, np.ndarray],
) -> BalanceTables:
    """Fit the tables on the training split's per-event facts (see the module docstring)."""
    tables = BalanceTables()
    if options.balance_particles and options.partial_events and spec.particles and len(num_objects):
        codes = pattern_codes(target_masks, spec)
        tables.pattern_codes, tables.pattern_weights = particle_balance(codes, spec)
    if options.balance_jets and len(num_objects):
        counts = num_objects.astype(np.int64)
        tables.jet_weights = count_balance(counts, int(counts.max() - counts.min() + 1))
    if options.balance_classifications:
        for key, labels in classifications.items():
            labelled = labels[labels >= 0].astype(np.int64)
            if len(labelled) == 0:
                continue
            tables.class_weights[key] = count_balance(labelled, int(labelled.max()) + 1)
    return tables


def apply_weights(
    block: EventBlock, spec: EventSpec, options: Options, tables: BalanceTables | None
) -> EventBlock:
    """Fill ``assignment_weights``, ``classification_weights`` and ``assignment_event_mask``.

    ``tables=None`` (validation, testing) gives ones; labels ``-1`` always get weight 0.
    """
    n = len(block)
    weights = np.ones(n, dtype=np.float64)
    if tables is not None and tables.pattern_codes is not None and tables.pattern_weights is not None:
        weights *= _lookup_sorted(
            tables.pattern_codes, tables.pattern_weights, pattern_codes(block.target_masks, spec)
        )
    if tables is not None and tables.jet_weights is not None:
        weights *= _lookup_dense(tables.jet_weights, block.num_vectors())
    block.assignment_weights = weights.astype(np.float32)

    block.classification_weights = {}
    for key, labels in block.classifications.items():
        table = tables.class_weights.get(key) if tables is not None else None
        values = _lookup_dense(table, labels) if table is not None else np.ones(n, dtype=np.float64)
        block.classification_weights[key] = np.where(labels >= 0, values, 0.0).astype(np.float32)

    if options.partial_events or not spec.particles:
        block.assignment_event_mask = np.ones(n, dtype=bool)
    else:
        block.assignment_event_mask = np.logical_and.reduce(
            [block.target_masks[p.name] for p in spec.particles]
        )
    return block


def _lookup_sorted(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at the position of each ``query`` in sorted ``keys``; 1 for unseen keys."""
    position = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[position] == query, values[position], 1.0)


def _lookup_dense(table: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``table[query]`` for ``0 <= query < len(table)``, else 1."""
    inside = (query >= 0) & (query < len(table))
    return np.where(inside, table[np.clip(query, 0, len(table) - 1)], 1.0)
