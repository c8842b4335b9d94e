"""The detector response both generator backends apply: b-tagging, jet energy resolution, lepton ID.

One home for these formulas: the fast generator (:mod:`spanet_lite.physics.generator.detector`)
and the Pythia backend (:mod:`spanet_lite.physics.pythia.detector`) both call this module, so the
two backends differ only in the physics before the detector. Everything here is a pure numpy
function of the object's kinematics (GeV, eta units).

Source: the Delphes 3 ATLAS card (``cards/delphes_card_ATLAS.tcl``), the detector simulation the
SPANet authors' ttbar samples were made with:

* **b-tagging** (module ``BTagging``), efficiency vs jet pT for the jet's truth flavour:
  b: 0.80 tanh(0.003 pT) 30 / (1 + 0.086 pT); c: 0.20 tanh(0.02 pT) / (1 + 0.0034 pT);
  light: 0.002 + 7.3e-6 pT. The b formula peaks near 0.73 around pT = 100 GeV and falls
  slowly above; c tends to 0.2 / (0.0034 pT); the light mistag rate grows linearly.
* **Jet energy resolution** (module ``HCal``, hadronic calorimeter):
  sigma_E = sqrt((c E)^2 + s^2 E + n^2), c = 0.0302, s = 0.5205, n = 1.59 for |eta| <= 1.7 and
  c = 0.050, s = 0.706, n = 0 beyond. The coefficients are generator parameters
  (``PhysicsConfig.jer_*``, defaults from :data:`JER_CENTRAL` / :data:`JER_FORWARD`), so the
  functions take them from an object with those attributes.
* **Lepton identification** (modules ``ElectronEfficiency`` / ``MuonEfficiency``): 0.95 for
  |eta| <= 1.5, 0.85 beyond (the pT > 10 GeV plateau; both backends cut at 25 GeV), again
  through ``PhysicsConfig.lepton_efficiency_*``.

The smeared jet energy is ``E * max(1 + sigma_E / E * N(0, 1), JET_SCALE_FLOOR)``: a Gaussian
cannot make a jet lose more than 95 % of its energy (or flip its momentum).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

BOTTOM, CHARM = 5, 4  # PDG ids: the truth-flavour labels (anything else is light)
JET_SCALE_FLOOR = 0.05


class CalorimeterTerms(NamedTuple):
    """sigma_E = sqrt((constant E)^2 + stochastic^2 E + noise^2), E in GeV."""

    constant: float
    stochastic: float
    noise: float


JER_CENTRAL = CalorimeterTerms(0.0302, 0.5205, 1.59)  # |eta| <= JER_ETA_BOUNDARY
JER_FORWARD = CalorimeterTerms(0.050, 0.706, 0.0)
JER_ETA_BOUNDARY = 1.7
LEPTON_EFFICIENCY_CENTRAL, LEPTON_EFFICIENCY_FORWARD, LEPTON_EFFICIENCY_ETA = 0.95, 0.85, 1.5


class JetResolutionParameters(Protocol):
    """The jet-energy-resolution coefficients (``PhysicsConfig`` has them)."""

    jer_constant_central: float
    jer_stochastic_central: float
    jer_noise_central: float
    jer_constant_forward: float
    jer_stochastic_forward: float
    jer_eta_boundary: float


class LeptonEfficiencyParameters(Protocol):
    """The lepton identification efficiencies (``PhysicsConfig`` has them)."""

    lepton_efficiency_central: float
    lepton_efficiency_forward: float
    lepton_efficiency_eta: float


# --- b-tagging ---------------------------------------------------------------------------------


def btag_efficiency_b(pt: NDArray[np.float64]) -> NDArray[np.float64]:
    """Tag probability of a b jet (Delphes ATLAS card)."""
    return 0.80 * np.tanh(0.003 * pt) * 30.0 / (1.0 + 0.086 * pt)


def btag_efficiency_c(pt: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mistag probability of a c jet (Delphes ATLAS card)."""
    return 0.20 * np.tanh(0.02 * pt) / (1.0 + 0.0034 * pt)


def btag_efficiency_light(pt: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mistag probability of a light (u, d, s, g) jet (Delphes ATLAS card)."""
    return 0.002 + 7.3e-6 * pt


def btag_efficiency(pt: NDArray[np.floating], flavour: NDArray[np.integer]) -> NDArray[np.float64]:
    """Tag probability of jets of truth flavour 5 (b), 4 (c) or anything else (light), any shape.

    Computed in float64 whatever ``pt``'s precision. Each formula is evaluated on its own
    flavour's jets only: picking from all three with ``where`` would cost three tanh passes over
    every jet (the fast generator tags millions of jets).
    """
    pt64 = np.asarray(pt, dtype=np.float64)
    out = btag_efficiency_light(pt64)
    flat_pt, flat_out, flat_flavour = pt64.reshape(-1), out.reshape(-1), np.asarray(flavour).reshape(-1)
    for code, formula in ((BOTTOM, btag_efficiency_b), (CHARM, btag_efficiency_c)):
        which = np.flatnonzero(flat_flavour == code)
        if which.size:
            flat_out[which] = formula(flat_pt[which])
    return out


# --- jet energy resolution ---------------------------------------------------------------------


def jet_energy_resolution(
    energy: NDArray[np.float64], eta: NDArray[np.float64], params: JetResolutionParameters
) -> NDArray[np.float64]:
    """Relative jet energy resolution sigma_E / E (the reference evaluation, float64)."""
    central = np.sqrt(
        (params.jer_constant_central * energy) ** 2
        + params.jer_stochastic_central**2 * energy
        + params.jer_noise_central**2
    )
    forward = np.sqrt((params.jer_constant_forward * energy) ** 2 + params.jer_stochastic_forward**2 * energy)
    sigma = np.where(np.abs(eta) <= params.jer_eta_boundary, central, forward)
    return sigma / np.maximum(energy, 1e-9)


def jet_energy_resolution_from_e2(
    energy2: NDArray[np.float32], eta: NDArray[np.float32], params: JetResolutionParameters
) -> NDArray[np.float32]:
    """:func:`jet_energy_resolution` from E^2 for a flat float32 list of jets (the fast generator's).

    The same formula written as sigma/E = sqrt(c^2 + s^2 / E + n^2 / E^2) with the coefficients
    gathered per jet by |eta| from 2-entry tables (cheaper than ``where`` on a patternless mask),
    one square root per jet and no temporaries. Agrees with the float64 evaluation to float32
    rounding (a few 1e-7 relative).
    """
    central = (np.abs(eta) <= np.float32(params.jer_eta_boundary)).view(np.int8)

    def pick(forward: float, central_value: float) -> NDArray[np.float32]:
        return np.take(np.array([forward, central_value], dtype=np.float32), central)

    c2 = pick(params.jer_constant_forward**2, params.jer_constant_central**2)
    s2 = pick(params.jer_stochastic_forward**2, params.jer_stochastic_central**2)
    n2 = pick(0.0, params.jer_noise_central**2)
    inverse2 = np.divide(np.float32(1.0), np.maximum(energy2, np.float32(1e-18)))
    out = np.sqrt(inverse2)
    out *= s2
    out += c2
    n2 *= inverse2
    out += n2
    return np.sqrt(out, out=out)


def jet_energy_scale(
    relative_sigma: NDArray[np.floating], normal: NDArray[np.floating]
) -> NDArray[np.floating]:
    """The factor a jet's four-momentum is multiplied by: 1 + (sigma_E / E) N(0, 1), floored at
    :data:`JET_SCALE_FLOOR`; keeps the inputs' precision (``normal`` holds the standard normal draws)."""
    scale = relative_sigma * normal
    scale += 1.0
    return np.maximum(scale, JET_SCALE_FLOOR, out=scale)


# --- leptons -----------------------------------------------------------------------------------


def lepton_identification_efficiency(
    eta: NDArray[np.floating], params: LeptonEfficiencyParameters
) -> NDArray[np.float64]:
    """Probability that an isolated electron or muon in the acceptance is identified."""
    central = np.abs(eta) <= params.lepton_efficiency_eta
    return np.where(central, params.lepton_efficiency_central, params.lepton_efficiency_forward)
