"""Pythia backend of ``spanet-generate``: generation rate, and its validation against the fast backend.

For each process: Pythia events generated per second (after the decay-channel hooks, before the
selection), selected events per second, the acceptance, and the truth-matching figures of the
selected (signal) events: all / some / no particles fully matched, mean jet multiplicity. The
same figures from the fast backend on the same process sit beside them, with the published
SPANet all-hadronic ttbar sample (32.7 % / 52.3 % / 15.0 %) as a reference row.

    python bench/bench_pythia.py --quick                   # ~1 minute: rates on a few hundred events
    python bench/bench_pythia.py --events 1000 --json out.json   # the validation table of the docs

JSON keys: ``pythia_events_per_s`` (selected events/s per process), ``pythia_generated_per_s``,
``validation`` (per process: ``fast`` and ``pythia`` figures).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import h5py
import numpy as np
from _common import parser, report

from spanet_lite.physics.generator.engine import write_file
from spanet_lite.physics.generator.processes import PROCESSES as FAST_PROCESSES
from spanet_lite.physics.pythia import generate

PROCESSES = ("ttbar_allhad", "ttbar_semilep", "ttH_semilep", "hh_4b")
# Selected events per process in --quick mode: about 200 Pythia events each.
QUICK_EVENTS = {"ttbar_allhad": 40, "ttbar_semilep": 20, "ttH_semilep": 6, "hh_4b": 60}
PUBLISHED_TTBAR = {"matched_all": 0.327, "matched_some": 0.523, "matched_none": 0.150}


# Resonances rebuilt from their matched jets: name -> (particle, products).
RESONANCES = {
    "ttbar_allhad": {"W": ("t1", ("q1", "q2")), "t": ("t1", ("b", "q1", "q2"))},
    "ttbar_semilep": {"W": ("ht", ("q1", "q2")), "t": ("ht", ("b", "q1", "q2"))},
    "ttH_semilep": {"W": ("ht", ("q1", "q2")), "t": ("ht", ("b", "q1", "q2")), "H": ("h", ("b1", "b2"))},
    "hh_4b": {"H": ("h1", ("b1", "b2"))},
}


def file_figures(path: Path, process: str) -> dict[str, float]:
    """Per-product matching efficiency and the mass of each resonance rebuilt from its matched jets.

    The mass peak (median) and width (half the 16-84 % range) compare the jet energy response
    of the two backends: a lower peak means jets carry less of their parton's energy.
    """
    fast = FAST_PROCESSES[process]
    with h5py.File(path, "r") as f:
        source = f[f"INPUTS/{fast.sequential_input}"]
        pt, eta, mass = source["pt"][:], source["eta"][:], source["mass"][:]
        phi = source["phi"][:] if "phi" in source else np.arctan2(source["sin_phi"][:], source["cos_phi"][:])
        signal = f["CLASSIFICATIONS/EVENT/signal"][:] == 1 if "CLASSIFICATIONS/EVENT/signal" in f else None
        targets = {f"{p}/{q}": f[f"TARGETS/{p}/{q}"][:] for p, q in fast.targets}
    rows = np.ones(len(pt), bool) if signal is None else signal
    out = {f"product_matched/{k}": float((v[rows] >= 0).mean()) for k, v in targets.items()}
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    for name, (particle, products) in RESONANCES[process].items():
        index = np.stack([targets[f"{particle}/{q}"] for q in products], axis=1)
        ok = rows & (index >= 0).all(axis=1)
        if ok.sum() < 5:
            continue
        r = np.arange(len(pt))[ok, None]
        total = [c[r, index[ok]].sum(axis=1) for c in (e, px, py, pz)]
        m = np.sqrt(np.clip(total[0] ** 2 - total[1] ** 2 - total[2] ** 2 - total[3] ** 2, 0, None))
        low, mid, high = np.percentile(m, [16, 50, 84])
        out[f"mass_peak/{name}"] = float(mid)
        out[f"mass_width/{name}"] = float((high - low) / 2)
    return out


def figures(summary: Any) -> dict[str, float]:
    return {
        "events": summary.events,
        "acceptance": summary.efficiency,
        "matched_all": float(summary.matched_all),
        "matched_some": float(summary.matched_some),
        "matched_none": float(summary.matched_none),
        "mean_jets": float(summary.mean_jets),
        **{f"particle_matched/{k}": float(v) for k, v in summary.particle_matched.items()},
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=None,
                   help="selected events per process (default: 5 x the quick sizes)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--processes", nargs="*", default=list(PROCESSES))
    p.add_argument("--keep", type=Path, default=None, help="write the generated files into this folder")
    args = p.parse_args()
    rows: list[list[Any]] = []
    rates: dict[str, float] = {}
    generated_rates: dict[str, float] = {}
    validation: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.processes:
            n = QUICK_EVENTS[name] if args.quick else (args.events or 5 * QUICK_EVENTS[name])
            start = time.perf_counter()
            folder = args.keep or Path(tmp)
            pythia_file, fast_file = folder / f"{name}_pythia.h5", folder / f"{name}_fast.h5"
            pythia = generate(name, n, args.seed, pythia_file, jobs=args.jobs, progress=False, overwrite=True,
                              chunk_size=max(n // args.jobs, 1) if args.jobs > 1 else 500)
            seconds = time.perf_counter() - start
            fast = write_file(fast_file, name, max(n, 10_000), args.seed, overwrite=True)
            rates[name] = pythia.events / seconds
            generated_rates[name] = pythia.candidates / seconds
            validation[name] = {"fast": {**figures(fast), **file_figures(fast_file, name)},
                                "pythia": {**figures(pythia), **file_figures(pythia_file, name)}}
            for backend, s in (("fast", fast), ("pythia", pythia)):
                rows.append([name, backend, s.events, f"{s.efficiency:.1%}", f"{s.matched_all:.1%}",
                             f"{s.matched_some:.1%}", f"{s.matched_none:.1%}", f"{s.mean_jets:.2f}",
                             f"{pythia.candidates / seconds:.1f}" if backend == "pythia" else "-",
                             f"{rates[name]:.2f}" if backend == "pythia" else "-"])
            if name == "ttbar_allhad":
                rows.append([name, "SPANet sample", "-", "-", *(f"{v:.1%}" for v in PUBLISHED_TTBAR.values()),
                             "-", "-", "-"])
    report(
        "spanet-generate --backend pythia vs fast (matched: fraction of selected signal events)",
        ["process", "backend", "events", "acceptance", "all matched", "some", "none", "mean jets",
         "generated/s", "selected/s"],
        rows,
        {"pythia_events_per_s": rates, "pythia_generated_per_s": generated_rates, "validation": validation,
         "published_ttbar_allhad": PUBLISHED_TTBAR, "jobs": args.jobs, "quick": args.quick},
        args.json,
    )


if __name__ == "__main__":
    main()
