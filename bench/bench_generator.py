"""Throughput of `spanet-generate`: selected events written per second, per process, one core.

Times ``write_file`` end to end (simulation, selection, float32 conversion, gzip HDF5 writing)
into a temporary directory. ``events_per_s`` counts events written (after the selection);
``candidates_per_s`` counts simulated events before it. CPU time of this process is reported
next to wall time, because on a shared machine wall time includes waiting for the CPU.

    python bench/bench_generator.py --quick --json bench_generator.json

JSON keys: ``events_per_s``, ``events_per_cpu_s``, ``candidates_per_s``, ``selection_efficiency``
(each per process), ``peak_rss_mb``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _common import parser, peak_rss_mb, report

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")  # one core, as the requirement states

from spanet_lite.physics.generator import PROCESSES, write_file  # noqa: E402

FULL = {"ttbar_allhad": 200_000, "ttbar_semilep": 200_000, "ttH_semilep": 50_000, "hh_4b": 200_000}
QUICK = {"ttbar_allhad": 20_000, "ttbar_semilep": 20_000, "ttH_semilep": 5_000, "hh_4b": 20_000}


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    sizes = QUICK if args.quick else FULL
    rows, events_per_s, cpu_events_per_s, candidates_per_s, efficiency = [], {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as folder:
        write_file(Path(folder) / "warmup.h5", "hh_4b", events=1000, seed=0)
        for name in PROCESSES:
            events = sizes[name]
            wall, cpu = time.perf_counter(), time.process_time()
            summary = write_file(Path(folder) / f"{name}.h5", name, events=events, seed=1)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            size_mb = (Path(folder) / f"{name}.h5").stat().st_size / 1e6
            events_per_s[name] = events / wall
            cpu_events_per_s[name] = events / cpu
            candidates_per_s[name] = summary.candidates / wall
            efficiency[name] = summary.efficiency
            rows.append(
                [
                    name,
                    f"{events:,}",
                    events / wall,
                    events / cpu,
                    summary.candidates / wall,
                    f"{summary.efficiency:.1%}",
                    f"{size_mb / events * 1e4:.2f}",
                ]
            )
    figures = {
        "events_per_s": events_per_s,
        "events_per_cpu_s": cpu_events_per_s,
        "candidates_per_s": candidates_per_s,
        "selection_efficiency": efficiency,
        "peak_rss_mb": peak_rss_mb(),
        "quick": args.quick,
    }
    report(
        "spanet-generate throughput (one core)",
        [
            "process",
            "events",
            "events/s (wall)",
            "events/s (cpu)",
            "candidates/s (wall)",
            "efficiency",
            "MB per 10k events",
        ],
        rows,
        figures,
        args.json,
    )


if __name__ == "__main__":
    main()
