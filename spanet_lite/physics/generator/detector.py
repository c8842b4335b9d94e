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
5. **Response and resolution**: the jet four-momentum is scaled by
   response * max(1 + sigma(E)/E * N(0, 1), 0.05) with the Delphes ATLAS calorimeter formula
   for sigma (:mod:`spanet_lite.physics.detector_response`, evaluated in float32 from E^2);
   response is ``jet_response_b`` (0.95) for b-flavoured jets, ``jet_response_light`` (0.985)
   otherwise, and b jets add ``jet_response_spread_b`` (0.15) to sigma/E in quadrature (one
   normal draw per jet either way). eta and phi are smeared by ``jet_angular_resolution``, and
   a fraction of the jets (``jet_axis_tail_b`` 6 %, ``jet_axis_tail_light`` 2 %) has its axis
   moved by dR log-uniform in [0.2, 0.8] (radiation that pulls the axis; in the Pythia backend
   it is why partons miss their jet). These numbers are tuned to the Pythia backend.
6. **Acceptance**: pT > 25 GeV, |eta| < 2.5; jets sorted by pT and truncated to the maximum.
7. **b-tagging** on the jet's truth flavour (b if any b parton in it, else c if any c, else
   light), Delphes ATLAS card efficiencies vs pT
   (:func:`spanet_lite.physics.detector_response.btag_efficiency`).
8. **Matching**: a decay parton's target is its jet if that jet survived step 6 and lies within
   ``match_dr`` (0.4) of the parton; else -1.
9. **Leptons**: pT and direction smeared; accepted with pT > 25 GeV, |eta| < 2.5, with the
   Delphes ATLAS identification efficiency (0.95 for |eta| <= 1.5, 0.85 beyond; in
   :mod:`~spanet_lite.physics.detector_response`) times an
   isolation efficiency (0.78, tuned to the Pythia backend's relative isolation), and with no
   stored jet within ``lepton_isolation_dr`` (0.4) - a lepton inside a jet is not isolated.
10. **MET** = neutrino pT + Gaussian noise of sigma = met_resolution * sqrt(sum ET) per component.

Speed (the generator must make >= 50k selected all-hadronic ttbar events per second on one core):

* The selection runs *inside* :func:`reconstruct`, each cut as soon as its quantity is final -
  lepton pT/eta before any jet work, the jet count right after smearing, a b-tag count over all
  accepted jets before the pT sort (a necessary condition) and the exact one over the stored
  jets after it, lepton isolation last - and later steps run on the survivors only. Events get
  independent random numbers either way, so the selected sample has the same distribution as
  if every step ran on every event.
* Partons are packed as one (4, n, m) float32 array (pT, eta, phi, mass) plus one int16 code
  (role and flavour), so the pT ordering is one gather; clustering runs on rows sorted by
  parton count so that column k's merging step touches a contiguous prefix of rows.
* After clustering the jets are a flat list (no padded slots); only accepted jets of events
  that passed the jet-count cut are sorted into the padded (events, max_jets) layout.
* float32 throughout the detector model (the stored precision); four-momentum sums of merged
  partons are done in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from spanet_lite.physics.detector_response import (
    btag_efficiency,
    jet_energy_resolution_from_e2,
    jet_energy_scale,
    lepton_identification_efficiency,
)
from spanet_lite.physics.generator.config import PhysicsConfig, Selection
from spanet_lite.physics.generator.production import BOTTOM, CHARM, LIGHT, Lepton, PartonSet
from spanet_lite.physics.kinematics import delta_phi, eta_from_pt_pz

F64 = NDArray[np.float64]


@dataclass
class Reconstructed:
    """Selected events of a block: jets (s, J) sorted by pT and padded, targets (s, R) in jet indices.

    ``events`` is each row's index in the simulated block (ascending).
    """

    jet_pt: F64
    jet_eta: F64
    jet_phi: F64
    jet_mass: F64
    jet_btag: NDArray[np.bool_]
    jet_mask: NDArray[np.bool_]
    num_jets: NDArray[np.int64]  # accepted jets before truncation
    targets: NDArray[np.int64]
    events: NDArray[np.intp]
    lepton_pt: F64 | None = None
    lepton_eta: F64 | None = None
    lepton_phi: F64 | None = None
    lepton_mass: F64 | None = None
    lepton_accepted: NDArray[np.bool_] | None = None
    met_x: F64 | None = None
    met_y: F64 | None = None
    sum_et: F64 | None = None

    def subset(self, rows: NDArray[np.intp]) -> Reconstructed:
        """The same quantities for the given rows only."""
        return Reconstructed(**{k: None if v is None else v[rows] for k, v in vars(self).items()})


def _pick(condition: NDArray[np.bool_], if_false: float, if_true: float) -> NDArray[np.float32]:
    """``np.where(condition, if_true, if_false)`` in float32, as a gather from a 2-entry table:
    several times cheaper than ``where`` on a mask without a pattern (branch mispredictions)."""
    return np.take(np.array([if_false, if_true], dtype=np.float32), condition.view(np.int8))


def _wrap_phi(phi: NDArray[np.floating]) -> NDArray[np.floating]:
    """Wrap angles that are at most one turn outside [-pi, pi) back into it (cheaper than floor).

    Works in place on a contiguous ``phi`` (others are copied first) and returns it; only the
    few angles that wrap are written.
    """
    phi = np.ascontiguousarray(phi)
    flat, two_pi = phi.reshape(-1), phi.dtype.type(2 * np.pi)
    flat[np.flatnonzero(flat >= np.pi)] -= two_pi
    flat[np.flatnonzero(flat < -np.pi)] += two_pi
    return phi


_HEAVINESS = np.array([0, 0, 0, 0, 1, 2], dtype=np.int16)  # flavour code -> light 0 < c 1 < b 2
_FLAVOUR_OF = np.array([LIGHT, CHARM, BOTTOM], dtype=np.int8)


@dataclass
class Partons:
    """All partons of a block in the packed layout the clustering gathers from.

    ``kin`` (4, n, m): pT, eta, phi, mass (GeV, radians) - one array, so reordering the columns
    is a single ``take``; ``code`` (n, m) int16: (role + 1) * 4 + heaviness (light 0, c 1, b 2),
    again so that one gather moves both; ``valid`` (n, m). Invalid slots have pT 0.
    """

    kin: NDArray[np.float32]
    code: NDArray[np.int16]
    valid: NDArray[np.bool_]


def radiate(rng: np.random.Generator, hard: PartonSet, isr: PartonSet, config: PhysicsConfig) -> Partons:
    """All partons of the event: hard ones (softened by FSR), one FSR gluon slot each, ISR.

    Columns: [hard (P) | FSR gluons (P, invalid and pT 0 where no emission) | ISR (K)]. Every
    invalid slot has pT 0, so sorting by decreasing pT puts it last.
    """
    n, p = hard.valid.shape
    k = isr.valid.shape[1]
    f32 = np.float32
    emit = hard.valid & (rng.random((n, p), dtype=f32) < config.fsr_probability)
    z = f32(config.fsr_z_min) + f32(config.fsr_z_max - config.fsr_z_min) * rng.random((n, p), dtype=f32)
    z *= emit
    log_lo, log_hi = np.log(config.fsr_dr_min), np.log(config.fsr_dr_max)
    dr = np.exp(f32(log_lo) + f32(log_hi - log_lo) * rng.random((n, p), dtype=f32))
    alpha = f32(2.0 * np.pi) * rng.random((n, p), dtype=f32)

    kin = np.empty((4, n, 2 * p + k), dtype=f32)
    pt, eta, phi, mass = kin
    hard_pt = np.where(hard.valid, hard.pt, f32(0.0))
    np.multiply(hard_pt, f32(1.0) - z, out=pt[:, :p])  # the emitter keeps its direction and mass
    np.multiply(hard_pt, z, out=pt[:, p : 2 * p])
    pt[:, 2 * p :] = isr.pt  # 0 in empty slots
    eta[:, :p] = hard.eta
    np.add(hard.eta, dr * np.cos(alpha), out=eta[:, p : 2 * p])
    eta[:, 2 * p :] = isr.eta
    phi[:, :p] = hard.phi
    gluon_phi = np.multiply(dr, np.sin(alpha), out=alpha)
    np.add(hard.phi, gluon_phi, out=gluon_phi)
    phi[:, p : 2 * p] = _wrap_phi(gluon_phi)  # |dr| <= 1.5: one wrap at most
    phi[:, 2 * p :] = isr.phi
    mass[:, :p] = hard.mass
    mass[:, p : 2 * p] = 0
    mass[:, 2 * p :] = isr.mass
    code = np.zeros((n, 2 * p + k), dtype=np.int16)  # role -1, light
    code[:, :p] = (hard.role + 1) * 4 + _HEAVINESS[hard.flavour]
    code[:, 2 * p :] = _HEAVINESS[isr.flavour]
    valid = np.concatenate([hard.valid, emit, isr.valid], axis=1)
    return Partons(kin, code, valid)


@dataclass
class Jets:
    """Clustered jets of a block, one row per event, rows in ``events`` order (not block order).

    Columns are partons in decreasing pT; ``seed`` marks the columns that are jets (a jet's
    four-momentum ``kin`` (pT, eta, phi, mass), ``code`` (role and heaviness, as in
    :class:`Partons`) sit in its seed's column; other columns are spent).
    """

    events: NDArray[np.intp]  # block index of each row
    kin: F64
    code: NDArray[np.int16]
    seed: NDArray[np.bool_]


def cluster(partons: Partons, rng: np.random.Generator, config: PhysicsConfig) -> Jets:
    """Cluster partons into jets (see module doc).

    A jet keeps its seed's role; its flavour is the heaviest among its partons; its
    four-momentum is the sum of its partons' (each with its shower mass).

    The rows come out sorted by decreasing parton count (``Jets.events`` maps them back), so
    that the events having a parton in column k are a prefix of the rows and every step of the
    sequential merging works on contiguous slices; one gather does both orderings.
    """
    n, m = partons.valid.shape
    counts = np.count_nonzero(partons.valid, axis=1)
    # Stable sort by decreasing count; small unsigned keys take numpy's radix sort.
    by_count = np.argsort((m - counts).astype(np.uint8 if m < 256 else np.int64), kind="stable")
    sorted_counts = counts[by_count]
    width = int(sorted_counts[0]) if n else 0  # columns beyond it are empty in every event
    # Ties are only between empty slots (pT 0), whose order does not matter: no stable sort needed.
    key = np.take(partons.kin[0], by_count, axis=0)
    np.negative(key, out=key)
    order = np.argsort(key, axis=1)[:, :width]
    flat = order + (by_count * m)[:, None]
    kin = np.take(partons.kin.reshape(4, n * m), flat, axis=1)
    code = np.take(partons.code, flat)
    pt, eta, phi, mass = kin
    valid = np.arange(width) < sorted_counts[:, None]
    spread = rng.standard_normal((n, width), dtype=np.float32)
    spread *= np.float32(config.jet_mass_spread)
    np.exp(spread, out=spread)
    spread *= pt
    spread *= np.float32(config.jet_mass_fraction)
    np.maximum(mass, spread, out=mass)

    # A parton joins the hardest earlier parton within merge_dr that is still a jet seed.
    # Column k is tested against columns < k of the rows that have a parton k, on transposed
    # (column-major) copies so that each slab op runs over long contiguous rows. dR < merge_dr
    # is evaluated on the whole slab: a few fused passes are cheaper than gathering the pairs
    # that pass a |d_eta| < merge_dr pre-selection. That pre-selection is implied by the float32
    # test d_eta^2 + d_phi^2 < merge_dr^2 whenever fl(r * r) >= fl(merge_dr^2) (true for 0.4);
    # otherwise it is applied too, so the result is always the one of the pre-selection.
    seed_t = np.ascontiguousarray(valid.T)
    eta_t, phi_t = np.ascontiguousarray(eta.T), np.ascontiguousarray(phi.T)
    jet_of_t = np.zeros((width, n), dtype=np.intp)
    two_pi, r, r2 = np.float32(2 * np.pi), np.float32(config.merge_dr), np.float32(config.merge_dr**2)
    implied = bool(r * r >= r2)
    de_buf, dp_buf, tmp_buf = (np.empty(n * width, dtype=np.float32) for _ in range(3))
    near_buf, hit_buf = np.empty(n * width, dtype=np.bool_), np.empty(n * width, dtype=np.bool_)
    rows_with = np.searchsorted(-sorted_counts, -np.arange(width), side="left")  # rows with count > k
    for k in range(1, width):
        rows = int(rows_with[k])
        if rows == 0:
            break
        size, shape = rows * k, (k, rows)
        de = np.subtract(eta_t[:k, :rows], eta_t[k, :rows], out=de_buf[:size].reshape(shape))
        if not implied:
            near = np.less(np.abs(de), r, out=near_buf[:size].reshape(shape))
        dp = np.subtract(phi_t[:k, :rows], phi_t[k, :rows], out=dp_buf[:size].reshape(shape))
        np.abs(dp, out=dp)
        np.minimum(dp, np.subtract(two_pi, dp, out=tmp_buf[:size].reshape(shape)), out=dp)
        np.multiply(de, de, out=de)
        np.multiply(dp, dp, out=dp)
        hit = np.less(np.add(de, dp, out=de), r2, out=hit_buf[:size].reshape(shape))
        np.logical_and(hit, seed_t[:k, :rows], out=hit)
        if not implied:
            np.logical_and(hit, near, out=hit)
        j, i = np.divmod(np.flatnonzero(hit), rows)  # column-major: sort by row, keeping j ascending
        if not i.size:
            continue
        by_row = np.argsort(i, kind="stable")
        i, j = i[by_row], j[by_row]
        first = np.ones(i.size, dtype=bool)  # a row's first hit is its hardest seed
        np.not_equal(i[1:], i[:-1], out=first[1:])
        i, j = i[first], j[first]
        jet_of_t[k, i] = j
        seed_t[k, i] = False
    seed = np.ascontiguousarray(seed_t.T)

    # Sum the joining partons into their jets; only merged jets need recomputing.
    joined = np.flatnonzero(valid & ~seed)
    if joined.size:
        column = joined % width
        target = joined - column + jet_of_t[column, joined // width]
        receivers, inverse = np.unique(target, return_inverse=True)
        flat_kin = kin.reshape(4, -1)
        sums = [
            np.bincount(inverse, weights=c, minlength=receivers.size)
            for c in _cartesian(*np.take(flat_kin, joined, axis=1).astype(np.float64))
        ]
        e, px, py, pz = (
            s + c for s, c in zip(sums, _cartesian(*np.take(flat_kin, receivers, axis=1).astype(np.float64)))
        )
        new_pt = np.hypot(px, py)
        flat_kin[0, receivers] = new_pt
        flat_kin[1, receivers] = eta_from_pt_pz(new_pt, pz)
        flat_kin[2, receivers] = np.arctan2(py, px)
        flat_kin[3, receivers] = np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))
        flat_code = code.ravel()
        heavy = np.zeros(receivers.size, dtype=np.int16)
        np.maximum.at(heavy, inverse, flat_code[joined] & 3)
        receiving = flat_code[receivers]
        flat_code[receivers] = receiving - (receiving & 3) + np.maximum(heavy, receiving & 3)
    return Jets(by_count, kin, code, seed)


def _cartesian(pt: F64, eta: F64, phi: F64, mass: F64) -> tuple[F64, F64, F64, F64]:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.sqrt(px * px + py * py + pz * pz + mass * mass), px, py, pz


def _take_rows(rows: NDArray[np.intp], *arrays: NDArray) -> list[NDArray]:
    return [a[rows] for a in arrays]


def reconstruct(
    rng: np.random.Generator,
    hard: PartonSet,
    isr: PartonSet,
    num_roles: int,
    max_jets: int,
    config: PhysicsConfig,
    selection: Selection,
    lepton: Lepton | None = None,
) -> Reconstructed:
    """Run the whole detector model and the selection on one block (see module doc).

    Returns only the events that pass ``selection``, in block order (``Reconstructed.events``).
    The cuts are applied as soon as the quantity they test is known (see the module doc), so
    the later steps run on the survivors only. Every cut is exact, and each event still gets
    independent random numbers, so the selected sample is distributed exactly as if every step
    ran on every event.

    ``hard`` column r carries role r (or -1 where that event has no such target, e.g. background),
    so the truth direction of target r is column r.
    """
    n = hard.valid.shape[0]
    events = np.arange(n)
    if lepton is not None:
        lv = lepton.vector
        l_pt = lv.pt * (1.0 + config.lepton_resolution * rng.standard_normal(n))
        l_eta = lv.eta + config.lepton_angular_resolution * rng.standard_normal(n)
        l_phi = delta_phi(lv.phi + config.lepton_angular_resolution * rng.standard_normal(n), 0.0)
        l_ok = (l_pt > config.lepton_pt_min) & (np.abs(l_eta) < config.lepton_eta_max)
        efficiency = config.lepton_isolation_efficiency * lepton_identification_efficiency(l_eta, config)
        l_ok &= rng.random(n) < efficiency
        if selection.leptons >= 2:  # at most one lepton per event: nothing can pass
            l_ok[:] = False
        if selection.leptons:
            events = np.flatnonzero(l_ok)
            hard = PartonSet(*_take_rows(events, *_fields(hard)))
            isr = PartonSet(*_take_rows(events, *_fields(isr)))
    truth_eta, truth_phi, truth_role = hard.eta, hard.phi, hard.role  # (n, P) before any radiation
    jets = cluster(radiate(rng, hard, isr, config), rng, config)
    rows = jets.events  # row -> index into the (lepton-selected) truth arrays
    seed = jets.seed
    r, m = seed.shape

    # Resolution and acceptance, on the jets only (a flat list); the jet-count cut needs nothing else.
    f32 = np.float32
    where_jet = np.flatnonzero(seed)
    pt, eta, phi, mass = np.take(jets.kin.reshape(4, -1), where_jet, axis=1)
    exp_eta = np.exp(eta)
    p_abs = np.divide(f32(1.0), exp_eta)
    p_abs += exp_eta
    p_abs *= f32(0.5)
    p_abs *= pt  # pt cosh(eta)
    np.multiply(p_abs, p_abs, out=p_abs)
    p_abs += mass * mass  # now E^2
    sigma = jet_energy_resolution_from_e2(p_abs, eta, config)
    is_b = (jets.code.ravel()[where_jet] & 3) == 2
    if config.jet_response_spread_b:
        b_jets = np.flatnonzero(is_b)
        sigma_b = sigma[b_jets]
        sigma[b_jets] = np.sqrt(sigma_b * sigma_b + f32(config.jet_response_spread_b**2))
    response = _pick(is_b, config.jet_response_light, config.jet_response_b)
    scale = jet_energy_scale(sigma, rng.standard_normal(where_jet.size, dtype=f32))
    scale *= response
    pt *= scale
    eta += f32(config.jet_angular_resolution) * rng.standard_normal(where_jet.size, dtype=f32)
    _displace_axis_tail(rng, eta, phi, is_b, config)
    accepted = (pt > config.jet_pt_min) & (np.abs(eta) < config.jet_eta_max)
    row = np.repeat(np.arange(r), np.count_nonzero(seed, axis=1))  # where_jet // m
    num_jets = np.bincount(row[accepted], minlength=r)
    alive_row = num_jets >= selection.min_jets
    # From here on only accepted jets of surviving events matter: a rejected jet is never stored.
    live = np.flatnonzero(accepted & alive_row[row])
    pt, eta, phi, mass, scale, row = (a[live] for a in (pt, eta, phi, mass, scale, row))
    where_jet = where_jet[live]
    code = jets.code.ravel()[where_jet]

    # b-tag every accepted jet. An event with too few tags among all its accepted jets cannot
    # have enough among the stored (hardest max_jets) ones: drop it before sorting.
    tag = rng.random(live.size, dtype=f32) < btag_efficiency(pt, _FLAVOUR_OF[code & 3])
    enough = np.bincount(row[tag], minlength=r) >= selection.min_btags
    alive_row &= enough
    live = np.flatnonzero(alive_row[row])
    pt, eta, phi, mass, scale, row, where_jet, code, tag = (
        a[live] for a in (pt, eta, phi, mass, scale, row, where_jet, code, tag)
    )
    column = where_jet - row * m
    mass *= scale
    phi = _wrap_phi(phi + f32(config.jet_angular_resolution) * rng.standard_normal(live.size, dtype=f32))
    alive = np.flatnonzero(alive_row)
    row = (np.cumsum(alive_row) - 1)[row]  # row among the surviving events
    rows, num_jets = rows[alive], num_jets[alive]

    # Order by pT and keep the hardest max_jets; then the exact b-tag count of the stored jets.
    # key: -pT of each jet in its (event, parton column) cell, inf where there is none.
    key = np.full((alive.size, max(m, max_jets)), np.inf, dtype=f32)
    key[row, column] = -pt
    index = np.zeros(key.shape, dtype=np.intp)
    index[row, column] = np.arange(live.size)
    order = np.argsort(key, axis=1)[:, :max_jets]  # ties: empty cells only
    kept = np.take_along_axis(key, order, axis=1) < np.inf
    index = np.take_along_axis(index, order, axis=1)
    pt, eta, phi, mass, code = (np.where(kept, a[index], 0) for a in (pt, eta, phi, mass, code))
    btag = kept & tag[index]
    role = (code >> 2) - 1  # empty slots: code 0, role -1
    alive = np.flatnonzero(np.count_nonzero(btag, axis=1) >= selection.min_btags)

    # Survivors only from here on, back in block order.
    alive = alive[np.argsort(rows[alive], kind="stable")]
    pt, eta, phi, mass, kept, role, btag, num_jets, rows = _take_rows(
        alive, pt, eta, phi, mass, kept, role, btag, num_jets, rows
    )

    # Each stored jet seeded by decay parton r is target r, if it lies within match_dr of it.
    s = len(alive)
    targets = np.full((s, num_roles), -1, dtype=np.int64)
    ev, slots = np.nonzero(kept & (role >= 0))
    targets[ev, role[ev, slots]] = slots
    index = np.maximum(targets, 0)
    d_eta = np.take_along_axis(eta, index, axis=1) - truth_eta[rows, :num_roles]
    d_phi = delta_phi(np.take_along_axis(phi, index, axis=1), truth_phi[rows, :num_roles])
    near = d_eta * d_eta + d_phi * d_phi < config.match_dr**2
    targets = np.where(near & (truth_role[rows, :num_roles] == np.arange(num_roles)), targets, -1)

    block_events = events[rows]
    reco = Reconstructed(pt, eta, phi, mass, btag, kept, num_jets, targets, events=block_events)
    sum_et = pt.sum(axis=1)
    if lepton is not None:
        l_pt, l_eta, l_phi, l_ok = (
            l_pt[block_events],
            l_eta[block_events],
            l_phi[block_events],
            l_ok[block_events],
        )
        reco.lepton_pt, reco.lepton_eta, reco.lepton_phi = l_pt, l_eta, l_phi
        reco.lepton_mass = lepton.mass[block_events]
        d_eta = eta - l_eta[:, None]
        d_phi = delta_phi(phi, l_phi[:, None])
        isolated = ~(kept & (d_eta * d_eta + d_phi * d_phi < config.lepton_isolation_dr**2)).any(axis=1)
        reco.lepton_accepted = l_ok & isolated
        sum_et = sum_et + l_pt
        sigma_met = config.met_resolution * np.sqrt(sum_et)
        reco.met_x = lepton.neutrino.px[block_events] + sigma_met * rng.standard_normal(s)
        reco.met_y = lepton.neutrino.py[block_events] + sigma_met * rng.standard_normal(s)
        if selection.leptons == 1:  # isolation needs the stored jets, so it is the last cut
            final = np.flatnonzero(reco.lepton_accepted)
            reco = reco.subset(final)
            sum_et = sum_et[final]
    reco.sum_et = sum_et
    return reco


def _displace_axis_tail(
    rng: np.random.Generator,
    eta: NDArray[np.float32],
    phi: NDArray[np.float32],
    is_b: NDArray[np.bool_],
    config: PhysicsConfig,
) -> None:
    """Move the axis of a fraction of the jets (flat list), in place.

    The fraction is ``jet_axis_tail_b`` for b-flavoured jets and ``jet_axis_tail_light`` for the
    others; the distance is log-uniform in [jet_axis_tail_dr_min, jet_axis_tail_dr_max], the
    direction uniform. One uniform u per jet decides (u < p) and, rescaled to u / p, also gives
    the distance; only the displaced jets draw a direction. phi is left unwrapped (the caller
    wraps it once, after the phi resolution smearing; |shift| <= dr_max < pi).
    """
    pb, pl = config.jet_axis_tail_b, config.jet_axis_tail_light
    if pb <= 0 and pl <= 0:
        return
    f32 = np.float32
    u = rng.random(eta.size, dtype=f32)
    p = _pick(is_b, pl, pb)
    which = np.flatnonzero(u < p)
    log_lo, log_hi = np.log(config.jet_axis_tail_dr_min), np.log(config.jet_axis_tail_dr_max)
    dr = np.exp(f32(log_lo) + f32(log_hi - log_lo) * (u[which] / p[which]))
    alpha = f32(2.0 * np.pi) * rng.random(which.size, dtype=f32)
    eta[which] += dr * np.cos(alpha)
    phi[which] += dr * np.sin(alpha)


def _fields(partons: PartonSet) -> tuple[NDArray, ...]:
    return (
        partons.pt,
        partons.eta,
        partons.phi,
        partons.mass,
        partons.flavour,
        partons.role,
        partons.valid,
    )
