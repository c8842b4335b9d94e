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
    breit_wigner_mass,
    eta_from_pt_pz,
    mass_of,
    two_body_momentum,
)

LIGHT, CHARM, BOTTOM = 0, 4, 5
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
        # float32 (the stored precision) from here on: the detector model works in float32.
        px, py, pz = np.empty((3, n, len(items)), dtype=np.float32)
        flavour = np.empty((n, len(items)), dtype=np.int8)
        for column, (v, f, _) in enumerate(items):  # assignment casts like astype(float32)
            px[:, column], py[:, column], pz[:, column], flavour[:, column] = v.px, v.py, v.pz, f
        pt = np.hypot(px, py)
        role = np.tile(np.array([r for _, _, r in items], dtype=np.int16), (n, 1))
        return PartonSet(
            pt,
            eta_from_pt_pz(pt, pz),
            np.arctan2(py, px),
            _PARTON_MASS[flavour],  # the decay masses, exactly (sqrt(E^2 - p^2) would round)
            flavour,
            role,
            np.ones((n, len(items)), dtype=bool),
        )

    def concat(self, other: PartonSet) -> PartonSet:
        names = ("pt", "eta", "phi", "mass", "flavour", "role", "valid")
        return PartonSet(*(np.concatenate([getattr(self, k), getattr(other, k)], axis=1) for k in names))


@dataclass
class Lepton:
    """The charged lepton of a leptonic W decay (n,) and its neutrino."""

    vector: FourVector
    is_electron: NDArray[np.bool_]
    neutrino: FourVector


def _uniform_phi(rng: np.random.Generator, shape: int | tuple[int, ...]) -> NDArray[np.float64]:
    return rng.uniform(-np.pi, np.pi, shape)


def sample_isr(rng: np.random.Generator, n: int, config: PhysicsConfig) -> PartonSet:
    """ISR partons, shape (n, isr_max); slots beyond each event's Poisson count are invalid (pT 0).

    Drawn in float32 (the detector model's precision), which halves the cost of the draws.
    """
    k = config.isr_max
    count = np.minimum(rng.poisson(config.isr_mean, n), k)
    valid = np.arange(k)[None, :] < count[:, None]
    f32 = np.float32
    pt = f32(config.isr_pt_min) + f32(config.isr_pt_scale) * rng.standard_exponential((n, k), dtype=f32)
    eta = f32(config.isr_eta_sigma) * rng.standard_normal((n, k), dtype=f32)
    u = rng.random((n, k), dtype=f32)
    thresholds = np.array([config.isr_b_fraction, config.isr_b_fraction + config.isr_c_fraction], dtype=f32)
    # u < b: b; u < b + c: c (the count of thresholds <= u, i.e. searchsorted(side="right"))
    flavour = _ISR_FLAVOUR[(u >= thresholds[0]).view(np.int8) + (u >= thresholds[1]).view(np.int8)]
    phi = f32(2 * np.pi) * rng.random((n, k), dtype=f32) - f32(np.pi)
    pt *= valid
    return PartonSet(pt, eta, phi, _PARTON_MASS[flavour], flavour, np.full((n, k), -1, dtype=np.int16), valid)


_ISR_FLAVOUR = np.array([BOTTOM, CHARM, LIGHT], dtype=np.int8)


def recoil(isr: PartonSet) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Transverse momentum the hard system must carry so that the event balances (n,)."""
    px = (isr.pt * np.cos(isr.phi)).sum(axis=1, dtype=np.float64)  # invalid slots have pt = 0
    py = (isr.pt * np.sin(isr.phi)).sum(axis=1, dtype=np.float64)
    return -px, -py


def balanced_transverse(
    rng: np.random.Generator,
    pts: list[tuple[float | NDArray[np.float64], float | NDArray[np.float64]]],
    recoil_xy: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Transverse momenta of k heavy particles summing to the recoil.

    Each |pT| starts from Gamma(shape, scale) with a random direction; the imbalance is shared
    equally, so the spectra keep their shape and the particles come out back-to-back-ish.
    For two particles this is p1 = q + R/2, p2 = -q + R/2 with one Gamma-distributed q.
    """
    n = recoil_xy[0].shape[0]
    rx, ry = recoil_xy
    if len(pts) == 2:
        shape, scale = pts[0]
        q = rng.gamma(shape, scale, n)
        phi = _uniform_phi(rng, n)
        qx, qy = q * np.cos(phi), q * np.sin(phi)
        return [(qx + rx / 2, qy + ry / 2), (-qx + rx / 2, -qy + ry / 2)]
    vectors = []
    for shape, scale in pts:
        q = rng.gamma(shape, scale, n)
        phi = _uniform_phi(rng, n)
        vectors.append((q * np.cos(phi), q * np.sin(phi)))
    excess_x = (sum(v[0] for v in vectors) - rx) / len(pts)
    excess_y = (sum(v[1] for v in vectors) - ry) / len(pts)
    return [(x - excess_x, y - excess_y) for x, y in vectors]


def rapidities(
    rng: np.random.Generator, n: int, k: int, system_sigma: float, spread_sigma: float
) -> NDArray[np.float64]:
    """Rapidities (n, k): a common system rapidity plus an independent spread per particle."""
    return rng.normal(0.0, system_sigma, (n, 1)) + rng.normal(0.0, spread_sigma, (n, k))


def resonance(
    px: NDArray[np.float64], py: NDArray[np.float64], y: NDArray[np.float64], mass: NDArray[np.float64]
) -> FourVector:
    """Four-momentum from (px, py), rapidity y and mass: E = mT cosh y, pz = mT sinh y."""
    mt = np.sqrt(px * px + py * py + mass * mass)
    exp_y = np.exp(y)
    half_mt_inverse = 0.5 * mt / exp_y
    half_mt = 0.5 * mt * exp_y
    return FourVector(half_mt + half_mt_inverse, px, py, half_mt - half_mt_inverse)


def isotropic_decay(
    rng: np.random.Generator,
    parent: FourVector,
    m1: float | NDArray[np.float64],
    m2: float | NDArray[np.float64],
) -> tuple[FourVector, FourVector]:
    """Isotropic two-body decay of ``parent`` into masses m1, m2 (what ``two_body_decay`` does).

    Daughter 1 gets momentum p* along an isotropic direction in the parent rest frame and is
    boosted to the lab; daughter 2 is parent - daughter 1 (momentum conservation), which
    saves the second boost.
    """
    n = parent.e.shape[0]
    cos_theta, phi = rng.uniform(-1.0, 1.0, n), _uniform_phi(rng, n)
    mass = mass_of(parent.e, parent.px, parent.py, parent.pz)
    p = two_body_momentum(mass, m1, m2)
    p_sin = p * np.sqrt(np.maximum(1.0 - cos_theta * cos_theta, 0.0))
    dx, dy, dz = p_sin * np.cos(phi), p_sin * np.sin(phi), p * cos_theta
    e1 = np.sqrt(p * p + np.square(m1))
    # Boost by beta = P / E: gamma = E / M, and (gamma - 1) / beta^2 = E^2 / (M (E + M)).
    gamma = parent.e / mass
    bp = (parent.px * dx + parent.py * dy + parent.pz * dz) / parent.e
    coefficient = gamma * gamma / (gamma + 1.0) * bp + gamma * e1
    inverse_e = coefficient / parent.e
    d1 = FourVector(
        gamma * (e1 + bp), dx + inverse_e * parent.px, dy + inverse_e * parent.py, dz + inverse_e * parent.pz
    )
    d2 = FourVector(parent.e - d1.e, parent.px - d1.px, parent.py - d1.py, parent.pz - d1.pz)
    return d1, d2


def top_masses(rng: np.random.Generator, n: int, config: PhysicsConfig) -> NDArray[np.float64]:
    window = config.bw_window * config.top_width
    low = max(TOP_MASS - window, W_MASS + B_MASS + 1.0)
    return breit_wigner_mass(rng.random(n), TOP_MASS, config.top_width, low, TOP_MASS + window)


def higgs_masses(rng: np.random.Generator, n: int, config: PhysicsConfig) -> NDArray[np.float64]:
    window = config.bw_window * HIGGS_WIDTH
    return breit_wigner_mass(rng.random(n), HIGGS_MASS, HIGGS_WIDTH, HIGGS_MASS - window, HIGGS_MASS + window)


def decay_top(
    rng: np.random.Generator, top: FourVector, config: PhysicsConfig
) -> tuple[FourVector, FourVector]:
    """t -> b W with a Breit-Wigner W mass below m_t - m_b; returns (b, W)."""
    n = top.e.shape[0]
    window = config.bw_window * config.w_width
    high = np.minimum(W_MASS + window, top.mass - B_MASS - 0.5)
    w_mass = breit_wigner_mass(rng.random(n), W_MASS, config.w_width, max(W_MASS - window, 1.0), high)
    return isotropic_decay(rng, top, B_MASS, w_mass)


def decay_w_hadronic(
    rng: np.random.Generator, w: FourVector
) -> tuple[FourVector, FourVector, NDArray[np.int8], NDArray[np.int8]]:
    """W -> q q' (u d or c s, equal odds); returns (q1, q2, flavour1, flavour2), the c in q1 or q2."""
    n = w.e.shape[0]
    charm = rng.random(n) < 0.5
    charm_first = rng.random(n) < 0.5
    m1 = np.where(charm & charm_first, C_MASS, 0.0)
    m2 = np.where(charm & ~charm_first, C_MASS, 0.0)
    q1, q2 = isotropic_decay(rng, w, m1, m2)
    f1 = np.where(charm & charm_first, CHARM, LIGHT).astype(np.int8)
    f2 = np.where(charm & ~charm_first, CHARM, LIGHT).astype(np.int8)
    return q1, q2, f1, f2


def decay_w_leptonic(rng: np.random.Generator, w: FourVector) -> Lepton:
    """W -> e nu or mu nu with equal odds (taus are not generated)."""
    n = w.e.shape[0]
    electron = rng.random(n) < 0.5
    lepton, neutrino = isotropic_decay(rng, w, np.where(electron, ELECTRON_MASS, MUON_MASS), 0.0)
    return Lepton(lepton, electron, neutrino)


def decay_to_bb(rng: np.random.Generator, parent: FourVector) -> tuple[FourVector, FourVector]:
    """H -> b bbar (or a g* -> b bbar system), isotropic."""
    return isotropic_decay(rng, parent, B_MASS, B_MASS)
