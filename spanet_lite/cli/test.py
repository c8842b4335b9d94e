"""`spanet-test RUN_DIR -tf FILE.h5 [--plots DIR] [--json FILE]`: evaluate a trained run.

Needs only the run directory and the test file (never the training file). Prints rich tables:
event purity and the purity tables by number of jets and of reconstructable particles,
per-particle efficiency/purity and detection quality, regressions (with the analytic
neutrino baseline where it applies) and classifications. ``--json`` writes every number,
with the headline ``event_purity`` at the top level; ``--plots`` writes PNG figures.

Exit codes: 0 done, 2 bad input (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_OK, add_network_arguments, load_network, run_cli

PROGRAM = "spanet-test"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Evaluate a trained run on a labelled HDF5 file."
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="run directory written by spanet-train (version_N)")
    parser.add_argument("-tf", "--testing-file", metavar="FILE.h5",
                        help="labelled HDF5 file (default: the run's testing_file option)")
    parser.add_argument("--plots", metavar="DIR", help="write PNG plots into this directory")
    parser.add_argument("--json", metavar="FILE", help="write all numbers as JSON to this file")
    parser.add_argument("--batch-size", "-b", type=int, default=1024, metavar="N",
                        help="events per forward pass (default: %(default)s)")
    parser.add_argument("--decoding", choices=("greedy", "exact"), help="decoding mode (default: the run's)")
    parser.add_argument("--threshold", type=float, metavar="P",
                        help="detection threshold for the 'with detection' numbers (default: the run's)")
    add_network_arguments(parser)
    return parser


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    import json
    from pathlib import Path

    from rich.console import Console

    from spanet_lite.errors import InputError
    from spanet_lite.evaluation.evaluate import evaluate_file, json_ready
    from spanet_lite.evaluation.overlap import warn_if_training_file
    from spanet_lite.evaluation.report import render
    from spanet_lite.io import atomic_write_text

    if args.batch_size < 1:
        raise InputError(None, "--batch-size", "a positive number of events", str(args.batch_size))
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise InputError(None, "--threshold", "a probability between 0 and 1", str(args.threshold))
    run = load_network(args)
    if args.decoding:
        run.options.decoding = args.decoding
    if args.threshold is not None:
        run.options.detection_threshold = args.threshold
    test_file = args.testing_file or run.options.testing_file
    if not test_file:
        raise InputError(None, "-tf/--testing-file", "a labelled HDF5 file to test on", "none given")
    warn_if_training_file(run, test_file)
    evaluation = evaluate_file(run, test_file, batch_size=args.batch_size, progress=sys.stderr.isatty())
    console = Console()
    render(evaluation.metrics, console)
    if args.json:
        text = json.dumps(json_ready(evaluation.metrics), indent=2, allow_nan=False)
        atomic_write_text(args.json, text + "\n")
        console.print(f"numbers written to {args.json}")
    if args.plots:
        from spanet_lite.evaluation.plots import write_all

        written = write_all(evaluation, run.spec, run.directory, Path(args.plots))
        console.print(f"{len(written)} plots written to {args.plots}: {', '.join(p.name for p in written)}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)
