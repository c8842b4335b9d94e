"""`spanet-data` on a large file against simply reading and writing it, with peak memory.

Generates an all-hadronic ttbar file with the built-in generator (gzip HDF5, as `spanet-generate`
writes it), then runs, each in a fresh child process so that its peak RSS is its own:

* ``copy``: read every dataset in blocks and write it to a new file with the same filters
  (h5py only, no validation): the floor any streaming operation is compared with;
* ``split``: ``spanet-data split --fractions 0.5 0.5`` (validation included);
* ``concat``: ``spanet-data concat`` of the two halves back into one file;
* ``split --shuffle``: ``--fractions 0.8 0.1 0.1 --shuffle`` (two passes through a scratch file).

    python bench/bench_data.py                  # 5,000,000 events (~600 MB)
    python bench/bench_data.py --quick          # 200,000 events
    python bench/bench_data.py --input big.h5   # an existing ttbar_allhad file

JSON keys: ``events``, ``file_mb``, ``generate_seconds`` (null with ``--input``), ``results``
(per operation above: ``seconds``, ``peak_rss_mb``, ``vs_copy``).
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

REPO = Path(__file__).resolve().parents[1]
EVENT_FILE = REPO / "event_files" / "full_hadronic_ttbar.yaml"
BLOCK = 65536


def copy(source: str, target: str) -> None:
    with h5py.File(source, "r") as original, h5py.File(target, "w") as out:
        datasets: list[tuple[str, h5py.Dataset]] = []
        original.visititems(lambda name, node: datasets.append((name, node))
                            if isinstance(node, h5py.Dataset) else None)
        for name, node in datasets:
            new = out.create_dataset(name, shape=node.shape, dtype=node.dtype, chunks=node.chunks,
                                     compression=node.compression, compression_opts=node.compression_opts,
                                     shuffle=node.shuffle)
            for start in range(0, node.shape[0], BLOCK):
                new[start:start + BLOCK] = node[start:start + BLOCK]


def child(task: str, arguments: list[str]) -> None:
    """Child mode: run one task, then print its seconds and peak RSS as JSON."""
    started = time.perf_counter()
    if task == "copy":
        copy(*arguments)
    else:
        from spanet_lite.cli.data import main as data

        code = data(arguments)
        if code != 0:
            raise SystemExit(f"spanet-data {' '.join(arguments)} exited {code}")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sys.stdout.write(json.dumps({"seconds": seconds, "peak_rss_mb": peak}) + "\n")


def run(task: str, *arguments: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", task, *arguments], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="number of events (overrides --quick)")
    parser.add_argument("--input", type=Path, help="use this ttbar_allhad file instead of generating one")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return
    num_events = args.events or (200_000 if args.quick else 5_000_000)
    e = ["-e", str(EVENT_FILE), "--quiet"]
    with tempfile.TemporaryDirectory(prefix="bench_data.", dir="/tmp") as folder:
        work = Path(folder)
        source = args.input
        generate_seconds = None
        if source is None:
            from spanet_lite.physics.generator import write_file

            source = work / "ttbar.h5"
            started = time.perf_counter()
            write_file(source, "ttbar_allhad", events=num_events, seed=11)
            generate_seconds = time.perf_counter() - started
        with h5py.File(source, "r") as file:
            num_events = file["INPUTS/Source/MASK"].shape[0]
        results = {
            "copy": run("copy", str(source), str(work / "copy.h5")),
            "split": run("split", "split", str(source), "--fractions", "0.5", "0.5",
                         "-o", str(work / "a.h5"), str(work / "b.h5"), *e),
            "concat": run("concat", "concat", str(work / "a.h5"), str(work / "b.h5"),
                          "-o", str(work / "c.h5"), *e),
            "split --shuffle": run("split", "split", str(source), "--fractions", "0.8", "0.1", "0.1",
                                   "--shuffle", "-o", *(str(work / f"r{i}.h5") for i in range(3)), *e),
        }
        file_mb = Path(source).stat().st_size / 2**20
    floor = results["copy"]["seconds"]
    rows = [[name, round(r["seconds"], 1), round(num_events / r["seconds"]), f"{r['seconds'] / floor:.2f}",
             round(r["peak_rss_mb"])] for name, r in results.items()]
    figures = {"events": num_events, "file_mb": round(file_mb, 1), "generate_seconds": generate_seconds,
               "results": {name: {"seconds": round(r["seconds"], 2),
                                  "peak_rss_mb": round(r["peak_rss_mb"], 1),
                                  "vs_copy": round(r["seconds"] / floor, 2)} for name, r in results.items()}}
    _common.report(f"spanet-data on {num_events:,} ttbar_allhad events ({file_mb:,.0f} MB, gzip)",
                   ["operation", "seconds", "events/s", "x copy", "peak RSS (MB)"], rows, figures, args.json)


if __name__ == "__main__":
    main()
