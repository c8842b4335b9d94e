"""Every number of the generator's physics model, with where it comes from.

Masses and widths are PDG values (rounded as event generators use them); the detector numbers
follow the Delphes ATLAS card that the SPANet authors' samples were simulated with; the
production spectra are shapes chosen to resemble the 13 TeV LHC measurements (peak and mean
of the top/Higgs pT, width of the rapidity distributions), not fits. The radiation numbers
(ISR count, FSR probability) were tuned so that the all-hadronic ttbar matched fractions land
near the published SPANet sample (32.7 % / 52.3 % / 15.0 % of events with 2 / 1 / 0 tops
fully matched). The jet response, jet-axis tail and lepton efficiency numbers were then tuned
to the Pythia 8.317 + FastJet backend (``spanet_lite.physics.pythia``), which moves the
all-hadronic fractions to Pythia's 27 / 54 / 19 %; see ``docs/pythia.md`` ("Validation")
and ``docs/generator.md`` for the measured values.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any

from spanet_lite.physics import detector_response as delphes

# --- masses and widths, GeV (PDG; b and c masses are Pythia 8 defaults) ----------------------
TOP_MASS, TOP_WIDTH = 172.5, 1.32
W_MASS, W_WIDTH = 80.4, 2.085
HIGGS_MASS, HIGGS_WIDTH = 125.0, 0.0041
B_MASS, C_MASS = 4.8, 1.5
ELECTRON_MASS, MUON_MASS = 0.000511, 0.105658


@dataclass(frozen=True)
class PhysicsConfig:
    """Tunable parameters of the production, radiation and detector model.

    Units: GeV for momenta and masses, radians / eta units for angles.
    """

    # Breit-Wigner sampling window, in widths either side of the pole.
    bw_window: float = 15.0
    top_width: float = TOP_WIDTH
    w_width: float = W_WIDTH

    # Initial-state radiation: Poisson count (capped), pT = isr_pt_min + Exponential(isr_pt_scale),
    # eta ~ Normal(0, isr_eta_sigma). The hard system recoils against the ISR partons.
    isr_mean: float = 1.6
    isr_max: int = 4
    isr_pt_min: float = 12.0
    isr_pt_scale: float = 28.0
    isr_eta_sigma: float = 1.8
    isr_b_fraction: float = 0.02  # g -> b bbar / c cbar in ISR gives real extra heavy-flavour jets
    isr_c_fraction: float = 0.05

    # Final-state radiation out of the jet cone: each parton emits, with probability
    # fsr_probability, one gluon carrying a fraction z ~ U(fsr_z_min, fsr_z_max) of its pT at an
    # angle dR log-uniform in [fsr_dr_min, fsr_dr_max]. Emissions inside the 0.4 cone stay in the
    # parton's jet and need no simulation (their only effect, the jet mass, is modelled below).
    fsr_probability: float = 0.3
    fsr_z_min: float = 0.05
    fsr_z_max: float = 0.45
    fsr_dr_min: float = 0.4
    fsr_dr_max: float = 1.5

    # Shower mass of a parton's jet: pT * jet_mass_fraction * LogNormal(0, jet_mass_spread).
    jet_mass_fraction: float = 0.10
    jet_mass_spread: float = 0.45

    # Jet energy resolution sigma_E = sqrt((c E)^2 + s^2 E + n^2), central (|eta| <= boundary)
    # and forward; formula and Delphes ATLAS values in spanet_lite.physics.detector_response.
    jer_constant_central: float = delphes.JER_CENTRAL.constant
    jer_stochastic_central: float = delphes.JER_CENTRAL.stochastic
    jer_noise_central: float = delphes.JER_CENTRAL.noise
    jer_constant_forward: float = delphes.JER_FORWARD.constant
    jer_stochastic_forward: float = delphes.JER_FORWARD.stochastic
    jer_eta_boundary: float = delphes.JER_ETA_BOUNDARY
    # Jet direction smearing (about a quarter of the 0.1 x 0.1 calorimeter tower), both eta and phi.
    jet_angular_resolution: float = 0.025

    # --- tuned to the Pythia 8.317 + FastJet backend (docs/pythia.md, "Validation") ----
    # The five jet numbers below were set so that this model reproduces the Pythia backend's
    # all-hadronic and semi-leptonic ttbar matched fractions, per-parton matching efficiencies
    # (b 0.93, light quarks 0.78) and the peak and width of the W / top masses rebuilt from
    # matched jets (78.0 / 164.0 GeV, widths 9.8 / 18.9 GeV).
    # Jet energy response, applied before the acceptance cut: the jet four-momentum is
    # multiplied by jet_response_b (b-flavoured jets) or jet_response_light (all others). b jets
    # lose more (neutrinos of semi-leptonic b/c decays, muons); Pythia's b-jet pT / parton pT
    # has median 0.89 against 0.98 here without these factors (which includes the FSR below).
    # b jets also get an extra relative Gaussian spread jet_response_spread_b, added in
    # quadrature to the calorimeter resolution (Pythia's b-jet 16-84 % range: 0.66-1.00).
    jet_response_b: float = 0.95
    jet_response_light: float = 0.985
    jet_response_spread_b: float = 0.15
    # Jet-axis tail: hard radiation inside the cone and losses out of it pull the jet axis away
    # from its parton. A fraction jet_axis_tail_b (b jets) / jet_axis_tail_light (others) of
    # the jets has its axis moved by dR log-uniform in [jet_axis_tail_dr_min,
    # jet_axis_tail_dr_max], in a uniform direction. In Pythia, for partons above 40 GeV the
    # nearest jet is 0.2-0.4 away in ~7 % and beyond 0.4 in 5-7 % of cases (< 1 % here
    # without the tail); b partons are matched less often than here (0.93 vs 0.97) while light
    # quarks nearly agree (0.78 vs 0.79), hence the larger b fraction.
    jet_axis_tail_b: float = 0.06
    jet_axis_tail_light: float = 0.02
    jet_axis_tail_dr_min: float = 0.2
    jet_axis_tail_dr_max: float = 0.8
    # Lepton identification (Delphes ATLAS card: 0.95 for |eta| <= 1.5, 0.85 beyond, e and mu)
    # times an isolation efficiency: in the Pythia backend (Delphes relative isolation, 0.12 e /
    # 0.25 mu within dR 0.5) 72 % of true leptons inside the acceptance pass both, so
    # 0.72 / 0.93 (mean identification efficiency) = 0.78 for isolation. This is on top of the
    # jet-overlap isolation (lepton_isolation_dr) below. One uniform draw per event.
    lepton_efficiency_central: float = delphes.LEPTON_EFFICIENCY_CENTRAL
    lepton_efficiency_forward: float = delphes.LEPTON_EFFICIENCY_FORWARD
    lepton_efficiency_eta: float = delphes.LEPTON_EFFICIENCY_ETA
    lepton_isolation_efficiency: float = 0.78

    # Lepton pT resolution (relative) and angular resolution (Delphes ATLAS: ~1-2 %, ~1 mrad).
    lepton_resolution: float = 0.015
    lepton_angular_resolution: float = 0.001

    # MET resolution per transverse component: met_resolution * sqrt(sum ET) (ATLAS: 0.5-0.7).
    met_resolution: float = 0.5

    # tt + b bbar background of ttH_semilep: the extra b pair comes from a gluon splitting
    # g* -> b bbar (production.splitting_decay: 1 + cos^2 theta* about the g* direction, the
    # g -> q qbar splitting function). The g* is radiated off an initial-state gluon with
    # probability ttbb_isr_fraction (rapidity ~ Normal(0, ttbb_isr_eta_sigma), independent of
    # the tops: more forward), else off the t tbar system (rapidity = system + the spread of the
    # tops). Its mass: dN/dm ~ m^-ttbb_mass_power on [ttbb_mass_min, ttbb_mass_max] (normalised
    # there), falling from the b bbar threshold; power 1 would be the bare collinear dm^2/m^2,
    # 2 matches the Pythia 8 shower's g -> b bbar in ttbar (median m_bb 18 vs 21 GeV, Delta R
    # 0.32 vs 0.46 for both b above 20 GeV). Its pT: Gamma(ttbb_pt_shape, ttbb_pt_scale) before
    # the event is balanced (mean 68 GeV, softer than the Higgs' 135). These shapes replace a
    # Higgs-like pair (20 GeV + Gamma(2, 45 GeV) mass, Higgs-like pT) that left the classifier at
    # chance; docs/generator.md has the comparison with Pythia.
    ttbb_isr_fraction: float = 0.5
    ttbb_isr_eta_sigma: float = 1.6
    ttbb_mass_min: float = 2 * B_MASS + 0.5
    ttbb_mass_max: float = 300.0
    ttbb_mass_power: float = 2.0
    ttbb_pt_shape: float = 1.8
    ttbb_pt_scale: float = 38.0

    # Acceptance, clustering and matching (the SPANet samples' choices).
    jet_pt_min: float = 25.0
    jet_eta_max: float = 2.5
    lepton_pt_min: float = 25.0
    lepton_eta_max: float = 2.5
    lepton_isolation_dr: float = 0.4  # no accepted jet this close to an accepted lepton
    merge_dr: float = 0.4
    match_dr: float = 0.4

    def with_overrides(self, **changes: Any) -> PhysicsConfig:
        """A copy with some parameters changed (unknown names raise TypeError)."""
        return replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def problems(self) -> list[str]:
        """What makes these parameters unusable (empty when they are fine).

        Every parameter is a non-negative finite number; shares, probabilities and efficiencies
        lie in [0, 1], and the ISR flavour shares together too (b first, then c: beyond 1 the c
        share was cut short without a word); the ranges drawn log-uniformly or uniformly need
        ``0 < min < max``.
        """
        # A notebook's PhysicsConfig(met_resolution="1") reaches here unconverted (the command
        # line parses its --set values): a TypeError from math.isfinite, not a line, before this.
        values = {name: getattr(self, name) for name in self.names()}
        wrong = [f"{name}={value!r} (need a number)" for name, value in values.items()
                 if not isinstance(value, numbers.Real) or isinstance(value, bool)]
        if wrong:
            return wrong
        found = []
        for name in self.names():
            value = getattr(self, name)
            if name in ("ttbb_pt_shape", "ttbb_pt_scale") and value == 0:
                found.append(f"{name}={value} (need a positive number)")
                continue
            if not math.isfinite(value) or value < 0:
                found.append(f"{name}={value} (need a non-negative number)")
            elif name.endswith(("_fraction", "_probability", "_efficiency_central", "_efficiency_forward",
                                "_isolation_efficiency", "axis_tail_b", "axis_tail_light")) and value > 1:
                found.append(f"{name}={value} (need a value in [0, 1])")
        heavy = self.isr_b_fraction + self.isr_c_fraction
        if math.isfinite(heavy) and heavy > 1:
            found.append(f"isr_b_fraction={self.isr_b_fraction}, isr_c_fraction={self.isr_c_fraction} "
                         "(need isr_b_fraction + isr_c_fraction <= 1)")
        for low, high in (("jet_axis_tail_dr_min", "jet_axis_tail_dr_max"), ("fsr_dr_min", "fsr_dr_max"),
                          ("fsr_z_min", "fsr_z_max"), ("ttbb_mass_min", "ttbb_mass_max")):
            lo, hi = getattr(self, low), getattr(self, high)
            if not 0 < lo < hi:
                found.append(f"{low}={lo}, {high}={hi} (need 0 < {low} < {high})")
        return found


@dataclass(frozen=True)
class Selection:
    """Event selection applied after the detector model.

    ``min_jets`` counts accepted jets (before truncation to the stored maximum); ``min_btags``
    counts b-tagged jets among the stored ones; ``leptons`` is the required number of accepted
    leptons (processes without leptons ignore it).
    """

    min_jets: int
    min_btags: int
    leptons: int = 0
