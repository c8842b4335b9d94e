"""The detector-like layer on Pythia's final state: leptons, jets, b-tags and MET.

Numbers (resolutions, efficiencies, acceptance, matching radius) come from the fast backend's
:class:`~spanet_lite.physics.generator.config.PhysicsConfig`, and the b-tagging, jet energy
resolution and lepton identification formulas from
:mod:`spanet_lite.physics.detector_response`, which the fast backend calls too: the two
backends share one detector response and differ only in the physics before it. What only
exists here (there are real particles to look at):

* **Visible particles**: final-state (status > 0) particles with |eta| < 4.9 (the ATLAS
  calorimeter reach), except neutrinos.
* **Leptons**: final-state e and mu with pT > ``lepton_pt_min`` and |eta| < ``lepton_eta_max``,
  isolated as in the Delphes ATLAS card: the scalar pT sum of the other visible particles with
  pT > 0.5 GeV within Delta R < 0.5 must be below 0.12 (e) or 0.25 (mu) of the lepton pT. The
  Delphes ATLAS identification efficiency (``lepton_efficiency_*``: 0.95 for |eta| <= 1.5,
  0.85 beyond) is applied, and the pT is smeared by ``lepton_resolution``.
* **Jets**: anti-kt, R = 0.4 (FastJet) on the visible particles minus muons (which leave the
  calorimeter) and minus the selected isolated electrons. Jet energy is smeared with the Delphes
  ATLAS resolution sigma_E = sqrt((c E)^2 + s^2 E + n^2), floored at 5 % of E as in the fast
  backend (the four-momentum is scaled, so the
  direction is kept: the shower already moved it away from the parton). Accepted jets have
  pT > ``jet_pt_min``, |eta| < ``jet_eta_max``; ordered by pT.
* **Truth flavour** (Delphes' parton-based definition): b if a b quark with pT > 1 GeV and
  |eta| < 2.5 is anywhere in the record within Delta R < 0.5 of the jet axis, else c for a c
  quark, else light. The b-tag is then drawn with the efficiency of that flavour.
* **MET**: minus the vector sum of the visible particles' pT, corrected for the smearing of jets
  and leptons (so the smeared objects and the MET balance); ``sumet`` is their scalar pT sum.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from spanet_lite.physics.detector_response import (
    btag_efficiency,
    jet_energy_resolution,
    jet_energy_scale,
    lepton_identification_efficiency,
)
from spanet_lite.physics.generator.config import ELECTRON_MASS, MUON_MASS, PhysicsConfig
from spanet_lite.physics.generator.production import BOTTOM, CHARM
from spanet_lite.physics.kinematics import delta_r
from spanet_lite.physics.pythia.record import FlatBatch

CALORIMETER_ETA_MAX = 4.9
JET_RADIUS = 0.4
JET_PT_MIN_CLUSTER = 15.0  # GeV before smearing; well below the 25 GeV cut after it
ISOLATION_DR = 0.5
ISOLATION_PT_MIN = 0.5
ISOLATION_RATIO = {11: 0.12, 13: 0.25}
FLAVOUR_DR, FLAVOUR_PARTON_PT_MIN, FLAVOUR_PARTON_ETA_MAX = 0.5, 1.0, 2.5
NEUTRINOS = (12, 14, 16)


@dataclass
class RecoBatch:
    """Reconstructed objects of a batch, padded: jets (events, J), leptons (events, L).

    Kinematics in GeV / radians; ``*_mask`` True for real objects; ``jet_flavour`` the truth
    label (5, 4, 0); ``lepton_pid`` the signed PDG id; ``num_jets`` the accepted jets before
    truncation to the stored maximum; ``met``, ``met_phi``, ``sumet`` per event.
    """

    jet_pt: NDArray[np.float64]
    jet_eta: NDArray[np.float64]
    jet_phi: NDArray[np.float64]
    jet_mass: NDArray[np.float64]
    jet_btag: NDArray[np.bool_]
    jet_flavour: NDArray[np.int64]
    jet_mask: NDArray[np.bool_]
    lepton_pt: NDArray[np.float64]
    lepton_eta: NDArray[np.float64]
    lepton_phi: NDArray[np.float64]
    lepton_mass: NDArray[np.float64]
    lepton_pid: NDArray[np.int64]
    lepton_mask: NDArray[np.bool_]
    met: NDArray[np.float64]
    met_phi: NDArray[np.float64]
    sumet: NDArray[np.float64]
    num_jets: NDArray[np.int64]

    @property
    def num_leptons(self) -> NDArray[np.int64]:
        return self.lepton_mask.sum(axis=1)

    @property
    def num_btags(self) -> NDArray[np.int64]:
        return (self.jet_btag & self.jet_mask).sum(axis=1)


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """FastJet's C++ library prints a banner on its first clustering; keep it off the terminal."""
    try:
        fd = os.dup(1)
    except OSError:  # no stdout at all
        yield
        return
    try:
        with Path(os.devnull).open("w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


_BANNER_SHOWN = False


def cluster_jets(batch: FlatBatch, use: NDArray[np.bool_]) -> tuple[NDArray[np.float64], ...]:
    """Anti-kt R = 0.4 jets of the particles ``use`` selects, per event; returns padded
    (E, px, py, pz) arrays (events, J) with zeros in the padding, and the jet counts."""
    global _BANNER_SHOWN
    import awkward as ak
    import fastjet

    counts = np.bincount(batch.event[use], minlength=batch.num_events)
    particles = ak.unflatten(
        ak.zip({"px": batch.px[use], "py": batch.py[use], "pz": batch.pz[use], "E": batch.e[use]}), counts
    )
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_RADIUS)
    if _BANNER_SHOWN:
        jets = fastjet.ClusterSequence(particles, definition).inclusive_jets(JET_PT_MIN_CLUSTER)
    else:
        with _stdout_silenced():
            jets = fastjet.ClusterSequence(particles, definition).inclusive_jets(JET_PT_MIN_CLUSTER)
        _BANNER_SHOWN = True
    njets = ak.to_numpy(ak.num(jets.px)).astype(np.int64)
    width = max(int(njets.max(initial=0)), 1)

    def padded(x: Any) -> NDArray[np.float64]:
        return np.asarray(ak.to_numpy(ak.fill_none(ak.pad_none(x, width, clip=True), 0.0)), dtype=np.float64)

    return padded(jets.E), padded(jets.px), padded(jets.py), padded(jets.pz), njets


def _padded(values: list[NDArray[Any]], width: int, fill: float = 0.0) -> NDArray[Any]:
    out = np.full((len(values), width), fill, dtype=values[0].dtype if values else np.float64)
    for i, v in enumerate(values):
        out[i, : len(v)] = v[:width]
    return out


def reconstruct(
    batch: FlatBatch,
    cfg: PhysicsConfig,
    rng: np.random.Generator,
    *,
    max_jets: int,
    max_leptons: int = 2,
) -> RecoBatch:
    """Run the detector layer on a batch (see the module docstring)."""
    n = batch.num_events
    pt = batch.pt
    final = batch.status > 0
    apid = np.abs(batch.pid)
    # Along the beam (pt = 0) eta is infinite; a huge finite value keeps it out of every cut.
    eta = np.where(pt > 0, np.arcsinh(np.divide(batch.pz, pt, out=np.zeros_like(pt), where=pt > 0)),
                   np.copysign(1e9, batch.pz))
    phi = np.arctan2(batch.py, batch.px)
    visible = final & ~np.isin(apid, NEUTRINOS) & (np.abs(eta) < CALORIMETER_ETA_MAX)

    # --- leptons ---------------------------------------------------------------------------
    candidates = np.flatnonzero(
        visible & np.isin(apid, (11, 13)) & (pt > cfg.lepton_pt_min) & (np.abs(eta) < cfg.lepton_eta_max)
    )
    iso_particles = visible & (pt > ISOLATION_PT_MIN)
    chosen: list[int] = []
    for g in candidates:
        ev = batch.event[g]
        lo, hi = batch.offsets[ev], batch.offsets[ev + 1]
        others = np.flatnonzero(iso_particles[lo:hi]) + lo
        others = others[others != g]
        near = delta_r(eta[others], phi[others], eta[g], phi[g]) < ISOLATION_DR
        if pt[others][near].sum() < ISOLATION_RATIO[int(apid[g])] * pt[g]:
            chosen.append(int(g))
    chosen_arr = np.asarray(chosen, dtype=np.int64)
    efficiency = lepton_identification_efficiency(eta[chosen_arr], cfg)
    identified = chosen_arr[rng.random(len(chosen_arr)) < efficiency]
    lepton_scale = 1.0 + cfg.lepton_resolution * rng.standard_normal(len(identified))

    # --- jets ------------------------------------------------------------------------------
    jet_input = visible & (apid != 13)
    electrons = identified[apid[identified] == 11]
    jet_input[electrons] = False
    e, px, py, pz, njets = cluster_jets(batch, jet_input)
    present = np.arange(e.shape[1])[None, :] < njets[:, None]
    raw_pt = np.hypot(px, py)
    raw_eta = np.arcsinh(np.divide(pz, raw_pt, out=np.zeros_like(raw_pt), where=raw_pt > 0))
    scale = jet_energy_scale(jet_energy_resolution(e, raw_eta, cfg), rng.standard_normal(e.shape))
    jpt = raw_pt * scale
    jphi = np.arctan2(py, px)
    jmass = np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None)) * scale
    accepted = present & (jpt > cfg.jet_pt_min) & (np.abs(raw_eta) < cfg.jet_eta_max)

    # Flavour: b (or c) quark with pT > 1 GeV, |eta| < 2.5 within Delta R < 0.5 of the jet.
    flavour = np.zeros(e.shape, dtype=np.int64)
    for quark in (CHARM, BOTTOM):
        q = np.flatnonzero((apid == quark) & (pt > FLAVOUR_PARTON_PT_MIN)
                           & (np.abs(eta) < FLAVOUR_PARTON_ETA_MAX) & (batch.status != -21))
        if len(q) == 0:
            continue
        qev = batch.event[q]
        near = delta_r(raw_eta[qev], jphi[qev], eta[q][:, None], phi[q][:, None]) < FLAVOUR_DR
        hit = np.zeros(e.shape, dtype=bool)
        rows, cols = np.nonzero(near & present[qev])
        hit[qev[rows], cols] = True
        flavour[hit] = quark
    tagged = rng.random(e.shape) < btag_efficiency(jpt, flavour.astype(np.int8))

    # --- MET -------------------------------------------------------------------------------
    met_x = -np.bincount(batch.event[visible], weights=batch.px[visible], minlength=n)
    met_y = -np.bincount(batch.event[visible], weights=batch.py[visible], minlength=n)
    sumet = np.asarray(np.bincount(batch.event[visible], weights=pt[visible], minlength=n), dtype=np.float64)
    met_x -= ((scale - 1.0) * px * present).sum(axis=1)
    met_y -= ((scale - 1.0) * py * present).sum(axis=1)
    lev = batch.event[identified]
    np.subtract.at(met_x, lev, (lepton_scale - 1.0) * batch.px[identified])
    np.subtract.at(met_y, lev, (lepton_scale - 1.0) * batch.py[identified])

    # --- order by pT and pad -----------------------------------------------------------------
    order = np.argsort(np.where(accepted, -jpt, np.inf), axis=1, kind="stable")
    take = lambda a: np.take_along_axis(a, order, axis=1)[:, :max_jets]  # noqa: E731
    width = max_jets
    jet_arrays = [take(a) for a in (jpt, raw_eta, jphi, jmass, tagged, flavour, accepted)]
    if jet_arrays[0].shape[1] < width:
        pad = width - jet_arrays[0].shape[1]
        jet_arrays = [np.pad(a, ((0, 0), (0, pad))) for a in jet_arrays]

    lepton_lists: dict[str, list[NDArray[Any]]] = {k: [] for k in ("pt", "eta", "phi", "mass", "pid")}
    lepton_pt = pt[identified] * lepton_scale
    for ev in range(n):
        mine = np.flatnonzero(lev == ev)
        mine = mine[np.argsort(-lepton_pt[mine], kind="stable")]
        at = identified[mine]
        lepton_lists["pt"].append(lepton_pt[mine])
        lepton_lists["eta"].append(eta[at])
        lepton_lists["phi"].append(phi[at])
        lepton_lists["mass"].append(np.where(apid[at] == 11, ELECTRON_MASS, MUON_MASS))
        lepton_lists["pid"].append(batch.pid[at].astype(np.int64))
    lepton_count = np.bincount(lev, minlength=n)
    return RecoBatch(
        jet_pt=jet_arrays[0], jet_eta=jet_arrays[1], jet_phi=jet_arrays[2], jet_mass=jet_arrays[3],
        jet_btag=jet_arrays[4].astype(bool), jet_flavour=jet_arrays[5].astype(np.int64),
        jet_mask=jet_arrays[6].astype(bool),
        lepton_pt=_padded(lepton_lists["pt"], max_leptons),
        lepton_eta=_padded(lepton_lists["eta"], max_leptons),
        lepton_phi=_padded(lepton_lists["phi"], max_leptons),
        lepton_mass=_padded(lepton_lists["mass"], max_leptons),
        lepton_pid=_padded(lepton_lists["pid"], max_leptons, 0).astype(np.int64),
        lepton_mask=np.arange(max_leptons)[None, :] < lepton_count[:, None],
        met=np.hypot(met_x, met_y), met_phi=np.arctan2(met_y, met_x), sumet=sumet,
        num_jets=accepted.sum(axis=1),
    )
