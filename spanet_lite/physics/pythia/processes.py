"""What Pythia generates for each ``spanet-generate`` process, and which partons are the truth.

Every process is pp at sqrt(s) = 13 TeV with Pythia's default tune (Monash 2013), parton
shower (ISR + FSR), multi-parton interactions and Lund-string hadronisation switched on.
Masses are set to the values the fast backend uses (top 172.5, W 80.4, H 125 GeV) so the two
backends differ only in what happens after the hard process.

Decay channels are forced with Pythia's own switches, never by re-weighting:

* t -> b W only (``6:onIfMatch = 5 24``);
* hadronic W: ``24:onIfAny = 1 2 3 4`` (W -> ud, us, cd, cs and the CKM-suppressed ub, cb);
* one hadronic and one leptonic W (e or mu, no tau): both channels are switched on and a
  :class:`ChannelHook` vetoes, at process level before any showering (so a veto costs
  microseconds), every event that is not exactly one W -> q q' and one W -> l nu. This keeps
  W+ and W- equally likely to be the leptonic one, which the simpler ``onPosIfAny`` /
  ``onNegIfAny`` switches would not;
* H -> b bbar: ``25:onIfMatch = 5 -5``.

Processes Pythia lacks are built from ones it has (documented in ``docs/pythia.md``):

* **tt + bb background** (ttH classification): Pythia has no 2 -> 4 ttbb matrix element.
  Like the fast backend (whose b bbar pair is a system of mass 20 GeV + Gamma(2, 45 GeV)),
  the pair comes from a colour-singlet stand-in: Pythia's ttH process with the scalar's mass
  spread by a forced Breit-Wigner (m0 = 110 GeV, width 90 GeV, 20-400 GeV) and decaying to
  b bbar, so m_bb is a broad continuum instead of a 125 GeV peak. Shower, MPI and hadronisation
  act on it as on every other process. (Extra b quarks from the parton shower alone would be
  the LO+PS ttbb, but only ~1 % of ttbar events have two of them above 15 GeV, far too few to
  fill a >= 4 b-tag selection at a useful rate.)
* **hh -> 4b**: Pythia has no SM non-resonant gg -> hh; it is gg -> H2 -> h h with a broad
  heavy scalar (m = 450 GeV, width 150 GeV, mass window 260-1200 GeV) whose m_hh spectrum
  peaks where the SM one does (just above 2 m_h to ~ 450 GeV) with a long tail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CENTRE_OF_MASS_GEV = 13000.0
TOP_MASS_GEV = 172.5
W_MASS_GEV = 80.4
HIGGS_MASS_GEV = 125.0

COMMON_SETTINGS: tuple[str, ...] = (
    f"Beams:eCM = {CENTRE_OF_MASS_GEV}",
    f"6:m0 = {TOP_MASS_GEV}",
    f"24:m0 = {W_MASS_GEV}",
    f"25:m0 = {HIGGS_MASS_GEV}",
    "PartonLevel:ISR = on",
    "PartonLevel:FSR = on",
    "PartonLevel:MPI = on",
    "HadronLevel:all = on",
    # Particles with c*tau > 10 mm (pi+-, K, K0S, Lambda, ...) reach the detector, as in Delphes.
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10.",
    "Next:numberCount = 0",
    "Print:quiet = on",
)

TOP_TO_BW = ("6:onMode = off", "6:onIfMatch = 5 24")  # drop t -> W s, W d (|V_ts|^2, |V_td|^2 ~ 1e-3)
TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *TOP_TO_BW)
TTH = ("HiggsSM:gg2Httbar = on", "HiggsSM:qqbar2Httbar = on", *TOP_TO_BW)
HADRONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4")
HADRONIC_OR_LEPTONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4 11 13")
HIGGS_TO_BB = ("25:onMode = off", "25:onIfMatch = 5 -5")
BB_CONTINUUM = ("25:m0 = 110.", "25:mWidth = 90.", "25:doForceWidth = on", "25:mMin = 20.", "25:mMax = 400.")
HEAVY_SCALAR_TO_HH = (
    "Higgs:useBSM = on",
    "HiggsBSM:gg2H2 = on",
    "35:m0 = 450.",
    "35:mWidth = 150.",
    "35:doForceWidth = on",
    "35:mMin = 260.",
    "35:mMax = 1200.",
    "35:onMode = off",
    "35:onIfMatch = 25 25",
)


@dataclass(frozen=True)
class Component:
    """One Pythia configuration that contributes events to a process.

    ``label`` is the value written to ``CLASSIFICATIONS/EVENT/signal`` (None: not written; a
    label of 0 marks background, whose targets are all -1 as in SPANet's ttH sample),
    ``fraction`` the share of the selected events it supplies, ``semileptonic`` whether the
    :class:`ChannelHook` must keep exactly one leptonic W, ``truth`` what the truth partons are
    (a key of :data:`~spanet_lite.physics.pythia.record.TRUTH_SLOTS`).
    """

    name: str
    settings: tuple[str, ...]
    truth: str
    label: int | None = None
    fraction: float = 1.0
    semileptonic: bool = False


@dataclass(frozen=True)
class PythiaProcess:
    """A ``spanet-generate`` process as the Pythia backend makes it. Layout, selection and event
    file are the fast backend's (``spanet_lite.physics.generator.PROCESSES[name]``)."""

    name: str
    components: tuple[Component, ...]


PROCESSES: dict[str, PythiaProcess] = {
    "ttbar_allhad": PythiaProcess(
        "ttbar_allhad",
        (Component("ttbar", TTBAR + HADRONIC_W, truth="ttbar_allhad"),),
    ),
    "ttbar_semilep": PythiaProcess(
        "ttbar_semilep",
        (Component("ttbar", TTBAR + HADRONIC_OR_LEPTONIC_W, truth="ttbar_semilep", semileptonic=True),),
    ),
    "ttH_semilep": PythiaProcess(
        "ttH_semilep",
        (
            Component(
                "ttH", TTH + HADRONIC_OR_LEPTONIC_W + HIGGS_TO_BB, truth="ttH_semilep", label=1,
                fraction=0.5, semileptonic=True,
            ),
            Component(
                "ttbb", TTH + HADRONIC_OR_LEPTONIC_W + HIGGS_TO_BB + BB_CONTINUUM, truth="ttH_semilep",
                label=0, fraction=0.5, semileptonic=True,
            ),
        ),
    ),
    "hh_4b": PythiaProcess(
        "hh_4b",
        (Component("hh", HEAVY_SCALAR_TO_HH + HIGGS_TO_BB, truth="hh_4b"),),
    ),
}


def make_hook(pythia8: Any, component: Component) -> Any | None:
    """The :class:`ChannelHook` a semi-leptonic component needs, or None. ``pythia8`` is the
    imported module (the class must derive from ``pythia8mc.UserHooks``, an optional import)."""
    if not component.semileptonic:
        return None

    class ChannelHook(pythia8.UserHooks):  # type: ignore[misc,name-defined]
        """Vetoes, at process level before showering, events that are not exactly one
        W -> l nu (e, mu) and one W -> q q'."""

        def __init__(self) -> None:
            pythia8.UserHooks.__init__(self)

        def canVetoResonanceDecays(self) -> bool:  # Pythia names this method
            return True

        def doVetoResonanceDecays(self, process: Any) -> bool:
            leptonic = hadronic = 0
            for i in range(process.size()):
                particle = process[i]
                if particle.idAbs() != 24:
                    continue
                daughter = abs(process[particle.daughter1()].id())
                if daughter in (11, 12, 13, 14):
                    leptonic += 1
                elif daughter <= 5:
                    hadronic += 1
            return not (leptonic == 1 and hadronic == 1)

    return ChannelHook()
