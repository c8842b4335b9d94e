"""Parton-level production: hard-process kinematics, resonance decays and initial-state radiation.

Model (per event, vectorised over a block of events):

* ISR partons are drawn first (count ~ Poisson, pT ~ threshold + exponential, wide in eta);
  the hard system then recoils against them, so the event balances in the transverse plane.
* The heavy particles' transverse momenta follow Gamma distributions whose peak and mean
  resemble the 13 TeV spectra (top pT: mode ~60 GeV, mean ~105 GeV for ttbar; harder in ttH and
  HH); their rapidities are a common system rapidity plus a Gaussian spread.
* Masses are relativistic Breit-Wigner (top 172.5 / 1.32, W 80.4 / 2.085, H 125 / 0.0041 GeV);
  decays are isotropic two-body decays in the parent rest frame (spin correlations and the W
  helicity are neglected).
* W -> q q' gives u d' or c s' with equal probability (|V_ud|^2 ~ |V_cs|^2), so one jet in two
  W decays is a c jet (which matters for the b-tag mistag rate); W -> l nu gives e or mu.

All randomness comes from the ``numpy.random.Generator`` passed in.

Precision: the functions compute in the float type they are given (``dtype`` where they draw
from nothing else). The all-hadronic processes run in float32, the stored precision, because
numpy's vectorised float32 sin/cos/exp/log are several times faster than the float64 ones and
rounding errors of ~1e-7 are far below any modelled resolution. Processes with a leptonic W
run in float64: the analytic neutrino solution is ill-conditioned where its discriminant
nearly vanishes, and the stored truth must satisfy the W-mass constraint to better than
float32 arithmetic keeps it. Decays take the parent mass that was sampled, not one recomputed
from the four-vector (which would cancel digits in E^2 - p^2). ISR partons are always float32
(they only enter the detector model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from spanet_lite.physics.generator.config import (
    B_MASS,
    C_MASS,
    ELECTRON_MASS,
    HIGGS_MASS,
    HIGGS_WIDTH,
    MUON_MASS,
    TOP_MASS,
    W_MASS,
    PhysicsConfig,
)
from spanet_lite.physics.kinematics import (
    FourVector,
    azimuth,
    breit_wigner_mass,
    eta_from_pt_pz,
    two_body_momentum,
)

LIGHT, CHARM, BOTTOM = 0, 4, 5
F32 = NDArray[np.float32]
Real = NDArray[np.floating]
FloatType = type[np.float32] | type[np.float64]
f32 = np.float32
_PARTON_MASS = np.array([0.0, 0.0, 0.0, 0.0, C_MASS, B_MASS], dtype=np.float32)  # by flavour code


@dataclass
class PartonSet:
    """Partons that become jets, shape (n, P) each, in (pt, eta, phi, mass) form (GeV, radians).

    ``role`` is the target slot or -1 (radiation); ``valid`` is False for unused slots.
    """

    pt: NDArray[np.float64]
    eta: NDArray[np.float64]
    phi: NDArray[np.float64]
    mass: NDArray[np.float64]
    flavour: NDArray[np.int8]
    role: NDArray[np.int16]
    valid: NDArray[np.bool_]

    @staticmethod
    def stack(items: list[tuple[FourVector, int | NDArray[np.int8], int]]) -> PartonSet:
        """Stack (four-vector (n,), flavour, role) triples into an (n, P) set, all valid."""
        n = items[0][0].e.shape[0]
        px, py, pz = np.empty((3, n, len(items)), dtype=f32)
        flavour = np.empty((n, len(items)), dtype=np.int8)
        for column, (v, f, _) in enumerate(items):
            px[:, column], py[:, column], pz[:, column], flavour[:, column] = v.px, v.py, v.pz, f
        pt = np.sqrt(px * px + py * py)
        role = np.tile(np.array([r for _, _, r in items], dtype=np.int16), (n, 1))
        return PartonSet(
            pt,
            eta_from_pt_pz(pt, pz),
            azimuth(px, py, pt),
            _PARTON_MASS[flavour],  # the decay masses, exactly (sqrt(E^2 - p^2) would round)
            flavour,
            role,
            np.ones((n, len(items)), dtype=bool),
        )


@dataclass
class Lepton:
    """The charged lepton of a leptonic W decay (n,), its mass (exact, not from the float32
    four-vector), and its neutrino."""

    vector: FourVector
    is_electron: NDArray[np.bool_]
    neutrino: FourVector
    mass: Real


def _uniform_phi(rng: np.random.Generator, shape: int | tuple[int, ...], dtype: FloatType = f32) -> Real:
    return dtype(2 * np.pi) * rng.random(shape, dtype=dtype) - dtype(np.pi)


def sample_isr(rng: np.random.Generator, n: int, config: PhysicsConfig) -> PartonSet:
    """ISR partons, shape (n, isr_max); slots beyond each event's Poisson count are invalid (pT 0)."""
    k = config.isr_max
    count = np.minimum(rng.poisson(config.isr_mean, n), k)
    valid = np.arange(k)[None, :] < count[:, None]
    pt = f32(config.isr_pt_min) + f32(config.isr_pt_scale) * rng.standard_exponential((n, k), dtype=f32)
    eta = f32(config.isr_eta_sigma) * rng.standard_normal((n, k), dtype=f32)
    u = rng.random((n, k), dtype=f32)
    thresholds = np.array([config.isr_b_fraction, config.isr_b_fraction + config.isr_c_fraction], dtype=f32)
    # u < b: b; u < b + c: c (the count of thresholds <= u, i.e. searchsorted(side="right"))
    flavour = _ISR_FLAVOUR[(u >= thresholds[0]).view(np.int8) + (u >= thresholds[1]).view(np.int8)]
    phi = _uniform_phi(rng, (n, k))
    pt *= valid
    return PartonSet(pt, eta, phi, _PARTON_MASS[flavour], flavour, np.full((n, k), -1, dtype=np.int16), valid)


_ISR_FLAVOUR = np.array([BOTTOM, CHARM, LIGHT], dtype=np.int8)


def recoil(isr: PartonSet) -> tuple[F32, F32]:
    """Transverse momentum the hard system must carry so that the event balances (n,)."""
    px = (isr.pt * np.cos(isr.phi)).sum(axis=1)  # invalid slots have pt = 0
    py = (isr.pt * np.sin(isr.phi)).sum(axis=1)
    return -px, -py


def balanced_transverse(
    rng: np.random.Generator,
    pts: list[tuple[float | NDArray[np.float64], float | NDArray[np.float64]]],
    recoil_xy: tuple[Real, Real],
    dtype: FloatType = f32,
) -> list[tuple[Real, Real]]:
    """Transverse momenta of k heavy particles summing to the recoil.

    Each |pT| starts from Gamma(shape, scale) with a random direction; the imbalance is shared
    equally, so the spectra keep their shape and the particles come out back-to-back-ish.
    For two particles this is p1 = q + R/2, p2 = -q + R/2 with one Gamma-distributed q.
    """
    n = recoil_xy[0].shape[0]
    rx, ry = (np.asarray(r, dtype=dtype) for r in recoil_xy)
    if len(pts) == 2:
        shape, scale = pts[0]
        q = rng.gamma(shape, scale, n).astype(dtype)
        phi = _uniform_phi(rng, n, dtype)
        qx, qy = q * np.cos(phi), q * np.sin(phi)
        return [(qx + rx / 2, qy + ry / 2), (-qx + rx / 2, -qy + ry / 2)]
    vectors = []
    for shape, scale in pts:
        q = rng.gamma(shape, scale, n).astype(dtype)
        phi = _uniform_phi(rng, n, dtype)
        vectors.append((q * np.cos(phi), q * np.sin(phi)))
    excess_x = (sum(v[0] for v in vectors) - rx) / len(pts)
    excess_y = (sum(v[1] for v in vectors) - ry) / len(pts)
    return [(x - excess_x, y - excess_y) for x, y in vectors]


def rapidities(
    rng: np.random.Generator, n: int, k: int, system_sigma: float, spread_sigma: float, dtype: FloatType = f32
) -> Real:
    """Rapidities (n, k): a common system rapidity plus an independent spread per particle."""
    system = dtype(system_sigma) * rng.standard_normal((n, 1), dtype=dtype)
    return system + dtype(spread_sigma) * rng.standard_normal((n, k), dtype=dtype)


def resonance(px: Real, py: Real, y: Real, mass: Real) -> FourVector:
    """Four-momentum from (px, py), rapidity y and mass: E = mT cosh y, pz = mT sinh y."""
    mt = np.sqrt(px * px + py * py + mass * mass)
    exp_y = np.exp(y)
    half_mt_inverse = 0.5 * mt / exp_y
    half_mt = 0.5 * mt * exp_y
    return FourVector(half_mt + half_mt_inverse, px, py, half_mt - half_mt_inverse)


def isotropic_decay(
    rng: np.random.Generator, parent: FourVector, mass: Real, m1: float | Real, m2: float | Real
) -> tuple[FourVector, FourVector]:
    """Isotropic two-body decay of ``parent`` (of invariant mass ``mass``) into masses m1, m2.

    Daughter 1 gets momentum p* along an isotropic direction in the parent rest frame and is
    boosted to the lab; daughter 2 is parent - daughter 1 (momentum conservation), which
    saves the second boost. Computed in the float type of ``mass``.
    (``kinematics.two_body_decay`` is the general, float64 form.)
    """
    n, dtype = parent.e.shape[0], mass.dtype.type
    cos_theta = dtype(2.0) * rng.random(n, dtype=dtype) - dtype(1.0)
    phi = _uniform_phi(rng, n, dtype)
    m1 = np.asarray(m1, dtype=dtype)
    p = two_body_momentum(mass, m1, np.asarray(m2, dtype=dtype))
    p_sin = p * np.sqrt(np.maximum(dtype(1.0) - cos_theta * cos_theta, dtype(0.0)))
    return _boosted_pair(parent, mass, m1, p, p_sin * np.cos(phi), p_sin * np.sin(phi), p * cos_theta)


def _boosted_pair(
    parent: FourVector, mass: Real, m1: Real, p: Real, dx: Real, dy: Real, dz: Real
) -> tuple[FourVector, FourVector]:
    """Daughter 1 with rest-frame momentum (dx, dy, dz) of size p boosted to the lab, and the rest."""
    dtype = mass.dtype.type
    e1 = np.sqrt(p * p + m1 * m1)
    # Boost by beta = P / E: gamma = E / M, and (gamma - 1) / beta^2 = E^2 / (M (E + M)).
    gamma = parent.e / mass
    bp = (parent.px * dx + parent.py * dy + parent.pz * dz) / parent.e
    coefficient = gamma * gamma / (gamma + dtype(1.0)) * bp + gamma * e1
    inverse_e = coefficient / parent.e
    d1 = FourVector(
        gamma * (e1 + bp), dx + inverse_e * parent.px, dy + inverse_e * parent.py, dz + inverse_e * parent.pz
    )
    d2 = FourVector(parent.e - d1.e, parent.px - d1.px, parent.py - d1.py, parent.pz - d1.pz)
    return d1, d2


def splitting_decay(
    rng: np.random.Generator, parent: FourVector, mass: Real, m1: float, m2: float
) -> tuple[FourVector, FourVector]:
    """g* -> q qbar: the polar angle to the g*'s flight direction follows 1 + cos^2(theta*).

    For a fast g*, the quark's energy fraction is z = (1 + cos theta*) / 2, so this is the
    Altarelli-Parisi g -> q qbar splitting function z^2 + (1 - z)^2 (normalised on [-1, 1] as
    3/8 (1 + cos^2)), which favours asymmetric splittings over the isotropic decay of a scalar.
    cos theta* = F^-1(u) solves c^3 + 3c + 4 - 8u = 0 (Cardano; one real root).
    """
    n, dtype = parent.e.shape[0], mass.dtype.type
    q = dtype(4.0) - dtype(8.0) * rng.random(n, dtype=dtype)
    root = np.sqrt(q * q / dtype(4.0) + dtype(1.0))
    cos_theta = np.clip(np.cbrt(-q / 2 + root) + np.cbrt(-q / 2 - root), dtype(-1.0), dtype(1.0))
    phi = _uniform_phi(rng, n, dtype)
    sin_theta = np.sqrt(np.maximum(dtype(1.0) - cos_theta * cos_theta, dtype(0.0)))
    # Helicity frame: axis n along the parent momentum, e1 = n x z (x where n is along z), e2 = n x e1.
    size = np.sqrt(parent.px**2 + parent.py**2 + parent.pz**2)
    size = np.where(size > 0, size, dtype(1.0))
    nx, ny, nz = parent.px / size, parent.py / size, parent.pz / size
    transverse = np.sqrt(nx * nx + ny * ny)
    along_z = transverse < dtype(1e-9)
    t = np.where(along_z, dtype(1.0), transverse)
    e1x, e1y, e1z = np.where(along_z, dtype(1.0), ny / t), np.where(along_z, dtype(0.0), -nx / t), 0.0 * nz
    e2x, e2y, e2z = ny * e1z - nz * e1y, nz * e1x - nx * e1z, nx * e1y - ny * e1x
    a, b = sin_theta * np.cos(phi), sin_theta * np.sin(phi)
    m1_ = np.asarray(m1, dtype=dtype)
    p = two_body_momentum(mass, m1_, np.asarray(m2, dtype=dtype))
    dx = p * (cos_theta * nx + a * e1x + b * e2x)
    dy = p * (cos_theta * ny + a * e1y + b * e2y)
    dz = p * (cos_theta * nz + a * e1z + b * e2z)
    return _boosted_pair(parent, mass, m1_, p, dx, dy, dz)


def splitting_masses(rng: np.random.Generator, n: int, config: PhysicsConfig, dtype: FloatType = f32) -> Real:
    """m(b bbar) of a g* -> b bbar splitting: dN/dm proportional to m^-ttbb_mass_power on
    [ttbb_mass_min, ttbb_mass_max] (power 1: the collinear dm^2 / m^2 of the splitting)."""
    low, high, power = config.ttbb_mass_min, config.ttbb_mass_max, config.ttbb_mass_power
    u = rng.random(n).astype(dtype)
    if abs(power - 1.0) < 1e-9:
        return (low * (high / low) ** u).astype(dtype)
    a = 1.0 - power
    return ((low**a + u * (high**a - low**a)) ** (1.0 / a)).astype(dtype)


def top_masses(rng: np.random.Generator, n: int, config: PhysicsConfig, dtype: FloatType = f32) -> Real:
    window = config.bw_window * config.top_width
    low = max(TOP_MASS - window, W_MASS + B_MASS + 1.0)
    u = rng.random(n, dtype=dtype)
    return breit_wigner_mass(u, TOP_MASS, config.top_width, dtype(low), dtype(TOP_MASS + window))


def higgs_masses(rng: np.random.Generator, n: int, config: PhysicsConfig, dtype: FloatType = f32) -> Real:
    window = config.bw_window * HIGGS_WIDTH
    low, high = dtype(HIGGS_MASS - window), dtype(HIGGS_MASS + window)
    return breit_wigner_mass(rng.random(n, dtype=dtype), HIGGS_MASS, HIGGS_WIDTH, low, high)


def decay_top(
    rng: np.random.Generator, top: FourVector, top_mass: Real, config: PhysicsConfig
) -> tuple[FourVector, FourVector, Real]:
    """t -> b W with a Breit-Wigner W mass below m_t - m_b; returns (b, W, W mass)."""
    n, dtype = top.e.shape[0], top_mass.dtype.type
    window = config.bw_window * config.w_width
    high = np.minimum(dtype(W_MASS + window), top_mass - dtype(B_MASS + 0.5))
    u = rng.random(n, dtype=dtype)
    w_mass = breit_wigner_mass(u, W_MASS, config.w_width, dtype(max(W_MASS - window, 1.0)), high)
    b, w = isotropic_decay(rng, top, top_mass, B_MASS, w_mass)
    return b, w, w_mass


def decay_w_hadronic(
    rng: np.random.Generator, w: FourVector, w_mass: Real
) -> tuple[FourVector, FourVector, NDArray[np.int8], NDArray[np.int8]]:
    """W -> q q' (u d or c s, equal odds); returns (q1, q2, flavour1, flavour2), the c in q1 or q2.

    One uniform u decides both: u < 1/4 puts the c in q1, 1/4 <= u < 1/2 in q2, else u d.
    """
    n, dtype = w.e.shape[0], w_mass.dtype.type
    u = rng.random(n, dtype=f32)
    c1 = (u < f32(0.25)).view(np.int8)
    c2 = ((u >= f32(0.25)) & (u < f32(0.5))).view(np.int8)
    q1, q2 = isotropic_decay(rng, w, w_mass, c1 * dtype(C_MASS), c2 * dtype(C_MASS))
    return q1, q2, c1 * np.int8(CHARM), c2 * np.int8(CHARM)  # 0 is LIGHT


def decay_w_leptonic(rng: np.random.Generator, w: FourVector, w_mass: Real) -> Lepton:
    """W -> e nu or mu nu with equal odds (taus are not generated)."""
    n, dtype = w.e.shape[0], w_mass.dtype.type
    electron = rng.random(n, dtype=f32) < f32(0.5)
    mass = np.where(electron, dtype(ELECTRON_MASS), dtype(MUON_MASS))
    lepton, neutrino = isotropic_decay(rng, w, w_mass, mass, 0.0)
    return Lepton(lepton, electron, neutrino, mass)


def decay_to_bb(rng: np.random.Generator, parent: FourVector, mass: Real) -> tuple[FourVector, FourVector]:
    """H -> b bbar, isotropic (a scalar)."""
    return isotropic_decay(rng, parent, mass, B_MASS, B_MASS)
