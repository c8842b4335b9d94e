"""The analytic W-mass neutrino solution: hand-computed roots, degenerate cases, the pT fix, torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.physics.kinematics import FourVector, invariant_mass, to_cartesian, two_body_decay
from spanet_lite.physics.neutrino import analytic_features, choose_root, solve_neutrino

# A massless lepton (px, py, pz, E) = (3, 0, 4, 5) is used throughout: a = E^2 - pz^2 = 9.
LEPTON = (3.0, 0.0, 4.0, 5.0)


def test_hand_computed_roots():
    # MET (0, 12), m_W^2 = 90: A = 45, mu = 45, D = 45^2 - 9 * 144 = 729, roots (180 +- 5 * 27) / 9.
    solution = solve_neutrino(*LEPTON, 0.0, 12.0, w_mass=math.sqrt(90.0))
    plus, minus = solution.pz_plus, solution.pz_minus
    assert (plus, minus) == pytest.approx((35.0, 5.0))
    assert not solution.is_complex
    assert (solution.pz, solution.pz_other) == pytest.approx((5.0, 35.0))  # the smaller |pz| first
    # both roots really give m_W: nu (0, 12, 35) has E 37 and 2 (5 * 37 - 4 * 35) = 90
    for root in (plus, minus):
        nu = FourVector(math.hypot(12.0, root), 0.0, 12.0, root)
        assert invariant_mass(FourVector(5.0, 3.0, 0.0, 4.0), nu) == pytest.approx(math.sqrt(90.0))


def test_choice_rules():
    kwargs = {"w_mass": math.sqrt(90.0)}
    assert solve_neutrino(*LEPTON, 0.0, 12.0, rule="larger", **kwargs).pz == pytest.approx(35.0)
    assert solve_neutrino(*LEPTON, 0.0, 12.0, rule="plus", **kwargs).pz == pytest.approx(35.0)
    assert solve_neutrino(*LEPTON, 0.0, 12.0, rule="minus", **kwargs).pz == pytest.approx(5.0)
    assert choose_root(np.array([-3.0, 1.0]), np.array([2.0, -4.0])).tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match="rule"):
        solve_neutrino(*LEPTON, 0.0, 12.0, rule="closest")


def test_discriminant_exactly_zero_gives_one_double_root():
    # MET (0, 12), m_W^2 = 72: A = 36 = sqrt(a) |MET|, so D = 0 and pz = mu pz_l / a = 16.
    solution = solve_neutrino(*LEPTON, 0.0, 12.0, w_mass=math.sqrt(72.0))
    assert solution.pz_plus == pytest.approx(16.0)
    assert solution.pz_minus == pytest.approx(16.0)
    assert not solution.is_complex


def test_lepton_in_the_transverse_plane_at_the_tolerated_zero_discriminant():
    # Lepton (3, 0, ~0, 3), MET (0, 12), m_W^2 just below 72: D ~ -7e-10, inside the tolerance,
    # so it counts as 0 and the double root is pz = mu pz_l / a ~ 0. The cancellation-free form
    # q = mu pz_l + E sqrt(D) is ~0 too, and c / q must not be taken (it overflowed for tiny pz_l).
    w_mass = math.sqrt(72.0 - 2e-11)
    for lepton_pz in (1e-300, 1e-320, 0.0):
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            solution = solve_neutrino(3.0, 0.0, lepton_pz, 3.0, 0.0, 12.0, w_mass=w_mass)
        assert not solution.is_complex
        assert abs(solution.pz_plus) < 1e-9 and abs(solution.pz_minus) < 1e-9


def test_negative_discriminant_scales_the_neutrino_pt():
    # MET (0, 24), m_W^2 = 72: D = 36^2 - 9 * 576 < 0; k = A / (sqrt(a) P - B) = 36 / 72 = 1/2,
    # so the neutrino becomes (0, 12, 16), the D = 0 solution above, and m(l nu) = m_W exactly.
    solution = solve_neutrino(*LEPTON, 0.0, 24.0, w_mass=math.sqrt(72.0))
    assert solution.is_complex
    assert (solution.px, solution.py, solution.pz) == pytest.approx((0.0, 12.0, 16.0))
    nu = FourVector(20.0, 0.0, 12.0, 16.0)
    assert invariant_mass(FourVector(5.0, 3.0, 0.0, 4.0), nu) == pytest.approx(math.sqrt(72.0))


def test_zero_neutrino_pt():
    # MET 0: D = A^2, roots (45 * 4 +- 5 * 45) / 9 = 45 and -5; the smaller |pz| is -5.
    solution = solve_neutrino(*LEPTON, 0.0, 0.0, w_mass=math.sqrt(90.0))
    assert (solution.pz_plus, solution.pz_minus) == pytest.approx((45.0, -5.0))
    assert solution.pz == pytest.approx(-5.0)
    assert not solution.is_complex


def test_massless_lepton_along_the_beam_makes_the_equation_linear():
    # lepton (0, 0, 5, 5): a = 0, pz = (E^2 P^2 - mu^2) / (2 mu pz_l) = (3600 - 2025) / 450 = 3.5
    solution = solve_neutrino(0.0, 0.0, 5.0, 5.0, 0.0, 12.0, w_mass=math.sqrt(90.0))
    assert solution.pz_plus == pytest.approx(3.5)
    assert solution.pz_minus == pytest.approx(3.5)
    assert solution.eta == pytest.approx(math.asinh(3.5 / 12.0))


def test_lepton_mass_enters_the_constraint():
    # A lepton of mass 10 at rest (pT = 0), MET (0, 12), m_W^2 = 360: A = 130, a = 100,
    # D = 130^2 - 100 * 144 = 2500, roots +- E sqrt(D) / a = +-5; nu (0, 12, 5) has E 13 and
    # m^2 = 100 + 2 * 10 * 13 = 360.
    solution = solve_neutrino(0.0, 0.0, 0.0, 10.0, 0.0, 12.0, w_mass=math.sqrt(360.0))
    assert sorted([float(solution.pz_plus), float(solution.pz_minus)]) == pytest.approx([-5.0, 5.0])


def test_neutrino_eta_along_the_beam():
    solution = solve_neutrino(*LEPTON, 0.0, 0.0, w_mass=math.sqrt(90.0))
    assert solution.eta == -np.inf


@settings(max_examples=50, deadline=None)
@given(
    pt=st.floats(0.0, 400.0),
    eta=st.floats(-2.5, 2.5),
    cos_theta=st.floats(-0.999, 0.999),
    phi=st.floats(-math.pi, math.pi),
    electron=st.booleans(),
)
def test_exact_met_and_on_shell_w_reproduce_the_true_pz(pt, eta, cos_theta, phi, electron):
    w = FourVector.from_pt_eta_phi_mass(pt, eta, 1.0, 80.4)
    lepton, nu = two_body_decay(w, 0.000511 if electron else 0.105658, 0.0, cos_theta, phi)
    solution = solve_neutrino(lepton.px, lepton.py, lepton.pz, lepton.e, nu.px, nu.py)
    assert not solution.is_complex
    closest = min(abs(solution.pz_plus - nu.pz), abs(solution.pz_minus - nu.pz))
    assert closest <= 1e-3 * max(abs(nu.pz), 1.0)  # near D = 0 roots carry sqrt(eps) rounding


def test_vectorised_over_arrays_and_torch_agrees():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    n = 1000
    lepton = FourVector.from_pt_eta_phi_mass(
        rng.uniform(25, 200, n), rng.normal(0, 1, n), rng.uniform(-3, 3, n), 0.105658
    )
    met_x, met_y = rng.normal(0, 60, n), rng.normal(0, 60, n)
    args = (lepton.px, lepton.py, lepton.pz, lepton.e, met_x, met_y)
    numpy_solution = solve_neutrino(*args)
    torch_solution = solve_neutrino(*(torch.tensor(a) for a in args))
    assert numpy_solution.pz.shape == (n,)
    assert 0 < numpy_solution.is_complex.mean() < 1
    np.testing.assert_allclose(torch_solution.pz.numpy(), numpy_solution.pz, rtol=1e-10, atol=1e-9)
    np.testing.assert_array_equal(torch_solution.is_complex.numpy(), numpy_solution.is_complex)
    # every solution, fixed or not, satisfies the W-mass constraint
    nu = FourVector(
        np.sqrt(numpy_solution.px**2 + numpy_solution.py**2 + numpy_solution.pz**2),
        numpy_solution.px,
        numpy_solution.py,
        numpy_solution.pz,
    )
    np.testing.assert_allclose(invariant_mass(lepton, nu), 80.4, rtol=1e-6)


def test_analytic_features_are_the_smaller_root_then_the_other_exactly():
    # Random leptons (some at pT 0: no lepton, some at eta 0: pz 0) and MET; the features are
    # solve_neutrino's roots, unchanged, with the smaller |pz| first and 0 without a lepton.
    rng = np.random.default_rng(3)
    n = 5000
    pt, eta = rng.uniform(0, 200, n), rng.normal(0, 1.5, n)
    pt[:50], eta[50:100] = 0.0, 0.0
    phi, mass = rng.uniform(-np.pi, np.pi, n), rng.choice([0.000511, 0.105658], n)
    met_x, met_y = rng.normal(0, 60, n), rng.normal(0, 60, n)
    features = analytic_features(pt, eta, phi, mass, met_x, met_y)

    e, px, py, pz = to_cartesian(pt, eta, phi, mass)
    with np.errstate(invalid="ignore", divide="ignore"):
        solution = solve_neutrino(px, py, pz, e, met_x, met_y)
    roots = np.stack([solution.pz_plus, solution.pz_minus])
    lepton = pt > 0
    nu_pz, other = features["nu_pz"][lepton], features["nu_pz_other"][lepton]
    assert np.all(np.abs(nu_pz) <= np.abs(other))
    np.testing.assert_array_equal(np.sort([nu_pz, other], axis=0), np.sort(roots[:, lepton], axis=0))
    assert not features["nu_pz"][~lepton].any() and not features["nu_pz_other"][~lepton].any()
