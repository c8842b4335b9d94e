"""The tt + b bbar background's gluon splitting and the analytic-neutrino inputs of the generated files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from spanet_lite.physics.generator import PhysicsConfig, write_file
from spanet_lite.physics.generator.config import B_MASS
from spanet_lite.physics.generator.production import resonance, splitting_decay, splitting_masses
from spanet_lite.physics.kinematics import FourVector
from spanet_lite.physics.neutrino import analytic_features, solve_neutrino


def mass(v: FourVector) -> np.ndarray:
    return np.sqrt(np.maximum(v.e**2 - v.px**2 - v.py**2 - v.pz**2, 0.0))


def test_splitting_follows_one_plus_cos_squared_about_the_flight_direction():
    rng = np.random.default_rng(0)
    n = 200_000
    m = np.full(n, 20.0)
    parent = resonance(np.full(n, 300.0), np.full(n, 200.0), rng.normal(0, 1, n), m)
    b1, b2 = splitting_decay(rng, parent, m, 0.0, 0.0)
    total = b1 + b2
    assert np.allclose([total.e, total.px, total.pz], [parent.e, parent.px, parent.pz])
    assert np.allclose(mass(total), 20.0, rtol=1e-6)
    z = b1.e / parent.e  # energy share ~ (1 + beta cos)/2 with beta ~ 1: z^2 + (1 - z)^2
    density, _ = np.histogram(z, bins=5, range=(0, 1), density=True)
    expected = [1.5 * (c**2 + (1 - c) ** 2) + 0.02 for c in (0.1, 0.3, 0.5, 0.7, 0.9)]  # bin-averaged
    assert density == pytest.approx(expected, abs=0.04)


def test_splitting_along_the_beam_axis_is_well_defined():
    rng = np.random.default_rng(1)
    m = np.full(1000, 30.0)
    parent = FourVector(np.hypot(500.0, 30.0) * np.ones(1000), 0 * m, 0 * m, np.full(1000, 500.0))
    b1, b2 = splitting_decay(rng, parent, m, B_MASS, B_MASS)
    assert np.isfinite([b1.e, b1.px, b2.pz]).all()
    assert np.allclose(mass(b1), B_MASS, rtol=1e-5) and np.allclose(mass(b1 + b2), 30.0, rtol=1e-6)


def test_pair_mass_falls_as_a_power_law_from_threshold():
    config = PhysicsConfig()
    m = splitting_masses(np.random.default_rng(2), 400_000, config, np.float64)
    low, high = config.ttbb_mass_min, config.ttbb_mass_max
    assert m.min() >= low and m.max() <= high
    # dN/dm ~ m^-2: median 1 / (1/2 (1/low + 1/high)).
    assert np.median(m) == pytest.approx(2 / (1 / low + 1 / high), rel=0.01)
    flat = splitting_masses(np.random.default_rng(2), 400_000, config.with_overrides(ttbb_mass_power=1.0))
    assert np.median(flat) == pytest.approx(np.sqrt(low * high), rel=0.01)  # log-uniform


def test_bad_splitting_parameters_are_reported():
    problems = PhysicsConfig(ttbb_mass_min=50.0, ttbb_mass_max=20.0, ttbb_isr_fraction=1.5).problems()
    assert any("ttbb_mass_min" in p for p in problems) and any("ttbb_isr_fraction" in p for p in problems)


def test_analytic_inputs_hold_both_roots_smaller_first():
    pt, eta, phi, m = np.array([40.0, 60.0, 0.0]), np.array([0.5, -1.2, 0.0]), np.array([0.3, 2.0, 0.0]), 0.0
    met_x, met_y = np.array([30.0, -50.0, 10.0]), np.array([20.0, 15.0, 0.0])
    features = analytic_features(pt, eta, phi, m, met_x, met_y)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    solution = solve_neutrino(px[:2], py[:2], pz[:2], np.hypot(pt[:2], pz[:2]), met_x[:2], met_y[:2])
    assert features["nu_pz"][:2] == pytest.approx(solution.pz)  # the analytic baseline's root
    roots = np.sort(np.abs([solution.pz_plus, solution.pz_minus]), axis=0)
    assert np.abs(features["nu_pz_other"][:2]) == pytest.approx(roots[1])
    assert features["nu_pz"][2] == 0.0 and features["nu_pz_other"][2] == 0.0  # no lepton


def test_tth_file_has_half_signal_and_the_analytic_inputs(tmp_path):
    path = tmp_path / "tth.h5"
    write_file(path, "ttH_semilep", events=600, seed=3)
    with h5py.File(path, "r") as f:
        signal = f["CLASSIFICATIONS/EVENT/signal"][:]
        nu_pz, truth = f["INPUTS/Met/nu_pz"][:], f["REGRESSIONS/EVENT/neutrino_pz"][:]
    assert 0.4 < signal.mean() < 0.62
    assert np.median(np.abs(nu_pz - truth)) < np.median(np.abs(truth))  # informative
