"""Balancing weights: make rare event kinds count as much as common ones in the training loss.

All three weights are inverse frequencies over the *training split* (after filtering), scaled
so that their mean over the events they apply to is 1, so that switching balancing on does
not change the overall size of the loss. With ``n`` training events:

``balance_particles``
    Each event has a *pattern*: which particles are fully reconstructable (a bit per particle,
    from ``target_masks``), with patterns that the EVENT symmetry maps onto each other counted
    as one (as SPANet's equivalence classes do). With ``n_c`` events of pattern ``c`` and ``P``
    distinct patterns present, an event of pattern ``c`` gets ``w = n / (P * n_c)``. Every
    pattern then carries the same total weight ``n / P``.

``balance_jets``
    The same with the number of real SEQUENTIAL objects (GLOBAL inputs do not count) in place
    of the pattern: ``w = n / (J * n_j)`` for ``J`` distinct object counts present.

``balance_classifications``
    Per classification target, over the ``m`` events with a label (label ``>= 0``) and ``C``
    distinct labels present: ``w = m / (C * m_l)``. An event with label ``-1`` gets weight 0
    whether balancing is on or off, so missing labels never enter the loss; with balancing
    off, labelled events get 1.

``assignment_weights = w_particles * w_jets`` (each 1 when its option is off) multiplies the
assignment and detection losses. The weights are computed for the training split only;
validation and testing batches carry ones, so their losses estimate the unbalanced loss.
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
    """Sorted pattern codes seen in training (``sum_i target_mask_i << i``), or None when off."""
    pattern_weights: np.ndarray | None = None
    jet_weights: np.ndarray | None = None
    """Index = number of real objects -> weight; None when off."""
    class_weights: dict[str, np.ndarray] = field(default_factory=dict)
    """Classification key -> weight per label (index = label); empty when off."""


def pattern_codes(target_masks: dict[str, np.ndarray], spec: EventSpec) -> np.ndarray:
    """(n,) int64: bit ``i`` set when particle ``i`` (event-file order) is fully reconstructable,
    canonicalised under the EVENT symmetry (the smallest code over the group's elements), so
    that "only t1" and "only t2" of symmetric tops are one pattern."""
    masks = [target_masks[p.name].astype(np.int64) for p in spec.particles]
    canonical = None
    for element in spec.event_symmetry.elements:
        codes = np.zeros(len(masks[0]), dtype=np.int64)
        for bit, source in enumerate(element):
            codes |= masks[source] << bit
        canonical = codes if canonical is None else np.minimum(canonical, codes)
    assert canonical is not None
    return canonical


def inverse_frequency(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``values`` and their weights ``n / (K * n_v)`` (mean 1 over ``values``)."""
    distinct, counts = np.unique(values, return_counts=True)
    weights = len(values) / (len(distinct) * counts.astype(np.float64))
    return distinct, weights


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
    if options.balance_particles and spec.particles and len(num_objects):
        tables.pattern_codes, tables.pattern_weights = inverse_frequency(pattern_codes(target_masks, spec))
    if options.balance_jets and len(num_objects):
        distinct, weights = inverse_frequency(num_objects)
        table = np.ones(int(distinct.max()) + 1, dtype=np.float64)
        table[distinct] = weights
        tables.jet_weights = table
    if options.balance_classifications:
        for key, labels in classifications.items():
            labelled = labels[labels >= 0]
            if len(labelled) == 0:
                continue
            distinct, weights = inverse_frequency(labelled)
            table = np.ones(int(distinct.max()) + 1, dtype=np.float64)
            table[distinct] = weights
            tables.class_weights[key] = table
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
        weights *= _lookup_dense(tables.jet_weights, block.num_objects())
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
