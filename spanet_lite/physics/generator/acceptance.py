"""Stop a generation whose selection (almost) never accepts an event, instead of running forever.

``--min-jets 50`` accepts nothing, and the generator would simulate candidates until killed.
:class:`AcceptanceGuard` watches the running acceptance and raises a one-line
:class:`~spanet_lite.errors.InputError` naming the selection options once enough candidates
were simulated to be sure: none accepted in the first :data:`EMPTY_AFTER` candidates, or an
acceptance below :data:`FLOOR` after :data:`FLOOR_AFTER` candidates.
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
    selection: Selection
    candidates: int = 0
    accepted: int = 0

    def add(self, candidates: int, accepted: int) -> None:
        """Count one simulated block; raise InputError when the selection is (near-)impossible."""
        self.candidates += candidates
        self.accepted += accepted
        if self.accepted == 0 and self.candidates >= EMPTY_AFTER:
            self._refuse("none")
        elif self.candidates >= FLOOR_AFTER and self.accepted < FLOOR * self.candidates:
            self._refuse(f"{self.accepted:,}")

    def _refuse(self, accepted: str) -> None:
        s = self.selection
        raise InputError(
            None,
            f"selection --min-jets {s.min_jets} --min-btags {s.min_btags}",
            f"a selection that accepts at least {FLOOR:g} of the events (loosen --min-jets / --min-btags)",
            f"{accepted} accepted of the first {self.candidates:,} simulated",
        )
