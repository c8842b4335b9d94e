"""CPU training speed side by side with SPANet v2, on SPANet's own ttbar example options.

    python bench/bench_cpu.py --spanet-repo ../SPANet --spanet-python ../spanet-venv/bin/python \
        --json bench_cpu.json

1. generates ``--events`` all-hadronic ttbar events (``spanet-generate ttbar_allhad``, seed 1);
2. writes one options file used by both tools: SPANet's
   ``options_files/full_hadronic_ttbar/example.json`` read from ``--spanet-repo`` with only the
   event file (SPANet's ``event_files/full_hadronic_ttbar.yaml``) and the training file changed;
   without ``--spanet-repo``, the same values from :data:`_common.SPANET_TTBAR` and the
   generator's event file;
3. times each tool in its own interpreter with ``_train_window.py`` (the same Lightning
   callback for both: ``--warm`` steps, then a ``--seconds`` window, validation taken out),
   ``--rounds`` times, interleaved (the order alternates every round, so that a drifting
   machine load hits both alike);
4. reports the median training events/s of each tool, the ratio of the medians, the median
   of the per-round ratios, and the load average before every run (a shared machine's
   figures drift; only ratios from one run mean anything).

spanet_lite runs with its defaults (``compile: auto``, which compiles this run: SPANet's 500
epochs plan far more than ``AUTO_MIN_STEPS`` steps, and the one-off compile time is in
``process_s``, outside the window; each run's ``compile_mode`` says what it did;
``pair_features: auto``, which adds pair features to SPANet's network for this data;
``group_by_multiplicity: true``, which fills each training batch with events of similar size).
``--variants eager,no_pairs`` adds spanet_lite with those changes (:data:`VARIANTS`) to the same
rounds: ``compile: false`` (``eager``), ``compile: true`` (``compiled``, for sizes where ``auto``
stays eager, such as ``--quick``), ``pair_features: none`` (SPANet's network),
``group_by_multiplicity: false`` (``ungrouped``: SPANet's plainly shuffled training batches
instead of batches of events of similar size), and neither grouping nor compiling
(``eager_ungrouped``).

Without ``--spanet-python`` only spanet_lite is timed. ``--quick`` (2,000 events, one round of
2 s windows) checks that the benchmark works; its numbers mean nothing.
JSON: ``{"machine", "tools": {tool: {"train_events_per_s", "runs": [...]}}, "ratio", ...}``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPANET_OPTIONS = Path("options_files/full_hadronic_ttbar/example.json")
SPANET_EVENT_FILE = Path("event_files/full_hadronic_ttbar.yaml")
VARIANTS: dict[str, dict[str, Any]] = {
    "eager": {"compile": False},
    "compiled": {"compile": True},
    "no_pairs": {"pair_features": "none"},
    "ungrouped": {"group_by_multiplicity": False},
    "eager_ungrouped": {"compile": False, "group_by_multiplicity": False},
}
"""spanet_lite with options changed, timed as ``spanet_lite_<name>`` next to the defaults."""


def options_file(work: Path, training: Path, event_file: Path, spanet_repo: Path | None) -> Path:
    """The one options file both tools train from (see the module docstring)."""
    if spanet_repo is not None:
        options = json.loads((spanet_repo / SPANET_OPTIONS).read_text())
        options["event_info_file"] = str((spanet_repo / SPANET_EVENT_FILE).resolve())
    else:
        options = {**_common.SPANET_TTBAR, "event_info_file": str(event_file)}
    options["training_file"] = str(training)
    path = work / "options.json"
    path.write_text(json.dumps(options, indent=1) + "\n")
    return path


def time_tool(
    tool: str, python: str, options: Path, work: Path, seconds: float, warm: int, tag: str
) -> dict[str, Any]:
    """One ``_train_window.py`` run of ``tool`` in ``python``; its figures plus the load before it."""
    out = work / f"{tag}.json"
    command = [python, str(HERE / "_train_window.py"), tool, str(options), "--seconds", str(seconds),
               "--warm", str(warm), "--log-dir", str(work / f"logs_{tag}"), "--out", str(out)]
    load = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=work)
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"{tool} run {tag} failed (exit {done.returncode}):\n" + "\n".join(tail))
    figures = json.loads(out.read_text())
    figures["load_average_before"] = [round(x, 2) for x in load]
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    return figures


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per tool and the spanet_lite / SPANet ratios (when SPANet ran)."""
    tools = {
        tool: {
            "train_events_per_s": round(statistics.median(r["train_events_per_s"] for r in results), 1),
            "step_ms": round(statistics.median(r["step_ms"] for r in results), 2),
            "runs": results,
        }
        for tool, results in runs.items()
    }
    summary: dict[str, Any] = {"tools": tools}
    if "spanet" in runs and "spanet_lite" in runs:
        lite, spanet = runs["spanet_lite"], runs["spanet"]
        summary["ratio"] = round(
            tools["spanet_lite"]["train_events_per_s"] / tools["spanet"]["train_events_per_s"], 2
        )
        summary["round_ratios"] = [
            round(a["train_events_per_s"] / b["train_events_per_s"], 2)
            for a, b in zip(lite, spanet, strict=True)
        ]
        summary["median_round_ratio"] = round(statistics.median(summary["round_ratios"]), 2)
    for name in VARIANTS:
        variant = tools.get(f"spanet_lite_{name}")
        if variant is None:
            continue
        rate = variant["train_events_per_s"]
        lite = tools["spanet_lite"]["train_events_per_s"]
        summary.setdefault("variant_speedups", {})[name] = round(rate / lite, 2)
        if "spanet" in tools:
            spanet = tools["spanet"]["train_events_per_s"]
            summary.setdefault("variant_ratios", {})[name] = round(rate / spanet, 2)
    return summary


def main() -> None:
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument("--spanet-repo", type=Path, default=None, help="a SPANet v2 checkout (its options)")
    parser.add_argument("--spanet-python", default=None, help="a Python that can import SPANet v2's spanet")
    parser.add_argument("--events", type=int, default=None, help="training events to generate (30,000)")
    parser.add_argument("--seconds", type=float, default=None, help="timed window per run (60 s)")
    parser.add_argument("--warm", type=int, default=None, help="untimed steps before each window (20)")
    parser.add_argument("--rounds", type=int, default=None, help="runs per tool, interleaved (3)")
    parser.add_argument("--variants", default="", help=f"also spanet_lite changed: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = [name for name in args.variants.split(",") if name]
    if unknown := [name for name in variants if name not in VARIANTS]:
        parser.error(f"--variants: unknown {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    if args.spanet_python and args.spanet_repo is None:
        parser.error("--spanet-python needs --spanet-repo (SPANet reads its own event file)")
    events = args.events or (2_000 if args.quick else 30_000)
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 60.0)
    warm = args.warm if args.warm is not None else (2 if args.quick else 20)
    rounds = args.rounds or (1 if args.quick else 3)

    tools = [("spanet_lite", sys.executable, "spanet_lite")]
    tools += [(f"spanet_lite_{name}", sys.executable, "spanet_lite") for name in variants]
    if args.spanet_python:
        tools.append(("spanet", args.spanet_python, "spanet"))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in tools}

    from rich.progress import Progress

    from spanet_lite.cli.generate import main as generate

    with tempfile.TemporaryDirectory(prefix="bench_cpu_") as directory:
        work = Path(directory)
        training, event_file = work / "ttbar.h5", work / "ttbar.yaml"
        argv = ["ttbar_allhad", "--events", str(events), "--seed", "1", "--output", str(training),
                "--event-file-output", str(event_file), "--quiet"]
        if generate(argv) != 0:
            raise SystemExit("spanet-generate failed")
        options = options_file(work, training, event_file, args.spanet_repo)
        files = {"spanet_lite": options, "spanet": options}
        for name in variants:
            changed = work / f"options_{name}.json"
            changed.write_text(json.dumps({**json.loads(options.read_text()), **VARIANTS[name]}))
            files[f"spanet_lite_{name}"] = changed
        with Progress(transient=True) as progress:
            task = progress.add_task("timing", total=rounds * len(tools))
            for round_index in range(rounds):
                order = tools if round_index % 2 == 0 else tools[::-1]
                for name, python, tool in order:
                    progress.update(task, description=f"round {round_index + 1}/{rounds}: {name}")
                    tag = f"{name}_{round_index}"
                    runs[name].append(time_tool(tool, python, files[name], work, seconds, warm, tag))
                    progress.advance(task)

    figures: dict[str, Any] = {
        "quick": args.quick,
        "options": str(SPANET_OPTIONS) if args.spanet_repo else "bench/_common.py SPANET_TTBAR",
        "events": events,
        "window_s": seconds,
        "warm_steps": warm,
        "rounds": rounds,
        **summarise(runs),
    }
    rows = [
        [name, tool["train_events_per_s"], tool["step_ms"],
         " ".join(f"{r['train_events_per_s']:.0f}" for r in tool["runs"]),
         " ".join(f"{r['load_average_before'][0]:.1f}" for r in tool["runs"])]
        for name, tool in figures["tools"].items()
    ]
    title = "CPU training, SPANet's ttbar example options"
    if "ratio" in figures:
        title += f": spanet_lite / SPANet = {figures['ratio']}x (per round {figures['round_ratios']})"
    columns = ["tool", "median train ev/s", "median step ms", "per run ev/s", "load before each run"]
    _common.report(title, columns, rows, figures, args.json)


if __name__ == "__main__":
    main()
