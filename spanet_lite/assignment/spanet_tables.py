"""SPANet's own test tables (``python -m spanet.test``), with SPANet's definitions.

SPANet's evaluator groups particles into clusters (orbits of the event symmetry) and reports,
per event type and jet multiplicity, the proportions of events and the event and cluster
purities; :func:`spanet_tables` reproduces those numbers so old and new runs can be put side by
side. They are unweighted and score the best assignment (no detection gating), as SPANet's.
spanet_lite's own definitions (weights, efficiencies) are in :mod:`spanet_lite.assignment.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import permutations, product

import numpy as np

from spanet_lite.assignment.metrics import ArrayLike, as_numpy
from spanet_lite.config.event_spec import EventSpec


def longest_common_substring(names: list[str]) -> str:
    """The longest string found in every name (SPANet names a particle cluster this way: t1, t2 -> t)."""
    shortest = min(names, key=len)
    for length in range(len(shortest), 0, -1):
        for start in range(len(shortest) - length + 1):
            candidate = shortest[start : start + length]
            if all(candidate in name for name in names):
                return candidate
    return ""


def spanet_clusters(spec: EventSpec) -> list[tuple[str, tuple[int, ...]]]:
    """(cluster name, particle positions) per orbit of the event symmetry, as SPANet groups particles."""
    names = spec.particle_names
    return [
        (longest_common_substring([names[i] for i in orbit]), tuple(orbit))
        for orbit in spec.event_symmetry.orbits()
    ]


def _sorted_within_products(spec: EventSpec, arrays: Mapping[str, ArrayLike]) -> list[np.ndarray]:
    """Per particle (event-file order), (B, k) indices with each product-symmetry orbit sorted."""
    result = []
    for particle in spec.particles:
        values = as_numpy(arrays[particle.name]).astype(np.int64).copy()
        for orbit in particle.symmetry.orbits():
            if len(orbit) > 1:
                values[:, list(orbit)] = np.sort(values[:, list(orbit)], axis=1)
        result.append(values)
    return result


def _spanet_event_type(
    spec: EventSpec, clusters: list[tuple[str, tuple[int, ...]]], predictions: list[np.ndarray],
    targets: list[np.ndarray], masks: np.ndarray,
) -> tuple[float, dict[str, float]]:
    """(event purity, cluster name -> purity) over the given events, with SPANet's definitions."""
    num_events = masks.shape[1]
    best = np.zeros(num_events, dtype=np.int64)
    for element in spec.event_symmetry.elements:
        correct = sum(
            (predictions[i] == targets[element[i]]).all(-1) * masks[element[i]]
            for i in range(len(predictions))
        )
        best = np.maximum(best, correct)
    event_purity = float((best == masks.sum(0)).mean()) if num_events else math.nan
    purities: dict[str, float] = {}
    for name, orbit in clusters:
        cluster_best = np.zeros(num_events, dtype=np.int64)
        for order in permutations(range(len(orbit))):
            correct = sum(
                (predictions[orbit[i]] == targets[orbit[order[i]]]).all(-1) * masks[orbit[order[i]]]
                for i in range(len(orbit))
            )
            cluster_best = np.maximum(cluster_best, correct)
        total = masks[list(orbit)].sum()
        purities[name] = float(cluster_best.sum() / total) if total > 0 else math.nan
    return event_purity, purities


def spanet_tables(
    predictions: Mapping[str, ArrayLike],
    targets: Mapping[str, ArrayLike],
    target_masks: Mapping[str, ArrayLike],
    spec: EventSpec,
    num_vectors: ArrayLike,
    *,
    lines: int = 2,
) -> dict[str, list[dict[str, object]]]:
    """SPANet's ``spanet.test`` tables: event type -> rows, with SPANet's column names.

    Definitions, as SPANet's evaluator has them (unweighted):

    * particles are grouped into clusters, the orbits of the event symmetry (``t1, t2`` -> ``t``);
    * an event type gives, per cluster, how many of its particles are reconstructable (``0t``,
      ``1t``, ``2t``) or ``*`` for any number (then the event needs at least one reconstructable
      particle in total); names concatenate the clusters (``*t*h``, ``2t1h``...);
    * rows by ``num_vectors`` (objects of every input; SPANet counts a GLOBAL input as one, or
      as its ``MASK`` where the file has one):
      ``== m``, ``== m+1``... (``lines`` of them, ``m`` the smallest count in the file), then
      ``>= m+lines`` and ``Full`` (all events);
    * ``Jet Proportion``: fraction of all events in the row; ``Event Proportion``: fraction of
      the row's events that are of this event type;
    * ``Event Purity``: among those events, the fraction where every reconstructable particle is
      assigned correctly under the best element of the event symmetry (product symmetries are
      removed by sorting within each orbit first); an event type with no reconstructable
      particle (``0t``) counts as correct;
    * ``<Cluster> Purity`` (``T Purity``): correctly assigned reconstructable particles of the
      cluster, under the best permutation within the cluster per event, over all its
      reconstructable particles.

    Empty selections give nan (SPANet prints N/A). The best assignment is scored, never the
    detection-gated one.
    """
    clusters = spanet_clusters(spec)
    predicted = _sorted_within_products(spec, predictions)
    truth = _sorted_within_products(spec, targets)
    masks = np.stack([as_numpy(target_masks[p]).astype(bool) for p in spec.particle_names]).astype(np.int64)
    vectors = as_numpy(num_vectors).astype(np.int64).reshape(-1)
    if vectors.size == 0:
        return {}
    smallest = int(vectors.min())
    limits = [(f"== {smallest + i}", vectors == smallest + i) for i in range(lines)]
    limits.append((f">= {smallest + lines}", vectors >= smallest + lines))
    limits.append(("Full", np.ones_like(vectors, dtype=bool)))
    counts_per_cluster = [range(-1, len(orbit) + 1) for _, orbit in clusters]
    tables: dict[str, list[dict[str, object]]] = {}
    for limit_name, in_row in limits:
        p_row = [p[in_row] for p in predicted]
        t_row = [t[in_row] for t in truth]
        m_row = masks[:, in_row]
        total = m_row.sum(0)
        jet_proportion = 1.0 if limit_name == "Full" else float(in_row.mean())
        for event_counts in product(*counts_per_cluster):
            selected = total >= 0
            name = ""
            for count, (cluster, orbit) in zip(event_counts, clusters, strict=True):
                if count >= 0:
                    selected = selected & (m_row[list(orbit)].sum(0) == count)
                else:
                    selected = selected & (total > 0)
                name += ("*" if count < 0 else str(count)) + cluster
            purity, cluster_purity = _spanet_event_type(
                spec, clusters, [p[selected] for p in p_row], [t[selected] for t in t_row], m_row[:, selected]
            )
            row: dict[str, object] = {
                "Jet Limit": limit_name,
                "Event Proportion": float(selected.mean()) if selected.size else math.nan,
                "Jet Proportion": jet_proportion,
                "Event Purity": purity,
            }
            for cluster in sorted(cluster_purity):
                column = " ".join(part.capitalize() for part in f"{cluster}_purity".split("_"))
                row[column] = cluster_purity[cluster]
            tables.setdefault(name, []).append(row)
    return dict(sorted(tables.items()))
