"""The one detector response (b-tagging, jet energy resolution, lepton ID) and both backends' use of it.

Reference numbers are the Delphes 3 ATLAS card formulas (``delphes_card_ATLAS.tcl``) evaluated by
hand; the backend tests measure tag rates, resolutions and efficiencies on reconstructed objects
and compare them with the shared functions within statistics, so a backend that drifts from the
formula (or stops using it) fails here.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs

from spanet_lite.physics import detector_response as response
from spanet_lite.physics.generator import PROCESSES, PhysicsConfig, Selection
from spanet_lite.physics.generator import detector as fast
from spanet_lite.physics.generator.production import PartonSet
from spanet_lite.physics.pythia import detector as pythia
from spanet_lite.physics.pythia.record import FlatBatch

PT = np.array([20.0, 50.0, 100.0, 200.0, 500.0, 1000.0])
FLAVOURS = {"b": 5, "c": 4, "light": 0}
# A clean detector for the backend tests: no radiation, no shower mass, no response shifts.
CLEAN = PhysicsConfig(
    fsr_probability=0.0, isr_mean=0.0, jet_mass_fraction=0.0, jet_response_b=1.0, jet_response_light=1.0,
    jet_response_spread_b=0.0, jet_axis_tail_b=0.0, jet_axis_tail_light=0.0, jet_pt_min=0.0,
    lepton_isolation_efficiency=1.0,
)


def test_btag_efficiencies_are_the_delphes_atlas_values():
    # b: 0.80 tanh(0.003 pT) 30 / (1 + 0.086 pT); c: 0.20 tanh(0.02 pT) / (1 + 0.0034 pT);
    # light: 0.002 + 7.3e-6 pT - at 20, 50, 100, 200, 500, 1000 GeV.
    expected = {
        5: [0.52878, 0.67420, 0.72828, 0.70820, 0.49372, 0.27450],
        4: [0.07115, 0.13019, 0.14388, 0.11897, 0.07407, 0.04545],
        0: [0.00215, 0.00236, 0.00273, 0.00346, 0.00565, 0.00930],
    }
    for flavour, values in expected.items():
        got = response.btag_efficiency(PT, np.full(PT.shape, flavour, dtype=np.int8))
        np.testing.assert_allclose(got, values, atol=5e-6)
    # Any label other than 5 or 4 is light (gluons, s quarks, taus, the padding's 0).
    np.testing.assert_array_equal(
        response.btag_efficiency(PT, np.full(PT.shape, 21)), response.btag_efficiency_light(PT)
    )


def test_btag_efficiency_shape_and_limits():
    pt = np.linspace(0.0, 3000.0, 30001)
    b, c, light = (f(pt) for f in (response.btag_efficiency_b, response.btag_efficiency_c,
                                   response.btag_efficiency_light))
    assert b[0] == c[0] == 0.0 and light[0] == 0.002
    peak = pt[np.argmax(b)]
    assert 115 < peak < 135 and 0.73 < b.max() < 0.735  # the b plateau sits near 125 GeV
    assert np.all(np.diff(b[pt <= 120]) > 0) and np.all(np.diff(b[pt >= 130]) < 0)
    assert np.all(np.diff(light) > 0)
    assert np.all((light < c)[(pt > 10) & (pt < 1000)]) and np.all((c < b)[pt > 1])
    assert np.all((c >= 0) & (c <= 0.2)) and np.all(b <= 0.8)


def test_btag_efficiency_any_shape_and_precision():
    pt = np.array([[30.0, 150.0, 600.0], [45.0, 90.0, 1200.0]], dtype=np.float32)
    flavour = np.array([[5, 4, 0], [0, 5, 4]], dtype=np.int8)
    got = response.btag_efficiency(pt, flavour)
    assert got.dtype == np.float64 and got.shape == (2, 3)
    by_hand = [[response.btag_efficiency_b, response.btag_efficiency_c, response.btag_efficiency_light],
               [response.btag_efficiency_light, response.btag_efficiency_b, response.btag_efficiency_c]]
    for i, j in np.ndindex(2, 3):
        assert got[i, j] == by_hand[i][j](np.float64(pt[i, j]))


def test_jet_energy_resolution_is_the_delphes_atlas_hcal_formula():
    config = PhysicsConfig()
    energy = np.array([30.0, 100.0, 500.0, 5000.0])
    # sqrt((0.0302 E)^2 + 0.5205^2 E + 1.59^2) / E centrally; (0.050, 0.706, 0) beyond |eta| 1.7.
    central = response.jet_energy_resolution(energy, np.full(4, 1.7), config)
    forward = response.jet_energy_resolution(energy, np.full(4, -1.71), config)
    np.testing.assert_allclose(central, [0.11292, 0.06224, 0.03826, 0.03109], atol=5e-6)
    np.testing.assert_allclose(forward, [0.13826, 0.08651, 0.05913, 0.05099], atol=5e-6)
    # At high energy only the constant term is left.
    huge = response.jet_energy_resolution(np.array([1e9]), np.zeros(1), config)
    assert huge[0] == pytest.approx(0.0302, rel=1e-4)


@pytest.mark.parametrize("overrides", [{}, {"jer_noise_central": 3.0, "jer_eta_boundary": 1.2}])
def test_fast_float32_resolution_is_the_same_formula(overrides):
    config = PhysicsConfig().with_overrides(**overrides)
    # (Off the |eta| boundary itself, where float32 and float64 rounding may pick different sides.)
    energy, eta = np.meshgrid(np.geomspace(5.0, 4000.0, 200), np.linspace(-2.6, 2.6, 105) + 1e-3)
    reference = response.jet_energy_resolution(energy, eta, config)
    fast32 = response.jet_energy_resolution_from_e2(
        (energy * energy).astype(np.float32).ravel(), eta.astype(np.float32).ravel(), config
    )
    assert fast32.dtype == np.float32
    np.testing.assert_allclose(fast32, reference.ravel(), rtol=2e-6)


def test_jet_energy_scale_floor_and_precision():
    sigma = np.array([0.1, 0.1, 2.0], dtype=np.float32)
    normal = np.array([1.0, -1.0, -3.0], dtype=np.float32)
    scale = response.jet_energy_scale(sigma, normal)
    assert scale.dtype == np.float32
    np.testing.assert_allclose(scale, [1.1, 0.9, response.JET_SCALE_FLOOR], rtol=1e-6)


def test_lepton_identification_efficiency_follows_the_config():
    eta = np.array([0.0, -1.5, 1.51, -2.4])
    np.testing.assert_array_equal(response.lepton_identification_efficiency(eta, PhysicsConfig()),
                                  [0.95, 0.95, 0.85, 0.85])
    tight = PhysicsConfig(lepton_efficiency_central=0.5, lepton_efficiency_eta=0.1)
    np.testing.assert_array_equal(
        response.lepton_identification_efficiency(eta, tight), [0.5, 0.85, 0.85, 0.85]
    )


# --- both backends, measured against the shared formulas ----------------------------------------


def _assert_rate(tags: np.ndarray, efficiency: np.ndarray) -> None:
    """Observed tag count within 4 binomial standard deviations of the sum of the efficiencies."""
    expected, sigma = efficiency.sum(), np.sqrt((efficiency * (1 - efficiency)).sum())
    assert abs(tags.sum() - expected) < 4 * sigma + 1, (tags.sum(), expected, sigma)


def _fast_single_jets(pt: np.ndarray, eta: np.ndarray, flavour: np.ndarray, config: PhysicsConfig, seed: int):
    """One parton per event through the fast detector model; returns the events' stored jet 0."""
    n = len(pt)
    column = lambda a, dtype: np.asarray(a, dtype=dtype)[:, None]  # noqa: E731
    hard = PartonSet(column(pt, np.float32), column(eta, np.float32), np.zeros((n, 1), np.float32),
                     np.zeros((n, 1), np.float32), column(flavour, np.int8), np.zeros((n, 1), np.int16),
                     np.ones((n, 1), bool))
    isr = PartonSet(*(np.zeros((n, 0), dtype=d) for d in (np.float32,) * 4 + (np.int8, np.int16, bool)))
    reco = fast.reconstruct(np.random.default_rng(seed), hard, isr, 1, 2, config, Selection(0, 0))
    kept = reco.jet_mask[:, 0]
    return reco.events[kept], reco.jet_pt[kept, 0].astype(np.float64), reco.jet_btag[kept, 0]


def _pythia_single_jets(
    pt: np.ndarray, eta: np.ndarray, flavour: np.ndarray, config: PhysicsConfig, seed: int
):
    """One final-state pion per event (plus a b or c quark along it for flavoured jets) through the
    Pythia backend's detector layer; returns the events' jet pT and b-tags (one jet each)."""
    n = len(pt)
    heavy = flavour > 0
    per_event = 1 + heavy.astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(per_event)])
    event = np.repeat(np.arange(n), per_event)
    first = offsets[:-1]
    pid = np.full(offsets[-1], 211, dtype=np.int32)
    status = np.full(offsets[-1], 91, dtype=np.int32)
    quark = first[heavy] + 1
    pid[quark], status[quark] = flavour[heavy], -71
    p_pt = np.repeat(pt, per_event)
    pz = p_pt * np.sinh(np.repeat(eta, per_event))
    mass = np.where(pid == 211, 0.13957, 0.0)
    zeros = np.zeros(offsets[-1], dtype=np.int32)
    batch = FlatBatch(offsets, event, pid, status, zeros, zeros, zeros, p_pt, np.zeros_like(p_pt), pz,
                      np.sqrt(p_pt**2 + pz**2 + mass**2))
    reco = pythia.reconstruct(batch, config, np.random.default_rng(seed), max_jets=2)
    assert np.all(reco.jet_flavour[:, 0] == np.where(heavy, flavour, 0))
    return np.arange(n), reco.jet_pt[:, 0], reco.jet_btag[:, 0]


BACKENDS = {"fast": _fast_single_jets, "pythia": _pythia_single_jets}
# The Pythia backend's detector layer clusters with FastJet (optional extra 'pythia'); Pythia itself
# is not needed here.
needs_fastjet = needs("fastjet", "awkward", extra="pythia")
BACKEND_PARAMS = [pytest.param("fast"), pytest.param("pythia", marks=needs_fastjet)]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_backend_tag_rates_follow_the_shared_formula(backend):
    rng = np.random.default_rng(7)
    n = 6000
    flavour = np.repeat(np.array([5, 4, 0]), n // 3)
    pt = rng.uniform(30.0, 600.0, n)
    events, jet_pt, tags = BACKENDS[backend](pt, np.zeros(n), flavour, CLEAN, seed=1)
    assert len(events) > 0.99 * n
    for name, code in FLAVOURS.items():
        mine = flavour[events] == code
        efficiency = response.btag_efficiency(jet_pt[mine], np.full(mine.sum(), code))
        _assert_rate(tags[mine], efficiency)
        if name == "b":
            assert 0.55 < tags[mine].mean() < 0.75
        elif name == "light":
            assert tags[mine].mean() < 0.02


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("eta", [0.5, 2.0])
def test_backend_jet_resolution_follows_the_shared_formula(backend, eta):
    n = 4000
    pt = np.full(n, 100.0)
    _, jet_pt, _ = BACKENDS[backend](pt, np.full(n, eta), np.zeros(n, dtype=np.int64), CLEAN, seed=2)
    energy = np.array([100.0 * np.cosh(eta)])
    expected = response.jet_energy_resolution(energy, np.array([eta]), CLEAN)[0]
    ratio = jet_pt / 100.0
    assert ratio.mean() == pytest.approx(1.0, abs=4 * expected / np.sqrt(n))
    assert ratio.std() == pytest.approx(expected, rel=4 / np.sqrt(2 * n))


@needs_fastjet
def test_pythia_backend_lepton_identification_follows_the_config():
    # Isolated muons alone in their events: identified with lepton_efficiency_central (|eta| <= 1.5)
    # or lepton_efficiency_forward; an override through --set reaches this backend too.
    n = 3000
    eta = np.where(np.arange(n) % 2 == 0, 0.5, 2.0)
    pt = np.full(n, 50.0)
    pz = pt * np.sinh(eta)
    batch = FlatBatch(np.arange(n + 1), np.arange(n), np.full(n, 13, np.int32), np.ones(n, np.int32),
                      *(np.zeros(n, np.int32),) * 3, pt, np.zeros(n), pz, np.sqrt(pt**2 + pz**2 + 0.10566**2))
    for config in (CLEAN, CLEAN.with_overrides(lepton_efficiency_central=0.6, lepton_efficiency_forward=0.3)):
        reco = pythia.reconstruct(batch, config, np.random.default_rng(3), max_jets=2)
        found = reco.lepton_mask[:, 0]
        expected = response.lepton_identification_efficiency(eta, config)
        for region in (eta < 1.5, eta > 1.5):
            _assert_rate(found[region], expected[region])


def test_generated_b_jets_are_tagged_at_the_formula_rate():
    # hh -> 4b with no b-tag requirement: every jet matched to a Higgs daughter is a b jet.
    process = PROCESSES["hh_4b"]
    _, reco = process.simulate(np.random.default_rng(4), 3000, PhysicsConfig(), process.max_objects, 0.5,
                               Selection(min_jets=0, min_btags=0))
    row = np.arange(len(reco.events))[:, None]
    matched = reco.targets >= 0
    jets = np.maximum(reco.targets, 0)
    pt, tags = reco.jet_pt[row, jets][matched].astype(np.float64), reco.jet_btag[row, jets][matched]
    assert tags.size > 5000
    _assert_rate(tags, response.btag_efficiency_b(pt))
