"""Pythia event records (an awkward batch from ``Pythia.nextBatch``) as flat numpy arrays, and
the truth partons read from them.

One ``nextBatch`` call translates a whole batch of C++ event records at once; everything
afterwards is numpy over the flattened particle list (``offsets[i]:offsets[i+1]`` is event i),
which keeps the Python overhead per event far below Pythia's own ~10 ms.

Truth partons are the decay products *before showering*: Pythia keeps every recoil or
radiation step of a resonance as a new copy, so we follow each top / W / Higgs from its
hard-process entry down its chain of copies (a daughter with the same id) to the last copy,
and take that copy's daughters: the b and W of t -> b W, the q q' or l nu of the W, the
b bbar of H -> b bbar. Those daughters are exactly the partons that then start to shower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Truth slots per topology: the role of every parton (and lepton / neutrino) we keep.
TRUTH_SLOTS: dict[str, tuple[str, ...]] = {
    "ttbar_allhad": ("t1.b", "t1.q1", "t1.q2", "t2.b", "t2.q1", "t2.q2"),
    "ttbar_semilep": ("ht.b", "ht.q1", "ht.q2", "lt.b", "lt.l", "lt.nu"),
    "ttH_semilep": ("ht.b", "ht.q1", "ht.q2", "lt.b", "lt.l", "lt.nu", "h.b1", "h.b2"),
    "hh_4b": ("h1.b1", "h1.b2", "h2.b1", "h2.b2"),
}


@dataclass
class FlatBatch:
    """A batch of events as flat particle arrays; event ``i`` is ``offsets[i]:offsets[i + 1]``.

    Momenta in GeV; ``status``, ``mother1``, ``daughter1/2`` follow Pythia's event-record
    conventions (status > 0: final state; indices count within the event).
    """

    offsets: NDArray[np.int64]
    event: NDArray[np.int64]
    pid: NDArray[np.int32]
    status: NDArray[np.int32]
    mother1: NDArray[np.int32]
    daughter1: NDArray[np.int32]
    daughter2: NDArray[np.int32]
    px: NDArray[np.float64]
    py: NDArray[np.float64]
    pz: NDArray[np.float64]
    e: NDArray[np.float64]

    @property
    def num_events(self) -> int:
        return len(self.offsets) - 1

    @property
    def pt(self) -> NDArray[np.float64]:
        return np.hypot(self.px, self.py)

    @classmethod
    def from_awkward(cls, batch: Any) -> FlatBatch:
        """Flatten the awkward array ``Pythia.nextBatch`` returns."""
        import awkward as ak

        prt = batch.prt
        counts = ak.to_numpy(ak.num(prt.id)).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])

        def flat(x: Any, dtype: Any) -> NDArray[Any]:
            return np.ascontiguousarray(ak.to_numpy(ak.flatten(x)), dtype=dtype)

        return cls(
            offsets=offsets,
            event=np.repeat(np.arange(len(counts)), counts),
            pid=flat(prt.id, np.int32),
            status=flat(prt.status, np.int32),
            mother1=flat(prt.mother1, np.int32),
            daughter1=flat(prt.daughter1, np.int32),
            daughter2=flat(prt.daughter2, np.int32),
            px=flat(prt.p.px, np.float64),
            py=flat(prt.p.py, np.float64),
            pz=flat(prt.p.pz, np.float64),
            e=flat(prt.p.e, np.float64),
        )


@dataclass
class Truth:
    """Truth four-momenta (E, px, py, pz) per slot, shape (events, slots, 4); NaN where absent.

    ``pid`` holds the PDG id per slot (0 where absent). ``system_mass`` is the invariant mass
    (GeV) of the last copies of the heavy particles: m(t tbar), m(t tbar X) with X the Higgs or
    the tt + bb stand-in's b bbar system, m(h h).
    """

    slots: tuple[str, ...]
    p4: NDArray[np.float64]
    pid: NDArray[np.int32]
    system_mass: NDArray[np.float64]

    def index(self, slot: str) -> int:
        return self.slots.index(slot)


def _daughters(d1: int, d2: int) -> list[int]:
    """Pythia's daughter convention: d2 == 0 one daughter; d2 >= d1 a range; d2 < d1 two."""
    if d1 <= 0:
        return []
    if d2 == 0 or d2 == d1:
        return [d1]
    if d2 > d1:
        return list(range(d1, d2 + 1))
    return [d1, d2]


def _last_copy(pid: NDArray[np.int32], d1: NDArray[np.int32], d2: NDArray[np.int32], i: int) -> int:
    """Follow the chain of copies (daughters with the same id) of entry ``i`` to its end."""
    while True:
        same = [j for j in _daughters(int(d1[i]), int(d2[i])) if pid[j] == pid[i]]
        if not same:
            return i
        i = same[0]


def _decay(pid: NDArray[np.int32], d1: NDArray[np.int32], d2: NDArray[np.int32], i: int) -> list[int]:
    """Daughters of the last copy of ``i``: the decay products before they shower."""
    last = _last_copy(pid, d1, d2, i)
    return _daughters(int(d1[last]), int(d2[last]))


def extract_truth(batch: FlatBatch, topology: str) -> Truth:
    """Read the truth slots of ``topology`` (a key of :data:`TRUTH_SLOTS`) for every event.

    The two tops of all-hadronic ttbar are written top first, antitop second (the event-file
    symmetry makes the order irrelevant), a W's quarks up-type first. For semi-leptonic
    topologies ``ht`` is the top whose W decays to quarks. Higgs bosons are taken in record order.
    """
    slots = TRUTH_SLOTS[topology]
    n = batch.num_events
    p4 = np.full((n, len(slots), 4), np.nan)
    pids = np.zeros((n, len(slots)), dtype=np.int32)
    column = {s: k for k, s in enumerate(slots)}
    system_mass = np.full(n, np.nan)

    for ev in range(n):
        lo, hi = int(batch.offsets[ev]), int(batch.offsets[ev + 1])
        pid, status = batch.pid[lo:hi], batch.status[lo:hi]
        d1, d2 = batch.daughter1[lo:hi], batch.daughter2[lo:hi]
        found: dict[str, int] = {}

        def top_products(i: int, pid: Any = pid, d1: Any = d1, d2: Any = d2) -> tuple[int, list[int]]:
            products = _decay(pid, d1, d2, i)
            b = next(j for j in products if abs(pid[j]) == 5)
            w = next(j for j in products if abs(pid[j]) == 24)
            w_products = sorted(_decay(pid, d1, d2, w), key=lambda j: (abs(pid[j]) % 2, abs(pid[j])))
            return b, w_products

        tops = [int(i) for i in np.flatnonzero((np.abs(pid) == 6) & (status == -22))]
        tops.sort(key=lambda i: -pid[i])
        system = [_last_copy(pid, d1, d2, i) for i in tops]
        if topology == "ttbar_allhad":
            for name, i in zip(("t1", "t2"), tops):
                b, (q1, q2) = top_products(i)
                found |= {f"{name}.b": b, f"{name}.q1": q1, f"{name}.q2": q2}
        elif topology in ("ttbar_semilep", "ttH_semilep"):
            for i in tops:
                b, w_products = top_products(i)
                leptons = [j for j in w_products if abs(pid[j]) in (11, 13, 15)]
                if leptons:
                    nu = next(j for j in w_products if abs(pid[j]) in (12, 14, 16))
                    found |= {"lt.b": b, "lt.l": leptons[0], "lt.nu": nu}
                else:
                    found |= {"ht.b": b, "ht.q1": w_products[0], "ht.q2": w_products[1]}
        higgs = [int(i) for i in np.flatnonzero((pid == 25) & (status == -22))]
        if topology in ("ttH_semilep", "hh_4b") and higgs:
            names = ("h",) if topology == "ttH_semilep" else ("h1", "h2")
            for name, i in zip(names, higgs):
                bs = sorted(_decay(pid, d1, d2, i), key=lambda j: -pid[j])
                found |= {f"{name}.b1": bs[0], f"{name}.b2": bs[1]}
                system.append(_last_copy(pid, d1, d2, i))
        if system:
            g = lo + np.asarray(system)
            e, px, py, pz = (x[g].sum() for x in (batch.e, batch.px, batch.py, batch.pz))
            system_mass[ev] = np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))

        for slot, j in found.items():
            k = column[slot]
            at = lo + j
            p4[ev, k] = (batch.e[at], batch.px[at], batch.py[at], batch.pz[at])
            pids[ev, k] = batch.pid[at]
    return Truth(slots, p4, pids, system_mass)
