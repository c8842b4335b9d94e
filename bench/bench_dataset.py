"""Dataset throughput: one training pass over a generated 20-object file, in memory and streamed.

Generates (with h5py, in a temporary folder) a ttH-like file: one SEQUENTIAL input of 20 slots
with 6 features, a GLOBAL input with 3, three particles (6 products), 2 regressions and one
classification; 1,000,000 events (``--quick``: 100,000). Then times one shuffled training
epoch through ``SpanetDataModule.train_dataloader()`` in each mode, after ``setup()``
(validation, scan, statistics and, in memory, the read). The streaming pass runs in a fresh
process so its peak RSS (largest of the process and its DataLoader workers) is its own.

JSON keys: ``in_memory_events_per_s``, ``streaming_events_per_s``, ``streaming_peak_rss_mb``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

EVENT_FILE = """
INPUTS:
  SEQUENTIAL:
    Momenta: {mass: log_normalize, pt: log_normalize, eta: normalize, sin_phi: normalize,
              cos_phi: normalize, btag: none}
  GLOBAL:
    Met: {met: log_normalize, sin_phi: normalize, cos_phi: normalize}
EVENT:
  lt: [b]
  ht: [b, q1, q2]
  h: [b1, b2]
PERMUTATIONS:
  ht: [[q1, q2]]
  h: [[b1, b2]]
REGRESSIONS:
  EVENT: [neutrino_pz, log_invariant_mass]
CLASSIFICATIONS:
  EVENT: [signal]
"""
SLOTS = 20


def generate(path: Path, events: int, chunk: int = 100_000) -> None:
    """Write ``events`` random valid events in chunks (memory stays at one chunk)."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as file:

        def dataset(name: str, shape: tuple[int, ...], dtype) -> h5py.Dataset:
            return file.create_dataset(name, shape=(events, *shape), dtype=dtype)

        mask = dataset("INPUTS/Momenta/MASK", (SLOTS,), bool)
        features = {
            f: dataset(f"INPUTS/Momenta/{f}", (SLOTS,), np.float32)
            for f in ("mass", "pt", "eta", "sin_phi", "cos_phi", "btag")
        }
        met = {f: dataset(f"INPUTS/Met/{f}", (), np.float32) for f in ("met", "sin_phi", "cos_phi")}
        products = ["lt/b", "ht/b", "ht/q1", "ht/q2", "h/b1", "h/b2"]
        targets = {p: dataset(f"TARGETS/{p}", (), np.int64) for p in products}
        regressions = {
            r: dataset(f"REGRESSIONS/EVENT/{r}", (), np.float32)
            for r in ("neutrino_pz", "log_invariant_mass")
        }
        signal = dataset("CLASSIFICATIONS/EVENT/signal", (), np.int64)
        for start in range(0, events, chunk):
            n = min(chunk, events - start)
            stop = start + n
            counts = rng.integers(6, SLOTS + 1, n)
            real = np.arange(SLOTS)[None, :] < counts[:, None]
            mask[start:stop] = real
            for name, data in features.items():
                values = (
                    rng.uniform(0, 100, (n, SLOTS))
                    if name in ("mass", "pt")
                    else rng.normal(0, 1, (n, SLOTS))
                )
                data[start:stop] = np.where(real, values, 0).astype(np.float32)
            for data in met.values():
                data[start:stop] = rng.uniform(0, 1, n).astype(np.float32)
            # products take distinct real slots 0..5, each missing with probability 0.2
            order = np.argsort(rng.random((n, 6)), axis=1)
            for j, product in enumerate(products):
                targets[product][start:stop] = np.where(rng.random(n) < 0.2, -1, order[:, j])
            for data in regressions.values():
                data[start:stop] = rng.normal(0, 1, n).astype(np.float32)
            signal[start:stop] = rng.integers(0, 2, n)


def one_pass(path: Path, mode: str, batch_size: int, workers: int) -> dict[str, float]:
    """Set up the DataModule and time one shuffled training epoch."""
    from spanet_lite.config import parse_event_spec
    from spanet_lite.config.options import Options
    from spanet_lite.dataset.datamodule import SpanetDataModule

    spec = parse_event_spec(EVENT_FILE, source="bench.yaml")
    options = Options(
        batch_size=batch_size,
        dataset_mode=mode,
        num_dataloader_workers=workers,
        balance_particles=True,
        train_validation_split=0.95,
        partial_events=True,  # every event is read (SPANet's default, false, would drop most of them)
    )
    started = time.perf_counter()
    module = SpanetDataModule(spec, options, training_file=path)
    module.setup("fit")
    setup_s = time.perf_counter() - started
    loader = module.train_dataloader()
    events, first_s = 0, 0.0
    started = time.perf_counter()
    for batch in loader:
        if events == 0:
            first_s = time.perf_counter() - started  # worker start-up and the first block read
            first_events = batch.batch_size
        events += batch.batch_size
    elapsed = time.perf_counter() - started
    return {
        "events": events,
        "setup_s": setup_s,
        "pass_s": elapsed,
        "events_per_s": events / elapsed,
        "first_batch_s": first_s,
        "after_first_events_per_s": (events - first_events) / (elapsed - first_s),
        "peak_rss_mb": _common.peak_rss_mb(),
    }


def main() -> None:
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers in streaming mode")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_pass(Path(args.child[0]), args.child[1], args.batch_size, args.workers)))
        return
    events = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.h5"
        generate(path, events)
        results = {}
        for mode in ("memory", "streaming"):
            command = [
                sys.executable,
                __file__,
                "--batch-size",
                str(args.batch_size),
                "--workers",
                str(args.workers),
                "--child",
                str(path),
                mode,
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[mode] = json.loads(output.strip().splitlines()[-1])
    rows = [
        [
            mode,
            f"{r['events']:,}",
            r["setup_s"],
            r["first_batch_s"],
            r["pass_s"],
            r["events_per_s"],
            r["after_first_events_per_s"],
            r["peak_rss_mb"],
        ]
        for mode, r in results.items()
    ]
    figures = {
        "in_memory_events_per_s": results["memory"]["events_per_s"],
        "streaming_events_per_s": results["streaming"]["events_per_s"],
        "streaming_peak_rss_mb": results["streaming"]["peak_rss_mb"],
        "in_memory_peak_rss_mb": results["memory"]["peak_rss_mb"],
        "streaming_first_batch_s": results["streaming"]["first_batch_s"],
        "streaming_after_first_events_per_s": results["streaming"]["after_first_events_per_s"],
        "file_events": events,
        "objects": SLOTS,
        "batch_size": args.batch_size,
        "streaming_workers": args.workers,
    }
    _common.report(
        f"one shuffled training pass, {events:,} events x {SLOTS} objects, batch {args.batch_size}",
        ["mode", "events", "setup s", "1st s", "pass s", "ev/s", "ev/s after 1st", "RSS MB"],
        rows,
        figures,
        args.json,
    )


if __name__ == "__main__":
    main()
