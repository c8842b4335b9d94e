"""Kinematics helpers against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.physics.kinematics import (
    FourVector,
    azimuth,
    boost,
    breit_wigner_mass,
    delta_phi,
    delta_r,
    invariant_mass,
    pseudorapidity,
    rapidity,
    to_cartesian,
    to_cylindrical,
    two_body_decay,
    two_body_momentum,
)


def test_cartesian_of_a_3_4_5_particle():
    # pt 3, eta 0, mass 4: E = sqrt(9 + 16) = 5.
    e, px, py, pz = to_cartesian(3.0, 0.0, 0.0, 4.0)
    assert (e, px, py, pz) == pytest.approx((5.0, 3.0, 0.0, 0.0))


def test_pseudorapidity_of_pt_3_pz_4_is_ln_3():
    # eta = asinh(4/3) = ln(4/3 + sqrt(1 + 16/9)) = ln(4/3 + 5/3) = ln 3.
    assert pseudorapidity(3.0, 0.0, 4.0) == pytest.approx(math.log(3.0))


def test_pseudorapidity_along_the_beam_and_at_rest():
    assert pseudorapidity(0.0, 0.0, 7.0) == np.inf
    assert pseudorapidity(0.0, 0.0, -7.0) == -np.inf
    assert pseudorapidity(0.0, 0.0, 0.0) == 0.0


def test_cylindrical_round_trip():
    pt, eta, phi, m = (
        np.array([10.0, 250.0]),
        np.array([-2.1, 0.3]),
        np.array([3.0, -1.0]),
        np.array([0.0, 80.4]),
    )
    back = to_cylindrical(*to_cartesian(pt, eta, phi, m))
    for got, want in zip(back, (pt, eta, phi, m)):
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_rapidity_equals_eta_for_massless():
    v = FourVector.from_pt_eta_phi_mass(20.0, 1.7, 0.2, 0.0)
    assert rapidity(v.e, v.pz) == pytest.approx(1.7)
    w = FourVector.from_pt_y_phi_mass(20.0, 1.7, 0.2, 5.0)
    assert w.rapidity == pytest.approx(1.7)
    assert w.mass == pytest.approx(5.0)


def test_invariant_mass_of_back_to_back_photons():
    a = FourVector(50.0, 50.0, 0.0, 0.0)
    b = FourVector(50.0, -50.0, 0.0, 0.0)
    assert invariant_mass(a, b) == pytest.approx(100.0)


def test_delta_phi_wraps_and_delta_r():
    assert delta_phi(3.0, -3.0) == pytest.approx(6.0 - 2 * math.pi)
    assert delta_phi(-3.0, 3.0) == pytest.approx(2 * math.pi - 6.0)
    assert delta_r(0.0, 0.0, 3.0, 4.0 - 2 * math.pi) == pytest.approx(math.hypot(3.0, 4.0 - 2 * math.pi))
    assert delta_r(1.0, 0.5, 4.0, 0.5) == pytest.approx(3.0)


def test_boost_of_a_particle_at_rest():
    # beta 0.6: gamma 1.25, so a unit mass at rest gets E 1.25 and pz gamma * beta = 0.75.
    v = boost(FourVector(1.0, 0.0, 0.0, 0.0), 0.0, 0.0, 0.6)
    assert (v.e, v.px, v.py, v.pz) == pytest.approx((1.25, 0.0, 0.0, 0.75))
    same = boost(FourVector(2.0, 1.0, 0.5, 0.3), 0.0, 0.0, 0.0)
    assert (same.e, same.px, same.py, same.pz) == pytest.approx((2.0, 1.0, 0.5, 0.3))


def test_two_body_momentum_by_hand():
    # M 10 -> 6 + 0: p* = (M^2 - m1^2) / 2M = 64 / 20.
    assert two_body_momentum(10.0, 6.0, 0.0) == pytest.approx(3.2)
    assert two_body_momentum(10.0, 6.0, 6.0) == 0.0  # below threshold


@settings(max_examples=30, deadline=None)
@given(
    pt=st.floats(0.0, 500.0),
    eta=st.floats(-3.0, 3.0),
    cos_theta=st.floats(-1.0, 1.0),
    phi=st.floats(-math.pi, math.pi),
)
def test_two_body_decay_conserves_four_momentum(pt, eta, cos_theta, phi):
    top = FourVector.from_pt_eta_phi_mass(pt, eta, 0.4, 172.5)
    b, w = two_body_decay(top, 4.8, 80.4, cos_theta, phi)
    total = b + w
    for got, want in zip((total.e, total.px, total.py, total.pz), (top.e, top.px, top.py, top.pz)):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-7)
    assert b.mass == pytest.approx(4.8, rel=1e-5)
    assert w.mass == pytest.approx(80.4, rel=1e-7)


def test_float32_arguments_keep_float32_and_python_numbers_adapt():
    m = np.array([80.4, 172.5], dtype=np.float32)
    assert two_body_momentum(m, 4.8, 0.0).dtype == np.float32
    assert two_body_momentum(m.astype(np.float64), 4.8, 0.0).dtype == np.float64
    assert two_body_momentum(m, np.float64(4.8), 0.0).dtype == np.float64  # any float64 array wins
    u = np.array([0.5], dtype=np.float32)
    low, high = math.sqrt(80.0**2 - 160.0), math.sqrt(80.0**2 + 160.0)  # symmetric in s: u 0.5 -> M
    assert breit_wigner_mass(u, 80.0, 2.0, low, high).dtype == np.float32
    assert breit_wigner_mass(u, 80.0, 2.0, low, high)[0] == pytest.approx(80.0, rel=1e-6)


def test_azimuth_on_the_axes_and_diagonals():
    px = np.array([1, 1, 0, -1, -1, -1, 0, 1, -1], dtype=np.float32)
    py = np.array([0, 1, 1, 1, 0, -1, -1, -1, -0.0], dtype=np.float32)
    want = np.array([0, 1, 2, 3, 4, -3, -2, -1, -4]) * math.pi / 4
    np.testing.assert_allclose(azimuth(px, py), want, atol=3e-7)
    assert azimuth(px, py).dtype == np.float32
    with pytest.raises(TypeError, match="float32"):
        azimuth(px.astype(np.float64), py.astype(np.float64))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=50),
    st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=50),
    st.sampled_from([1e-6, 1.0, 1e6]),
)
def test_azimuth_matches_arctan2_everywhere(xs, ys, scale):
    n = min(len(xs), len(ys))
    px = (np.array(xs[:n]) * scale).astype(np.float32)
    py = (np.array(ys[:n]) * scale).astype(np.float32)
    keep = np.hypot(px.astype(np.float64), py) > 1e-6 * scale  # pT = 0 has no azimuth
    got = azimuth(px[keep], py[keep]).astype(np.float64)
    want = np.arctan2(py[keep].astype(np.float64), px[keep])
    np.testing.assert_allclose(got, want, rtol=0, atol=5.5e-7)
    assert np.all(np.abs(got) <= math.pi)


def test_breit_wigner_inverse_cdf_by_hand():
    m, g = 80.0, 2.0
    low, high = math.sqrt(m * m - m * g), math.sqrt(m * m + m * g)  # theta in [-pi/4, pi/4]
    assert breit_wigner_mass(0.5, m, g, low, high) == pytest.approx(m)
    assert breit_wigner_mass(0.0, m, g, low, high) == pytest.approx(low)
    assert breit_wigner_mass(1.0, m, g, low, high) == pytest.approx(high)
    # u = 0.75 -> theta = pi/8 -> s = M^2 + M Gamma tan(pi/8) = M^2 + M Gamma (sqrt 2 - 1)
    assert breit_wigner_mass(0.75, m, g, low, high) == pytest.approx(
        math.sqrt(m * m + m * g * (math.sqrt(2) - 1))
    )
    assert breit_wigner_mass(0.3, m, 0.0, 0.0, 1e3) == m


def test_breit_wigner_half_of_a_wide_window_lies_within_one_width_in_s():
    rng = np.random.default_rng(0)
    m, g = 172.5, 1.32
    masses = breit_wigner_mass(rng.random(200_000), m, g, 100.0, 250.0)
    inside = np.abs(masses**2 - m * m) < m * g
    assert inside.mean() == pytest.approx(0.5, abs=0.01)
