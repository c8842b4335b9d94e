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
    two_body_decay,
)

LIGHT, CHARM, BOTTOM = 0, 4, 5


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
        e, px, py, pz = (
            np.stack([getattr(v, c) for v, _, _ in items], axis=1) for c in ("e", "px", "py", "pz")
        )
        pt = np.hypot(px, py)
        flavour = np.stack([np.broadcast_to(np.asarray(f, dtype=np.int8), (n,)) for _, f, _ in items], axis=1)
        role = np.tile(np.array([r for _, _, r in items], dtype=np.int16), (n, 1))
        return PartonSet(
            pt,
            eta_from_pt_pz(pt, pz),
            np.arctan2(py, px),
            mass_of(e, px, py, pz),
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
    """ISR partons, shape (n, isr_max); slots beyond each event's Poisson count are invalid."""
    k = config.isr_max
    count = np.minimum(rng.poisson(config.isr_mean, n), k)
    valid = np.arange(k)[None, :] < count[:, None]
    pt = config.isr_pt_min + rng.exponential(config.isr_pt_scale, (n, k))
    eta = rng.normal(0.0, config.isr_eta_sigma, (n, k))
    u = rng.random((n, k))
    flavour = np.where(
        u < config.isr_b_fraction,
        BOTTOM,
        np.where(u < config.isr_b_fraction + config.isr_c_fraction, CHARM, LIGHT),
    ).astype(np.int8)
    mass = np.where(flavour == BOTTOM, B_MASS, np.where(flavour == CHARM, C_MASS, 0.0))
    pt = np.where(valid, pt, 0.0)
    return PartonSet(
        pt, eta, _uniform_phi(rng, (n, k)), mass, flavour, np.full((n, k), -1, dtype=np.int16), valid
    )


def recoil(isr: PartonSet) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Transverse momentum the hard system must carry so that the event balances (n,)."""
    px = (isr.pt * np.cos(isr.phi)).sum(axis=1)  # invalid slots have pt = 0
    py = (isr.pt * np.sin(isr.phi)).sum(axis=1)
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
    return FourVector.from_pt_y_phi_mass(np.hypot(px, py), y, np.arctan2(py, px), mass)


def top_masses(rng: np.random.Generator, n: int, config: PhysicsConfig) -> NDArray[np.float64]:
    window = config.bw_window * config.top_width
    low = max(TOP_MASS - window, W_MASS + B_MASS + 1.0)
    return breit_wigner_mass(rng.random(n), TOP_MASS, config.top_width, low, TOP_MASS + window)


def higgs_masses(rng: np.random.Generator, n: int, config: PhysicsConfig) -> NDArray[np.float64]:
    window = config.bw_window * HIGGS_WIDTH
    return breit_wigner_mass(rng.random(n), HIGGS_MASS, HIGGS_WIDTH, HIGGS_MASS - window, HIGGS_MASS + window)


def _isotropic(rng: np.random.Generator, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return rng.uniform(-1.0, 1.0, n), _uniform_phi(rng, n)


def decay_top(
    rng: np.random.Generator, top: FourVector, config: PhysicsConfig
) -> tuple[FourVector, FourVector]:
    """t -> b W with a Breit-Wigner W mass below m_t - m_b; returns (b, W)."""
    n = top.e.shape[0]
    window = config.bw_window * config.w_width
    high = np.minimum(W_MASS + window, top.mass - B_MASS - 0.5)
    w_mass = breit_wigner_mass(rng.random(n), W_MASS, config.w_width, max(W_MASS - window, 1.0), high)
    b, w = two_body_decay(top, B_MASS, w_mass, *_isotropic(rng, n))
    return b, w


def decay_w_hadronic(
    rng: np.random.Generator, w: FourVector
) -> tuple[FourVector, FourVector, NDArray[np.int8], NDArray[np.int8]]:
    """W -> q q' (u d or c s, equal odds); returns (q1, q2, flavour1, flavour2), the c in q1 or q2."""
    n = w.e.shape[0]
    charm = rng.random(n) < 0.5
    charm_first = rng.random(n) < 0.5
    m1 = np.where(charm & charm_first, C_MASS, 0.0)
    m2 = np.where(charm & ~charm_first, C_MASS, 0.0)
    q1, q2 = two_body_decay(w, m1, m2, *_isotropic(rng, n))
    f1 = np.where(charm & charm_first, CHARM, LIGHT).astype(np.int8)
    f2 = np.where(charm & ~charm_first, CHARM, LIGHT).astype(np.int8)
    return q1, q2, f1, f2


def decay_w_leptonic(rng: np.random.Generator, w: FourVector) -> Lepton:
    """W -> e nu or mu nu with equal odds (taus are not generated)."""
    n = w.e.shape[0]
    electron = rng.random(n) < 0.5
    lepton, neutrino = two_body_decay(
        w, np.where(electron, ELECTRON_MASS, MUON_MASS), 0.0, *_isotropic(rng, n)
    )
    return Lepton(lepton, electron, neutrino)


def decay_to_bb(rng: np.random.Generator, parent: FourVector) -> tuple[FourVector, FourVector]:
    """H -> b bbar (or a g* -> b bbar system), isotropic."""
    return two_body_decay(parent, B_MASS, B_MASS, *_isotropic(rng, parent.e.shape[0]))
