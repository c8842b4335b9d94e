"""What counts as a jet in the multiplicity tables and plots of ``spanet-test``.

SPANet files often keep the charged lepton in the same SEQUENTIAL input as the jets (SPANet's
semi-leptonic ttH example: ``Momenta`` with ``etag``/``utag`` flags), so "real objects per
event" is not "jets per event". The rule, applied to every SEQUENTIAL input:

* an input whose name says it holds leptons (contains ``lepton``, ``electron`` or ``muon``,
  any case) holds no jets;
* otherwise every real (unmasked) object is a jet, except an object with a lepton tag
  (``etag`` or ``utag`` feature, value > 0.5).

The number of jets a fully reconstructed event needs, ``m`` of the ``==m`` rows, counts
every decay product except those the event file ties to a lepton input. GLOBAL inputs never
hold jets.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from spanet_lite.config.event_spec import EventSpec, InputSpec

LEPTON_TAGS = ("etag", "utag")
"""Features that flag an object as an electron or a muon (SPANet's names)."""

TAG_THRESHOLD = 0.5
LEPTON_INPUT_WORDS = ("lepton", "electron", "muon")


def is_lepton_input(source: InputSpec) -> bool:
    """True for a SEQUENTIAL input whose name says it holds leptons (``Leptons``, ``muons``...)."""
    name = source.name.lower()
    return any(word in name for word in LEPTON_INPUT_WORDS)


def lepton_tagged(values: Mapping[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Bool of ``shape``: objects whose ``etag`` or ``utag`` is above 0.5 (False without those features).

    ``values`` maps feature names to raw per-object values; the one place this rule is written.
    """
    tagged = np.zeros(shape, dtype=bool)
    for tag in LEPTON_TAGS:
        if tag in values:
            tagged |= np.asarray(values[tag]) > TAG_THRESHOLD
    return tagged


def jet_products(spec: EventSpec) -> int:
    """m: the jets a fully reconstructed event uses (products not tied to a lepton input)."""
    leptons = {s.name for s in spec.sequential if is_lepton_input(s)}
    return sum(1 for p in spec.particles for product in p.products if product.input not in leptons)


def count_jets(
    spec: EventSpec, features: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> np.ndarray:
    """(B,) int64 jets per event: real objects of the SEQUENTIAL inputs, leptons excluded.

    ``features``: input -> (B, N, F) raw values in event-file feature order; ``masks``:
    input -> (B, N) bool, True for a real object.
    """
    counts = np.zeros(len(masks[spec.sequential[0].name]), dtype=np.int64)
    for source in spec.sequential:
        mask = np.asarray(masks[source.name]).astype(bool)
        if is_lepton_input(source):
            continue
        names = [f.name for f in source.features]
        raw = np.asarray(features[source.name])
        tags = {tag: raw[..., names.index(tag)] for tag in LEPTON_TAGS if tag in names}
        counts += (mask & ~lepton_tagged(tags, mask.shape)).sum(axis=1)
    return counts


def describe(spec: EventSpec) -> str:
    """One line saying what was counted as a jet in this topology (for tables and JSON)."""
    parts = []
    for source in spec.sequential:
        if is_lepton_input(source):
            parts.append(f"{source.name}: leptons, not counted")
            continue
        tags = [t for t in LEPTON_TAGS if t in {f.name for f in source.features}]
        if tags:
            tagged = f"{'/'.join(tags)} > {TAG_THRESHOLD:g}"
            parts.append(f"{source.name}: objects without a lepton tag ({tagged})")
        else:
            parts.append(f"{source.name}: every object")
    return "jets counted: " + "; ".join(parts)
