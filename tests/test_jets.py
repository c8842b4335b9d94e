"""Jet multiplicity in spanet-test's tables and plots counts jets: leptons in a jet input (tagged by
``etag``/``utag``) or in an input named for leptons are not jets."""

from __future__ import annotations

import h5py
import numpy as np

from spanet_lite.assignment.jets import count_jets, describe, jet_products
from spanet_lite.assignment.metrics import jet_rows
from spanet_lite.config import parse_event_spec

# Semi-leptonic ttbar with the lepton among the jets (SPANet's ttH layout), and a second spec with
# the lepton in its own input, tied to the leptonic top.
MIXED = parse_event_spec("""
INPUTS:
  SEQUENTIAL:
    Momenta: {pt: none, btag: none, etag: none, utag: none}
EVENT:
  lt: [b]
  ht: [b, q1, q2]
PERMUTATIONS:
  ht: [[q1, q2]]
""")

SEPARATE = parse_event_spec("""
INPUTS:
  SEQUENTIAL:
    Jets: {pt: none, btag: none}
    Leptons: {pt: none}
EVENT:
  lt: [b: Jets, l: Leptons]
  ht: [b: Jets, q1: Jets, q2: Jets]
PERMUTATIONS:
  ht: [[q1, q2]]
""")


def test_tagged_leptons_and_padding_are_not_jets():
    #                    pt    btag  etag  utag
    event = np.array([[[50.0, 1.0, 0.0, 0.0],   # b jet
                       [40.0, 0.0, 0.0, 0.0],   # light jet
                       [30.0, 0.0, 1.0, 0.0],   # electron
                       [25.0, 0.0, 0.0, 1.0],   # muon
                       [0.0, 0.0, 0.0, 0.0]]])  # padding
    mask = np.array([[True, True, True, True, False]])
    assert count_jets(MIXED, {"Momenta": event}, {"Momenta": mask}).tolist() == [2]
    assert jet_products(MIXED) == 4
    assert describe(MIXED) == "jets counted: Momenta: objects without a lepton tag (etag/utag > 0.5)"


def test_an_input_named_for_leptons_holds_no_jets_and_its_products_are_not_needed_jets():
    features = {"Jets": np.zeros((2, 6, 2)), "Leptons": np.zeros((2, 2, 1))}
    masks = {"Jets": np.arange(6)[None] < np.array([[4], [6]]), "Leptons": np.ones((2, 2), dtype=bool)}
    assert count_jets(SEPARATE, features, masks).tolist() == [4, 6]
    assert jet_products(SEPARATE) == 4  # l sits in Leptons
    assert list(jet_rows(SEPARATE, np.array([4, 5, 6]))) == ["==4", "==5", ">=6", "all"]


def test_the_generated_tth_file_has_six_jet_events_beside_its_one_lepton(generated_tth):
    """The ttH selection needs >= 6 jets and one lepton: no event has fewer than 6 jets, and the
    ``==6`` row is the events with 7 objects."""
    spec = parse_event_spec((generated_tth / "semi_leptonic_ttH.yaml").read_text())
    with h5py.File(generated_tth / "example.h5", "r") as file:
        names = [f.name for f in spec.sequential[0].features]
        features = np.stack([file[f"INPUTS/Momenta/{n}"][:] for n in names], axis=-1)
        mask = file["INPUTS/Momenta/MASK"][:]
    jets = count_jets(spec, {"Momenta": features}, {"Momenta": mask})
    assert jets.min() == 6 and jets_of(jets, 6) == jets_of(mask.sum(axis=1), 7) > 0


def jets_of(counts: np.ndarray, n: int) -> int:
    return int((counts == n).sum())


def test_lepton_tags_are_one_rule_above_one_half_for_either_flag():
    from spanet_lite.assignment.jets import lepton_tagged

    values = {"etag": np.array([[0.0, 1.0, 0.5, 0.0]]), "utag": np.array([[0.0, 0.0, 0.0, 0.9]])}
    assert lepton_tagged(values, (1, 4)).tolist() == [[False, True, False, True]]
    assert not lepton_tagged({}, (1, 4)).any()  # a jets-only input has no leptons
