"""What a generation run is asked for, checked in one place for both backends.

:func:`~.engine.write_file`, :func:`~.engine.generate_arrays` and the Pythia backend's
``generate`` build a :class:`Request` before any work, so a notebook call and
``spanet-generate`` refuse the same values by the same rule. Each line names the value as its
caller spells it (``names``): a notebook reads the keyword it passed (:data:`KEYWORDS`),
``spanet-generate`` checks its flags by building a Request with their names first.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field, replace
from types import MappingProxyType

from spanet_lite.config.options_file import as_integer
from spanet_lite.config.options_validation import check_chunk_size, check_seed
from spanet_lite.config.suggest import describe
from spanet_lite.errors import InputError
from spanet_lite.physics.generator.config import PhysicsConfig, Selection
from spanet_lite.physics.generator.processes import PROCESSES, Process

KEYWORDS: Mapping[str, str] = MappingProxyType({
    "events": "events",
    "seed": "seed",
    "config": "config",
    "min_jets": "selection.min_jets",
    "min_btags": "selection.min_btags",
    "max_objects": "max_objects",
    "signal_fraction": "signal_fraction",
    "chunk_size": "chunk_size",
    "jobs": "jobs",
})
"""How a :class:`Request`'s lines name each value by default: the keywords of
:func:`~.engine.write_file` and :func:`~.engine.generate_arrays`. A caller that takes a value
under another name passes the whole mapping with its own (``Request(..., names=...)``)."""


def get_process(name: str) -> Process:
    """The process called ``name``, or a one-line InputError listing the ones there are."""
    try:
        return PROCESSES[name]
    except KeyError:
        raise InputError(None, "process", f"one of {', '.join(PROCESSES)}", repr(name)) from None


@dataclass(frozen=True)
class Request:
    """``events`` selected events of ``process`` from ``seed``, with the options both backends share.

    ``selection`` and ``max_objects`` left at None mean the process's own; ``signal_fraction``
    None means the backend's default (the ttH share: among candidates for the fast backend,
    among selected events for Pythia). ``chunk_size`` is events per write (fast) or per chunk
    (Pythia). ``jobs`` is the number of worker processes (Pythia; the fast backend uses one
    process). Construction raises an InputError for a value no run could use, naming the value
    as ``names`` (:data:`KEYWORDS` by default) spells it.

    ``jobs`` is checked for both backends: the fast one runs in one vectorised process whatever
    the value, yet refuses what Pythia refuses, so that no call one backend refuses runs on the other.
    """

    process: Process
    events: int
    seed: int
    config: PhysicsConfig = field(default_factory=PhysicsConfig)
    selection: Selection | None = None
    max_objects: int | None = None
    signal_fraction: float | None = None
    chunk_size: int = 1
    jobs: int = 1
    names: InitVar[Mapping[str, str]] = KEYWORDS
    """How the lines name each value (keys as in :data:`KEYWORDS`); not kept."""

    def __post_init__(self, names: Mapping[str, str]) -> None:
        # A notebook may pass events=1e6 or a numpy integer: whole numbers become ints here.
        for key in ("events", "jobs"):
            object.__setattr__(self, key, as_integer(getattr(self, key), names[key]))
        if self.max_objects is not None:
            object.__setattr__(self, "max_objects", as_integer(self.max_objects, names["max_objects"]))
        object.__setattr__(self, "seed", check_seed(self.seed, names["seed"], stored=True))
        if self.jobs < 1:
            raise InputError(None, names["jobs"], "a positive number of worker processes", str(self.jobs))
        if self.events < 1:
            raise InputError(None, names["events"], "a positive number of events", str(self.events))
        if self.selection is not None:
            # A dict was an AttributeError and Selection(min_jets="4") a TypeError from "<": a
            # Selection of counts by the integer rule, stored as ints.
            if not isinstance(self.selection, Selection):
                raise InputError(None, "selection", "a Selection (spanet_lite.physics.generator) or None",
                                 type(self.selection).__name__)  # the command builds a Selection
            counts = {key: as_integer(getattr(self.selection, key), names[key])
                      for key in ("min_jets", "min_btags")}
            object.__setattr__(self, "selection", replace(self.selection, **counts))
        cuts = (("min_jets", self.cuts.min_jets), ("min_btags", self.cuts.min_btags))
        for key, value in cuts:
            if value < 0:
                raise InputError(None, names[key], "a non-negative number", str(value))
        object.__setattr__(self, "chunk_size", check_chunk_size(self.chunk_size, names["chunk_size"]))
        fraction = self.signal_fraction
        if fraction is not None and (not isinstance(fraction, numbers.Real) or isinstance(fraction, bool)
                                     or not 0.0 <= fraction <= 1.0):
            got = describe(fraction).removesuffix(" (a number)")  # 2.0 reads as the command echoes it
            raise InputError(None, names["signal_fraction"], "a fraction between 0 and 1", got)
        process = self.process
        if fraction is not None and not process.has_background:  # else taken and ignored, silently
            mixed = ", ".join(p.name for p in PROCESSES.values() if p.has_background)
            raise InputError(None, names["signal_fraction"], f"no value for {process.name} (only {mixed} "
                             "mixes signal and background)", describe(fraction).removesuffix(" (a number)"))
        # The default selection's jets, and the lepton's slot, must fit in a row.
        least = max(process.selection.min_jets, 1) + (1 if process.has_lepton else 0)
        if self.max_objects is not None and self.max_objects < least:
            raise InputError(
                None, names["max_objects"], f"at least {least} for {process.name}", str(self.max_objects)
            )
        if self.events > self.max_events:
            raise InputError(
                None, names["events"], f"at most {self.max_events:,} (HDF5 counts the values of a "
                f"dataset, events x {self.width} objects, in a signed 64-bit integer)", str(self.events),
            )
        if not isinstance(self.config, PhysicsConfig):  # a dict had no .problems(): AttributeError
            raise InputError(None, names["config"], "a PhysicsConfig (spanet_lite.physics.generator)",
                             type(self.config).__name__)
        problems = self.config.problems()
        if problems:
            raise InputError(None, names["config"], "usable physics parameters", "; ".join(problems))
        jet_slots = self.width - (1 if process.has_lepton else 0)
        for key, value in cuts:
            if value > jet_slots:
                raise InputError(None, names[key], f"at most {jet_slots}, the jet slots of "
                                 f"{names['max_objects']} {self.width} (every event would be cut to "
                                 "fewer jets)", str(value))

    @property
    def cuts(self) -> Selection:
        """The selection applied: the one asked for, else the process's."""
        return self.selection or self.process.selection

    @property
    def width(self) -> int:
        """Padded width of the SEQUENTIAL input: the one asked for, else the process's."""
        return self.process.max_objects if self.max_objects is None else self.max_objects

    @property
    def max_events(self) -> int:
        """The most events a file can hold: its widest datasets have ``width`` values an event,
        and HDF5 counts a dataset's values in a signed 64-bit integer (beyond it, h5py and numpy
        fail with OverflowError or "array is too big")."""
        return (2**63 - 1) // self.width
