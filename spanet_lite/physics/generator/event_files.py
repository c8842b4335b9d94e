"""The event files (YAML text) that the generated processes' HDF5 files match.

The same text ships as ``event_files/<name>.yaml`` in the repository; ``spanet-generate
--event-file-output`` writes it next to a generated file, and a test checks both agree.
"""

from __future__ import annotations

# The masses section is spanet_lite's own (SPANet reads only its sections and ignores it).
_MASSES_NOTE = """
# spanet_lite only, ignored by SPANet: masses for spanet-test's chi-square baseline (GeV). Each is
# the median and 68 % half-width of the correctly matched jets in the bundled 10,000-event file;
# jets are not calibrated back to parton level, so the peaks sit below 172.5 and 80.4 GeV.
SPANET_LITE:
  MASSES:
"""


def _top(name: str) -> str:
    return f"    {name}:\n      all: 162 +- 19\n      q1 q2: 78 +- 10\n"


def _higgs(name: str) -> str:
    return f"    {name}:\n      all: 114 +- 19\n"


_SOURCE_INPUT = """\
INPUTS:
  SEQUENTIAL:
    Source:
      mass: log_normalize
      pt: log_normalize
      eta: normalize
      phi: normalize
      btag: none
  GLOBAL:
"""

FULL_HADRONIC_TTBAR = (
    "# All-hadronic ttbar: t -> b W, W -> q q' for both tops (the classic SPANet topology).\n"
    + _SOURCE_INPUT
    + """
EVENT:
  t1:
    - q1
    - q2
    - b
  t2:
    - q1
    - q2
    - b

PERMUTATIONS:
  EVENT:
    - [ t1, t2 ]
  t1:
    - [ q1, q2 ]
  t2:
    - [ q1, q2 ]

REGRESSIONS:

CLASSIFICATIONS:
"""
    + _MASSES_NOTE + _top("t1") + _top("t2")
)

HH_4B = (
    "# HH -> 4b: two Higgs bosons, each decaying to b bbar; both the bosons and their b quarks are\n"
    "# interchangeable.\n"
    + _SOURCE_INPUT
    + """
EVENT:
  h1:
    - b1
    - b2
  h2:
    - b1
    - b2

PERMUTATIONS:
  EVENT:
    - [ h1, h2 ]
  h1:
    - [ b1, b2 ]
  h2:
    - [ b1, b2 ]

REGRESSIONS:

CLASSIFICATIONS:
"""
    + _MASSES_NOTE + _higgs("h1") + _higgs("h2")
)

# Jets and the charged lepton share one SEQUENTIAL input; flags say which object is which
# (qtag: jet without b-tag, btag: b-tagged jet, etag: electron, utag: muon). The lepton is slot 0.
# Met's nu_pz / nu_pz_other (spanet_lite's addition to SPANet's ttH inputs) are the two roots of
# the W-mass constraint from the lepton and MET (physics.neutrino.analytic_features), nu_pz the
# smaller-|pz| one: the analytic solution handed to the network, which then only has to learn
# when and how to correct it. The neutrino targets are laplacian (absolute error: the network
# predicts the median, which sits on the likelier W-mass root), not gaussian as in SPANet's
# file: a squared error makes it predict the mean, between the two roots (docs/training.md).
_LEPTON_JETS_INPUT = """\
INPUTS:
  SEQUENTIAL:
    Momenta:
      mass: log_normalize
      pt: log_normalize
      eta: normalize
      sin_phi: normalize
      cos_phi: normalize
      qtag: none
      btag: none
      etag: none
      utag: none

  GLOBAL:
    Met:
      met: log_normalize
      sin_phi: normalize
      cos_phi: normalize
      nu_pz: normalize
      nu_pz_other: normalize
"""

SEMI_LEPTONIC_TTBAR = (
    "# Semi-leptonic ttbar: the leptonic top's b jet (lt/b) and the hadronic top's three jets.\n"
    "# The lepton sits in the Momenta input; the neutrino (GeV) is a regression target.\n"
    + _LEPTON_JETS_INPUT
    + """
EVENT:
  lt:
    - b
  ht:
    - b
    - q1
    - q2

PERMUTATIONS:
  ht:
    - [ q1, q2 ]

REGRESSIONS:
  EVENT:
    - [neutrino_eta, laplacian]
    - [neutrino_px, laplacian]
    - [neutrino_py, laplacian]
    - [neutrino_pz, laplacian]

CLASSIFICATIONS:
"""
    + _MASSES_NOTE + _top("ht")
)

SEMI_LEPTONIC_TTH = (
    "# Semi-leptonic ttH, H -> b bbar, against a tt + b bbar background (signal = 1 / 0).\n"
    "# Regressions in GeV; log_invariant_mass = ln(m(t tbar X) / GeV), X = H or the b bbar pair.\n"
    + _LEPTON_JETS_INPUT
    + """
EVENT:
  lt:
    - b
  ht:
    - b
    - q1
    - q2
  h:
    - b1
    - b2

PERMUTATIONS:
  ht:
    - [ q1, q2 ]
  h:
    - [ b1, b2 ]

REGRESSIONS:
  EVENT:
    - [neutrino_eta, laplacian]
    - [neutrino_px, laplacian]
    - [neutrino_py, laplacian]
    - [neutrino_pz, laplacian]
    - log_invariant_mass

CLASSIFICATIONS:
  EVENT:
    - signal
"""
    + _MASSES_NOTE + _top("ht") + _higgs("h")
)
