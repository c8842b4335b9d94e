"""Showered, hadronised events for ``spanet-generate --backend pythia`` (Pythia 8 + FastJet).

``generate("ttbar_allhad", 1000, seed=1, output="tt.h5", jobs=2)`` writes the same HDF5
layout as the fast backend (``spanet_lite.physics.generator``) for the same event files, from
pp collisions at 13 TeV with parton shower, multi-parton interactions and hadronisation. Needs
the optional extra ``pythia`` (``pythia8mc`` and ``fastjet``); importing this package does
not, so ``spanet-generate`` starts fast and reports a missing extra as one line.

Modules: ``processes`` (Pythia settings per process), ``record`` (event records to numpy,
truth partons), ``detector`` (leptons, FastJet jets, b-tags, MET), ``matching`` (greedy
Delta R matching), ``engine`` (one chunk to HDF5 arrays), ``runner`` (chunks, workers,
resuming, assembly).
"""

from __future__ import annotations

from spanet_lite.physics.pythia.processes import PROCESSES
from spanet_lite.physics.pythia.runner import generate, require_pythia

__all__ = ["PROCESSES", "generate", "require_pythia"]
