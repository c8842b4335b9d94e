"""How fast `spanet-inspect --event-file` validates a large file, and how much memory it needs.

Writes a ttbar-like file (all-hadronic ttbar event file, 20 jet slots, 5 features) with h5py in
a temporary directory, chunk by chunk, then validates it in a fresh child process so that the
reported peak RSS belongs to validation alone (interpreter, numpy and h5py included).

    python bench/bench_inspect.py            # 5,000,000 events (~2.4 GB on disk)
    python bench/bench_inspect.py --quick    # 200,000 events

JSON keys: ``events``, ``file_mb``, ``generate_seconds``, ``seconds`` (validation alone),
``events_per_s``, ``peak_rss_mb``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
EVENT_FILE = REPO / "event_files" / "full_hadronic_ttbar.yaml"
MAX_JETS = 20
WRITE_CHUNK = 65536
FEATURES = ("mass", "pt", "eta", "phi", "btag")
LOG_FEATURES = ("mass", "pt")  # log_normalize in the event file
PRODUCTS = {"t1": ("q1", "q2", "b"), "t2": ("q1", "q2", "b")}


def generate(path: Path, num_events: int, seed: int = 0) -> None:
    """Write ``num_events`` events; each has 6..20 real jets and six distinct matched jets,
    of which each is dropped (-1) with probability 0.1, like an imperfect truth matching."""
    rng = np.random.default_rng(seed)
    storage = (min(num_events, 8192), MAX_JETS)
    with h5py.File(path, "w") as file:
        mask = file.create_dataset("INPUTS/Source/MASK", (num_events, MAX_JETS), bool, chunks=storage)
        features = {name: file.create_dataset(f"INPUTS/Source/{name}", (num_events, MAX_JETS), np.float32,
                                              chunks=storage) for name in FEATURES}
        targets = {f"{p}/{q}": file.create_dataset(f"TARGETS/{p}/{q}", (num_events,), np.int64,
                                                   chunks=(storage[0],))
                   for p, products in PRODUCTS.items() for q in products}
        for start in range(0, num_events, WRITE_CHUNK):
            stop = min(start + WRITE_CHUNK, num_events)
            size = stop - start
            real = np.arange(MAX_JETS)[None, :] < rng.integers(6, MAX_JETS + 1, size)[:, None]  # (B, 20)
            mask[start:stop] = real
            for name in FEATURES:
                values = rng.standard_normal((size, MAX_JETS), dtype=np.float32)
                if name in LOG_FEATURES:  # x -> log(x + 1) needs x > -1
                    np.abs(values, out=values)
                values[~real] = 0.0
                features[name][start:stop] = values
            # Random keys with padding sorted last: the first six columns are distinct real jets.
            keys = rng.random((size, MAX_JETS))
            keys[~real] = 2.0
            chosen = np.argsort(keys, axis=1)[:, :6]  # (B, 6)
            chosen[rng.random(chosen.shape) < 0.1] = -1
            for column, key in enumerate(targets):
                targets[key][start:stop] = chosen[:, column]


def validate_in_this_process(path: str) -> None:
    """Child mode: validate, then print seconds, peak RSS and the verdict as JSON."""
    from spanet_lite.config import load_event_spec
    from spanet_lite.dataset.schema import validate_file

    spec = load_event_spec(EVENT_FILE)
    started = time.perf_counter()
    report = validate_file(path, spec)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sys.stdout.write(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "ok": report.ok,
                                 "num_events": report.num_events}) + "\n")


def main() -> None:
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="number of events (overrides --quick)")
    parser.add_argument("--validate-only", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.validate_only:
        validate_in_this_process(args.validate_only)
        return
    num_events = args.events or (200_000 if args.quick else 5_000_000)
    with tempfile.TemporaryDirectory(prefix="bench_inspect.") as folder:
        path = Path(folder) / "ttbar.h5"
        started = time.perf_counter()
        generate(path, num_events)
        generate_seconds = time.perf_counter() - started
        file_mb = path.stat().st_size / 2**20
        child = subprocess.run([sys.executable, __file__, "--validate-only", str(path)],
                               capture_output=True, text=True, check=True)
    result = json.loads(child.stdout)
    if not result["ok"] or result["num_events"] != num_events:
        raise SystemExit(f"the generated file did not validate: {result}")
    figures = {
        "events": num_events,
        "file_mb": round(file_mb, 1),
        "generate_seconds": round(generate_seconds, 2),
        "seconds": round(result["seconds"], 3),
        "events_per_s": round(num_events / result["seconds"]),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
    }
    rows = [[key, value] for key, value in figures.items()]
    _common.report("spanet-inspect --event-file: chunked validation", ["figure", "value"], rows, figures,
                   args.json)


if __name__ == "__main__":
    main()
