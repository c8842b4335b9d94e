"""Detector model: radiation, jet clustering, resolution, acceptance, b-tagging, truth matching, MET.

Steps, vectorised over a block of n events with P partons each:

1. **FSR**: every parton emits, with probability ``fsr_probability``, one gluon out of its jet
   cone (dR log-uniform in [0.4, 1.5]) carrying a fraction z of its pT; the parton keeps its
   direction and loses z pT. The gluon becomes an extra jet (if hard enough) and the parton's
   own jet is softer, which is what costs matching efficiency in real samples. Collinear
   emissions stay inside the cone and change nothing but the jet mass (step 2).
2. **Shower mass**: each parton gets a mass ``pT * jet_mass_fraction * LogNormal`` (at least
   its own mass), so jets have a realistic, broad mass distribution.
3. **Clustering**: partons in decreasing pT; a parton within ``merge_dr`` (0.4) of an earlier
   jet seed joins the hardest such seed, else it seeds a new jet (a cone algorithm whose jets
   are anti-kT-like: hard partons keep their axis, soft ones are absorbed). Four-momenta add.
4. **Truth**: a jet belongs to its seed (its hardest parton). A decay parton that is not a
   seed is lost (it merged into another parton's jet); targets therefore stay unique.
5. **Resolution**: the jet four-momentum is scaled by 1 + sigma(E)/E * N(0, 1) with the
   Delphes ATLAS calorimeter formula; eta and phi are smeared by ``jet_angular_resolution``.
6. **Acceptance**: pT > 25 GeV, |eta| < 2.5; jets sorted by pT and truncated to the maximum.
7. **b-tagging** on the jet's truth flavour (b if any b parton in it, else c if any c, else
   light), Delphes ATLAS card efficiencies, pT in GeV:
   b: 0.80 tanh(0.003 pT) 30 / (1 + 0.086 pT); c: 0.20 tanh(0.02 pT) / (1 + 0.0034 pT);
   light: 0.002 + 7.3e-6 pT.
8. **Matching**: a decay parton's target is its jet if that jet survived step 6 and lies within
   ``match_dr`` (0.4) of the parton; else -1.
9. **Leptons**: pT and direction smeared; accepted with pT > 25 GeV, |eta| < 2.5 and no stored
   jet within ``lepton_isolation_dr`` (0.4) - a lepton inside a jet is not isolated.
10. **MET** = neutrino pT + Gaussian noise of sigma = met_resolution * sqrt(sum ET) per component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from spanet_lite.physics.generator.config import PhysicsConfig
from spanet_lite.physics.generator.production import BOTTOM, CHARM, LIGHT, Lepton, PartonSet
from spanet_lite.physics.kinematics import delta_phi, eta_from_pt_pz

F64 = NDArray[np.float64]


@dataclass
class Reconstructed:
    """Detector-level event block: jets (n, J) sorted by pT and padded, targets (n, R) in jet indices."""

    jet_pt: F64
    jet_eta: F64
    jet_phi: F64
    jet_mass: F64
    jet_btag: NDArray[np.bool_]
    jet_mask: NDArray[np.bool_]
    num_jets: NDArray[np.int64]  # accepted jets before truncation
    targets: NDArray[np.int64]
    lepton_pt: F64 | None = None
    lepton_eta: F64 | None = None
    lepton_phi: F64 | None = None
    lepton_mass: F64 | None = None
    lepton_accepted: NDArray[np.bool_] | None = None
    met_x: F64 | None = None
    met_y: F64 | None = None
    sum_et: F64 | None = None


def btag_efficiency(pt: F64, flavour: NDArray[np.int8]) -> F64:
    """Delphes ATLAS-card b-tag efficiency (pT in GeV) for truth flavour 5 (b), 4 (c), else light."""
    b = 0.80 * np.tanh(0.003 * pt) * 30.0 / (1.0 + 0.086 * pt)
    c = 0.20 * np.tanh(0.02 * pt) / (1.0 + 0.0034 * pt)
    light = 0.002 + 7.3e-6 * pt
    return np.where(flavour == BOTTOM, b, np.where(flavour == CHARM, c, light))


def energy_resolution(energy: F64, eta: F64, config: PhysicsConfig) -> F64:
    """Relative jet energy resolution sigma(E)/E from the Delphes ATLAS hadronic-calorimeter formula."""
    central = np.sqrt(
        (config.jer_constant_central * energy) ** 2
        + config.jer_stochastic_central**2 * energy
        + config.jer_noise_central**2
    )
    forward = np.sqrt((config.jer_constant_forward * energy) ** 2 + config.jer_stochastic_forward**2 * energy)
    sigma = np.where(np.abs(eta) <= config.jer_eta_boundary, central, forward)
    return sigma / np.maximum(energy, 1e-9)


def radiate(rng: np.random.Generator, hard: PartonSet, isr: PartonSet, config: PhysicsConfig) -> PartonSet:
    """All partons of the event: hard ones (softened by FSR), one FSR gluon slot each, ISR.

    Columns: [hard (P) | FSR gluons (P, invalid where no emission) | ISR (K)], built in one
    allocation per field.
    """
    n, p = hard.valid.shape
    k = isr.valid.shape[1]
    emit = hard.valid & (rng.random((n, p), dtype=np.float32) < config.fsr_probability)
    z = np.where(emit, rng.uniform(config.fsr_z_min, config.fsr_z_max, (n, p)), 0.0)
    log_lo, log_hi = np.log(config.fsr_dr_min), np.log(config.fsr_dr_max)
    dr = np.exp(np.float32(log_lo) + np.float32(log_hi - log_lo) * rng.random((n, p), dtype=np.float32))
    alpha = np.float32(2.0 * np.pi) * rng.random((n, p), dtype=np.float32)

    def block(dtype: type, fill: float | int = 0) -> NDArray:
        return np.full((n, 2 * p + k), fill, dtype=dtype)

    out = PartonSet(
        block(np.float64),
        block(np.float64),
        block(np.float64),
        block(np.float64),
        block(np.int8, LIGHT),
        block(np.int16, -1),
        block(np.bool_, False),
    )
    out.pt[:, :p] = hard.pt * (1.0 - z)  # the emitter keeps its direction and mass
    out.pt[:, p : 2 * p] = z * hard.pt
    out.pt[:, 2 * p :] = isr.pt
    out.eta[:, :p] = hard.eta
    out.eta[:, p : 2 * p] = hard.eta + dr * np.cos(alpha)
    out.eta[:, 2 * p :] = isr.eta
    out.phi[:, :p] = hard.phi
    out.phi[:, p : 2 * p] = hard.phi + dr * np.sin(alpha)
    out.phi[:, 2 * p :] = isr.phi
    out.mass[:, :p] = hard.mass
    out.mass[:, 2 * p :] = isr.mass
    out.flavour[:, :p] = hard.flavour
    out.flavour[:, 2 * p :] = isr.flavour
    out.role[:, :p] = hard.role
    out.valid[:, :p] = hard.valid
    out.valid[:, p : 2 * p] = emit
    out.valid[:, 2 * p :] = isr.valid
    return out


_HEAVINESS = np.array([0, 0, 0, 0, 1, 2], dtype=np.int8)  # flavour code -> light 0 < c 1 < b 2
_FLAVOUR_OF = np.array([LIGHT, CHARM, BOTTOM], dtype=np.int8)


def cluster(partons: PartonSet, rng: np.random.Generator, config: PhysicsConfig) -> PartonSet:
    """Cluster partons into jets (see module doc); returns jets (n, M) with ``valid`` = is a jet.

    A jet keeps its seed's role; its flavour is the heaviest among its partons; its
    four-momentum is the sum of its partons' (each with its shower mass).
    """
    n, m = partons.valid.shape
    pt = np.where(partons.valid, partons.pt, 0.0)
    spread = np.exp(np.float32(config.jet_mass_spread) * rng.standard_normal((n, m), dtype=np.float32))
    shower = pt * config.jet_mass_fraction * spread
    mass = np.maximum(partons.mass, shower)
    width = int(partons.valid.sum(axis=1).max())  # columns beyond it are empty in every event
    flat = _flat_order(-pt, width)
    pt, mass, eta, phi, valid, role, heaviness = (
        a.ravel()[flat]
        for a in (
            pt,
            mass,
            partons.eta,
            partons.phi,
            partons.valid,
            partons.role,
            _HEAVINESS[partons.flavour],
        )
    )
    m = width
    phi = phi - 2 * np.pi * np.floor((phi + np.pi) / (2 * np.pi))

    # A parton joins the hardest earlier parton within merge_dr that is still a jet seed.
    # Events are visited in decreasing parton count, so the events that have a parton in
    # column k are a prefix of the rows and every step works on contiguous slices.
    counts = valid.sum(axis=1)
    by_count = np.argsort(-counts, kind="stable")
    sorted_counts = counts[by_count]
    eta_s, phi_s = eta[by_count].astype(np.float32), phi[by_count].astype(np.float32)
    seed_s = valid[by_count]
    jet_s = np.broadcast_to(np.arange(m), (n, m)).copy()
    two_pi, r2 = np.float32(2 * np.pi), np.float32(config.merge_dr**2)
    for k in range(1, m):
        rows = int(np.count_nonzero(sorted_counts > k))
        if rows == 0:
            break
        de = eta_s[:rows, :k] - eta_s[:rows, k, None]
        dp = np.abs(phi_s[:rows, :k] - phi_s[:rows, k, None])
        dp = np.minimum(dp, two_pi - dp)
        candidates = (de * de + dp * dp < r2) & seed_s[:rows, :k]
        joins = np.flatnonzero(candidates.any(axis=1))
        if joins.size:
            jet_s[joins, k] = candidates[joins].argmax(axis=1)
            seed_s[joins, k] = False
    seed = np.empty_like(seed_s)
    seed[by_count] = seed_s
    jet_of = np.empty_like(jet_s)
    jet_of[by_count] = jet_s

    # Sum the joining partons into their jets; only merged jets need recomputing.
    jr, jc = np.nonzero(valid & ~seed)
    jets = PartonSet(pt, eta, phi, mass, _FLAVOUR_OF[heaviness], role, seed)
    if jr.size:
        tc = jet_of[jr, jc]
        flat = jr * m + tc
        receivers, inverse = np.unique(flat, return_inverse=True)
        rr, rc = receivers // m, receivers % m
        sums = [
            np.bincount(inverse, weights=c, minlength=receivers.size)
            for c in _cartesian(pt[jr, jc], eta[jr, jc], phi[jr, jc], mass[jr, jc])
        ]
        e, px, py, pz = (
            s + c for s, c in zip(sums, _cartesian(pt[rr, rc], eta[rr, rc], phi[rr, rc], mass[rr, rc]))
        )
        new_pt = np.hypot(px, py)
        jets.pt[rr, rc] = new_pt
        jets.eta[rr, rc] = eta_from_pt_pz(new_pt, pz)
        jets.phi[rr, rc] = np.arctan2(py, px)
        jets.mass[rr, rc] = np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))
        heavy = np.zeros(receivers.size, dtype=np.int8)
        np.maximum.at(heavy, inverse, heaviness[jr, jc])
        jets.flavour[rr, rc] = _FLAVOUR_OF[np.maximum(heavy, heaviness[rr, rc])]
    return jets


def _flat_order(key: F64, keep: int | None = None) -> NDArray[np.intp]:
    """Flat indices that sort each row of ``key`` ascending (first ``keep`` columns), shape (n, keep)."""
    n, m = key.shape
    order = np.argsort(key, axis=1, kind="stable")[:, :keep]
    return order + (np.arange(n) * m)[:, None]


def _cartesian(pt: F64, eta: F64, phi: F64, mass: F64) -> tuple[F64, F64, F64, F64]:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.sqrt(px * px + py * py + pz * pz + mass * mass), px, py, pz


def reconstruct(
    rng: np.random.Generator,
    hard: PartonSet,
    isr: PartonSet,
    num_roles: int,
    max_jets: int,
    config: PhysicsConfig,
    lepton: Lepton | None = None,
) -> Reconstructed:
    """Run the whole detector model on one block (see module doc).

    ``hard`` column r carries role r (or -1 where that event has no such target, e.g. background),
    so the truth direction of target r is column r.
    """
    truth_eta, truth_phi, truth_role = hard.eta, hard.phi, hard.role  # (n, P) before any radiation
    jets = cluster(radiate(rng, hard, isr, config), rng, config)
    seed = jets.valid
    n, m = seed.shape

    eta = np.where(seed, jets.eta, 0.0)
    exp_eta = np.exp(eta)
    energy = np.sqrt((jets.pt * 0.5 * (exp_eta + 1.0 / exp_eta)) ** 2 + jets.mass**2)  # pt cosh(eta)
    sigma = energy_resolution(energy, eta, config)
    scale = np.maximum(1.0 + sigma * rng.standard_normal((n, m)), 0.05)
    pt, mass = jets.pt * scale, jets.mass * scale
    eta = eta + config.jet_angular_resolution * rng.standard_normal((n, m))
    phi = delta_phi(jets.phi + config.jet_angular_resolution * rng.standard_normal((n, m)), 0.0)
    role, flavour = jets.role, jets.flavour

    accepted = seed & (pt > config.jet_pt_min) & (np.abs(eta) < config.jet_eta_max)
    flat = _flat_order(np.where(accepted, -pt, np.inf), max_jets)
    pt, eta, phi, mass, kept, role, flavour = (
        a.ravel()[flat] for a in (pt, eta, phi, mass, accepted, role, flavour)
    )
    if flat.shape[1] < max_jets:  # fewer partons than the stored maximum: pad
        pad = max_jets - flat.shape[1]
        pt, eta, phi, mass = (np.pad(a, ((0, 0), (0, pad))) for a in (pt, eta, phi, mass))
        kept = np.pad(kept, ((0, 0), (0, pad)))
        role = np.pad(role, ((0, 0), (0, pad)), constant_values=-1)
        flavour = np.pad(flavour, ((0, 0), (0, pad)))
    pt, eta, phi, mass = (np.where(kept, a, 0.0) for a in (pt, eta, phi, mass))
    btag = kept & (rng.random(kept.shape) < btag_efficiency(pt, flavour))

    # Each stored jet seeded by decay parton r is target r, if it lies within match_dr of it.
    targets = np.full((n, num_roles), -1, dtype=np.int64)
    events, slots = np.nonzero(kept & (role >= 0))
    targets[events, role[events, slots]] = slots
    index = np.maximum(targets, 0)
    jet_eta = np.take_along_axis(eta, index, axis=1)
    jet_phi = np.take_along_axis(phi, index, axis=1)
    d_eta = jet_eta - truth_eta[:, :num_roles]
    d_phi = delta_phi(jet_phi, truth_phi[:, :num_roles])
    near = d_eta * d_eta + d_phi * d_phi < config.match_dr**2
    targets = np.where(near & (truth_role[:, :num_roles] == np.arange(num_roles)), targets, -1)

    reco = Reconstructed(pt, eta, phi, mass, btag, kept, accepted.sum(axis=1), targets)
    sum_et = pt.sum(axis=1)
    if lepton is not None:
        lv = lepton.vector
        l_pt = lv.pt * (1.0 + config.lepton_resolution * rng.standard_normal(n))
        l_eta = lv.eta + config.lepton_angular_resolution * rng.standard_normal(n)
        l_phi = delta_phi(lv.phi + config.lepton_angular_resolution * rng.standard_normal(n), 0.0)
        reco.lepton_pt, reco.lepton_eta, reco.lepton_phi, reco.lepton_mass = l_pt, l_eta, l_phi, lv.mass
        d_eta = eta - l_eta[:, None]
        d_phi = delta_phi(phi, l_phi[:, None])
        isolated = ~(kept & (d_eta * d_eta + d_phi * d_phi < config.lepton_isolation_dr**2)).any(axis=1)
        reco.lepton_accepted = (
            (l_pt > config.lepton_pt_min) & (np.abs(l_eta) < config.lepton_eta_max) & isolated
        )
        sum_et = sum_et + l_pt
        sigma_met = config.met_resolution * np.sqrt(sum_et)
        reco.met_x = lepton.neutrino.px + sigma_met * rng.standard_normal(n)
        reco.met_y = lepton.neutrino.py + sigma_met * rng.standard_normal(n)
    reco.sum_et = sum_et
    return reco
