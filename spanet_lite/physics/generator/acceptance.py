"""Stop a generation whose selection (almost) never accepts an event, instead of running forever.

``--min-jets 50`` accepts nothing, and the generator would simulate candidates until killed.
:class:`AcceptanceGuard` watches the running acceptance and raises a one-line
:class:`~spanet_lite.errors.InputError` naming ``selection`` (``spanet-generate`` translates it
to its flags) once enough candidates were simulated to be sure: none accepted in the first
:data:`EMPTY_AFTER` candidates, or an acceptance below :data:`FLOOR` after :data:`FLOOR_AFTER`
candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

from spanet_lite.errors import InputError
from spanet_lite.physics.generator.config import Selection

EMPTY_AFTER = 100_000
"""Candidates after which a selection that accepted none is called impossible (< 1e-5 acceptance)."""
FLOOR = 1e-4
"""The lowest acceptance worth generating with (the default selections accept 5-60 %)."""
FLOOR_AFTER = 1_000_000
"""Candidates after which the acceptance is measured well enough to compare with :data:`FLOOR`."""


@dataclass
class AcceptanceGuard:
    """Running acceptance of one generation; the two limits are in simulated candidates.

    The fast backend simulates ~10^5 candidates a second and uses the module's limits; the
    Pythia backend, ~10^2 a second per worker, passes smaller ones (see its runner).
    """

    selection: Selection
    candidates: int = 0
    accepted: int = 0
    empty_after: int = EMPTY_AFTER
    floor_after: int = FLOOR_AFTER

    def add(self, candidates: int, accepted: int) -> None:
        """Count one simulated block; raise InputError when the selection is (near-)impossible."""
        self.candidates += candidates
        self.accepted += accepted
        if self.accepted == 0 and self.candidates >= self.empty_after:
            self._refuse("none")
        elif self.candidates >= self.floor_after and self.accepted < FLOOR * self.candidates:
            self._refuse(f"{self.accepted:,}")

    def _refuse(self, accepted: str) -> None:
        # The counts are of the objects the physics parameters' cuts keep: a lepton_pt_min no lepton
        # passes empties a semi-leptonic selection as surely as --min-jets 50 (the lepton it needs
        # went unsaid, and only the selection was named).
        s = self.selection
        leptons = f"{s.leptons} lepton{'' if s.leptons == 1 else 's'}"
        wanted = (f"{s.min_jets} jets, {s.min_btags} b-tags and {leptons}" if s.leptons
                  else f"{s.min_jets} jets and {s.min_btags} b-tags")
        raise InputError(
            None,
            "selection",
            f"a selection that accepts at least {FLOOR:g} of the events (at least {wanted} here, "
            "among the objects that pass the physics parameters' cuts, jet_pt_min, lepton_pt_min, ...: "
            "loosen them)",
            f"{accepted} accepted of the first {self.candidates:,} simulated",
        )
