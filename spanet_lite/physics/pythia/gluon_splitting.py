"""The fast backend's tt + b bbar gluon splitting against Pythia's parton shower, at generator level.

Pythia has no tt + b bbar matrix element, but its shower (ISR and FSR) splits gluons into
b bbar pairs in ttbar events. This compares, in the region a b-jet analysis sees (both extra b
quarks with pT > ``--pt-min`` and |eta| < 2.5), the pair mass, Delta R(b, b) and the leading
extra b's pT of

* **Pythia**: ``pp -> t tbar`` at 13 TeV (Monash tune, ISR + FSR; hadronisation and MPI off,
  since only the shower's partons are read, which also makes it ~10x faster), the b and bbar
  from one gluon (``g -> b bbar`` anywhere in the shower, after following each b's chain of
  recoil copies back to where it was made) and not from a top decay; the pair with the largest
  scalar pT sum per event;
* **fast**: the ``ttbb_*`` model of :class:`~spanet_lite.physics.generator.config.PhysicsConfig`
  exactly as ``ttH_semilep`` draws its background pair (ISR recoil, balanced pT, rapidity,
  mass, 1 + cos^2 splitting).

Run (a few minutes for 40,000 ttbar events on one loaded core)::

    python -m spanet_lite.physics.pythia.gluon_splitting --events 40000 --png docs/images/ttbb_splitting.png
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ETA_MAX = 2.5


@dataclass
class Pairs:
    """Extra b bbar pairs: the two four-vectors (E, px, py, pz), each (n, 4)."""

    b1: NDArray[np.float64]
    b2: NDArray[np.float64]

    def observables(self) -> dict[str, NDArray[np.float64]]:
        s = self.b1 + self.b2
        mass = np.sqrt(np.maximum(s[:, 0] ** 2 - (s[:, 1:] ** 2).sum(1), 0.0))
        pt1, pt2 = np.hypot(self.b1[:, 1], self.b1[:, 2]), np.hypot(self.b2[:, 1], self.b2[:, 2])
        eta1, eta2 = np.arcsinh(self.b1[:, 3] / pt1), np.arcsinh(self.b2[:, 3] / pt2)
        phi1, phi2 = np.arctan2(self.b1[:, 2], self.b1[:, 1]), np.arctan2(self.b2[:, 2], self.b2[:, 1])
        dphi = np.angle(np.exp(1j * (phi1 - phi2)))
        return {"m_bb": mass, "dr_bb": np.hypot(eta1 - eta2, dphi), "lead_pt": np.maximum(pt1, pt2)}

    def accepted(self, pt_min: float) -> Pairs:
        keep = np.ones(len(self.b1), dtype=bool)
        for b in (self.b1, self.b2):
            pt = np.hypot(b[:, 1], b[:, 2])
            keep &= (pt > pt_min) & (np.abs(np.arcsinh(b[:, 3] / np.maximum(pt, 1e-9))) < ETA_MAX)
        return Pairs(self.b1[keep], self.b2[keep])


def fast_pairs(n: int, seed: int = 1) -> Pairs:
    """The fast backend's background pair, drawn as ``simulate_tth_semilep`` draws it."""
    from spanet_lite.physics.generator.config import B_MASS, PhysicsConfig
    from spanet_lite.physics.generator.processes import ttx_system
    from spanet_lite.physics.generator.production import sample_isr, splitting_decay

    rng, config = np.random.default_rng(seed), PhysicsConfig()
    isr = sample_isr(rng, n, config)
    _, _, x, mass = ttx_system(rng, n, config, isr, np.zeros(n, dtype=bool), np.float64)
    b1, b2 = splitting_decay(rng, x, mass, B_MASS, B_MASS)
    return Pairs(*(np.stack([v.e, v.px, v.py, v.pz], axis=1) for v in (b1, b2)))


def pythia_pairs(n: int, seed: int = 1, batch: int = 500) -> tuple[Pairs, int]:
    """Shower g -> b bbar pairs in ``n`` Pythia ttbar events; also the number of events with one."""
    import pythia8mc

    from spanet_lite.physics.pythia.processes import COMMON_SETTINGS, TTBAR
    from spanet_lite.physics.pythia.record import FlatBatch

    pythia = pythia8mc.Pythia("", False)
    off = ("PartonLevel:MPI", "HadronLevel:all")
    settings = [s for s in COMMON_SETTINGS if not s.startswith(off)]
    settings += ["PartonLevel:MPI = off", "HadronLevel:all = off", *TTBAR]
    settings += ["Random:setSeed = on", f"Random:seed = {seed}"]
    for line in settings:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialise ttbar")
    firsts, seconds, with_pair = [], [], 0
    done = 0
    while done < n:
        size = min(batch, n - done)
        flat = FlatBatch.from_awkward(pythia.nextBatch(size))
        done += size
        found = _extra_pairs(flat)
        with_pair += len(found[0])
        firsts.append(found[0])
        seconds.append(found[1])
    return Pairs(np.concatenate(firsts), np.concatenate(seconds)), with_pair


def _extra_pairs(flat) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per event, the b bbar pair from one gluon (not a top) with the largest scalar pT sum."""
    start = flat.offsets[flat.event]
    final_b = np.flatnonzero((flat.status > 0) & (np.abs(flat.pid) == 5))
    origin = final_b.copy()
    for _ in range(200):  # follow recoil copies (the mother has the same id) back to the creation
        mother = start[origin] + flat.mother1[origin]
        same = (flat.mother1[origin] > 0) & (flat.pid[mother] == flat.pid[origin])
        if not same.any():
            break
        origin = np.where(same, mother, origin)
    parent = start[origin] + flat.mother1[origin]
    extra = (flat.pid[parent] == 21) & (flat.mother1[origin] > 0)
    b, parent = final_b[extra], parent[extra]
    p4 = np.stack([flat.e, flat.px, flat.py, flat.pz], axis=1)
    pt = flat.pt
    best: dict[int, tuple[float, int, int]] = {}
    by_parent: dict[int, list[int]] = {}
    for index, gluon in zip(b.tolist(), parent.tolist()):
        by_parent.setdefault(gluon, []).append(index)
    for gluon, members in by_parent.items():
        quarks = [i for i in members if flat.pid[i] > 0]
        antiquarks = [i for i in members if flat.pid[i] < 0]
        if not quarks or not antiquarks:
            continue
        q, a = quarks[0], antiquarks[0]
        event = int(flat.event[gluon])
        total = float(pt[q] + pt[a])
        if event not in best or total > best[event][0]:
            best[event] = (total, q, a)
    rows = sorted(best.values(), key=lambda item: item[1])
    first = np.array([p4[q] for _, q, _ in rows]).reshape(-1, 4)
    second = np.array([p4[a] for _, _, a in rows]).reshape(-1, 4)
    return first, second


def summary(pairs: Pairs) -> dict[str, tuple[float, float, float]]:
    """16 / 50 / 84 % quantiles of each observable."""
    return {k: tuple(np.percentile(v, [16, 50, 84])) for k, v in pairs.observables().items()}  # type: ignore[misc]


def plot(fast: Pairs, pythia: Pairs, path: Path, pt_min: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranges = {
        "m_bb": (0, 300, "m(b, b) [GeV]"),
        "dr_bb": (0, 5, "ΔR(b, b)"),
        "lead_pt": (0, 400, "leading extra b pT [GeV]"),
    }
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ours, theirs = fast.observables(), pythia.observables()
    for axis, (key, (low, high, label)) in zip(axes, ranges.items()):
        bins = np.linspace(low, high, 31)
        curves = (
            (theirs[key], f"Pythia shower ({len(pythia.b1):,})"),
            (ours[key], f"fast ({len(fast.b1):,})"),
        )
        for values, name in curves:
            axis.hist(values, bins=bins, density=True, histtype="step", lw=2, label=name)
        axis.set_xlabel(label)
        axis.set_ylabel("normalised")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"extra b bbar pair in tt + bb, both b with pT > {pt_min:g} GeV and |η| < {ETA_MAX}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40000, help="Pythia ttbar events")
    parser.add_argument("--fast-events", type=int, default=400000)
    parser.add_argument("--pt-min", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--png", type=Path, help="write the comparison plot here")
    args = parser.parse_args(argv)
    pythia, with_pair = pythia_pairs(args.events, args.seed)
    fast = fast_pairs(args.fast_events, args.seed)
    cut_pythia, cut_fast = pythia.accepted(args.pt_min), fast.accepted(args.pt_min)
    lines = [
        f"Pythia: {with_pair} of {args.events} ttbar events have a shower g -> b bbar pair, "
        f"{len(cut_pythia.b1)} with both b in pT > {args.pt_min:g} GeV, |eta| < {ETA_MAX}",
        f"fast: {len(cut_fast.b1)} of {args.fast_events} pairs in the same region",
        "| observable | fast 16 / 50 / 84 % | Pythia 16 / 50 / 84 % |",
        "|---|---|---|",
    ]
    ours, theirs = summary(cut_fast), summary(cut_pythia)
    for key in ours:
        fast_text, pythia_text = (" / ".join(f"{v:.2f}" for v in q[key]) for q in (ours, theirs))
        lines.append(f"| {key} | {fast_text} | {pythia_text} |")
    if args.png:
        plot(cut_fast, cut_pythia, args.png, args.pt_min)
        lines.append(f"plot written to {args.png}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
